// report.hpp - turning job records into what the CLI prints: the --json line, the
// per-job line, the progress line, the single-job summary and the batch table.
// Pure functions that return text; the caller decides where it goes.
#pragma once

#include "plan.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace genesis::cli {

// A record's job id and results folder: the result's, else (a rejected job) the plan's.
const std::string& record_job_id(const job_record& r);
std::filesystem::path record_results_dir(const job_record& r);
// What went wrong, in one line: correct.json's error, else the launcher's diagnostic.
std::string record_problem(const job_record& r);
// `file` relative to `dir` when it lies inside it, printable.
std::string display_path(const std::filesystem::path& file, const std::filesystem::path& dir);

// One --json line's object; see docs/cli.md for the schema (launch::to_json, with the
// plan's id and folder for a rejected job).
boost::json::object job_to_json(const job_record& rec);

// Non-terminal progress: "[3/8] 001_foo ok correct=true score=2.3 (1.2s)", plus the
// problem for a job that did not succeed.
std::string job_line(std::size_t done, std::size_t total, const job_record& rec);

struct progress_counts {
    std::size_t total = 0;
    std::size_t done = 0;
    std::size_t running = 0;
    std::size_t ok = 0;      // ok and correct
    std::size_t failed = 0;  // every other finished job
    std::chrono::milliseconds elapsed{0};
};

// Terminal progress: "[#####-----] 3/8 done  2 running  ok 2  failed 1  12.3s".
std::string progress_text(const progress_counts& c);

// The single-mode report: every detail of one job, the last `stderr_lines` of stderr.
std::string single_summary(const job_record& rec, const run_plan& plan, std::size_t stderr_lines = 10);
// "ok 2, candidate_failed 1" over the outcomes that occurred, in enum order.
std::string outcome_counts(const std::vector<job_record>& records);
// The best correct job, if any.
const job_record* best_record(const std::vector<job_record>& records);
std::string jobs_phrase(std::size_t n);
// "123.4 sandbox-seconds, estimated $0.0037 (2 vCPU, 512 MiB)" over the E2B jobs,
// or "" when no job ran on E2B.
std::string sandbox_totals(const std::vector<job_record>& records, const launch::sandbox_cost_rates& rates);
// The batch report: a table, the counts per outcome, the best score.
std::string batch_summary(const std::vector<job_record>& records, const run_plan& plan, std::size_t width);
// One line for stderr in --json mode.
std::string short_summary(const std::vector<job_record>& records, const run_plan& plan);

}  // namespace genesis::cli
