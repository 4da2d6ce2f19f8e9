// exit_codes.hpp - genesis_launch's process exit status, derived from the jobs' records.
#pragma once

#include "plan.hpp"

#include <genesis/launch/job.hpp>

#include <vector>

namespace genesis::cli {

namespace exit_code {
inline constexpr int success = 0;          // every job: outcome ok and correct
inline constexpr int candidate_failed = 1; // candidate_failed, timeout, or ok but incorrect
inline constexpr int usage_error = 2;      // bad arguments or configuration; nothing launched
inline constexpr int infra_error = 3;      // setup_failed, infra_error, rejected or unexpectedly cancelled
inline constexpr int sigint = 130;         // 128 + SIGINT
inline constexpr int sigterm = 143;        // 128 + SIGTERM
}  // namespace exit_code

// The exit code after an interruption by `signal_number`.
inline constexpr int exit_code_for_signal(int signal_number) { return 128 + signal_number; }

// Whether a record counts as a failure of the infrastructure rather than of the candidate.
inline bool is_infrastructure_failure(const job_record& r) {
    if (r.rejected) return true;
    switch (r.result.result) {
    case launch::outcome::setup_failed:
    case launch::outcome::infra_error:
    case launch::outcome::cancelled:  // only reached when nobody asked for a cancel
        return true;
    default:
        return false;
    }
}

// 0 when every job succeeded; 3 when any job hit an infrastructure problem;
// otherwise 1 when any job failed, timed out or was incorrect.
// `expected_jobs` larger than records.size() (jobs that never reported) counts as 3.
inline int exit_code_for(const std::vector<job_record>& records, std::size_t expected_jobs) {
    if (records.size() < expected_jobs) return exit_code::infra_error;
    bool any_failed = false;
    for (const auto& r : records) {
        if (is_infrastructure_failure(r)) return exit_code::infra_error;
        if (!r.result.succeeded()) any_failed = true;
    }
    return any_failed ? exit_code::candidate_failed : exit_code::success;
}

}  // namespace genesis::cli
