// job.hpp - what is submitted (job_spec) and what comes back (job_result).
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace genesis::launch {

// The class of a finished job. Exactly one per job.
enum class outcome {
    ok,                // the evaluator ran and exited with status 0
    candidate_failed,  // the evaluator exited non-zero or died from a signal
    timeout,           // the job ran past its time limit and was stopped
    setup_failed,      // the job could not be prepared (missing files, spawn failure, install failure)
    infra_error,       // the backend failed (sandbox or network) after retries
    cancelled,         // cancel() / cancel_all() / shutdown() stopped it
};
inline constexpr std::size_t outcome_count = 6;

std::string_view to_string(outcome) noexcept;
std::optional<outcome> outcome_from_string(std::string_view) noexcept;

// Called once per complete line of evaluator output (without the newline); a final
// unterminated line is delivered at end of stream. Runs on the launcher's executor:
// keep it short.
using line_callback = std::function<void(std::string_view line)>;

struct job_spec {
    // Identifies the job in logs, results and cancel(); generated when empty.
    std::string job_id;
    // The candidate program (required).
    std::filesystem::path program_path;
    // The evaluator; empty = the configuration's eval_program_path.
    std::filesystem::path evaluator_path;
    // Where the evaluator writes; empty = <config results_dir>/<job_id>.
    std::filesystem::path results_dir;
    // Extra `--key value` arguments, merged over the configuration's extra_cmd_args
    // (true adds `--key`, false and null add nothing).
    boost::json::object extra_args;
    // Per-job time limit; unset = the configuration's limit.
    std::optional<std::chrono::milliseconds> timeout;
    // Extra environment variables, merged over the configuration's env_vars.
    std::map<std::string, std::string> env;
    // Optional live output.
    line_callback on_stdout;
    line_callback on_stderr;
};

// Durations of each phase. Phases a backend does not have stay zero.
struct phase_timings {
    using duration = std::chrono::milliseconds;
    duration queued{0};   // submit() until a slot was free
    duration create{0};   // sandbox creation (E2B)
    duration setup{0};    // results dir, uploads, dependency install
    duration run{0};      // the evaluator process
    duration download{0}; // fetching results (E2B)
    duration cleanup{0};  // stopping leftovers, killing the sandbox
    duration total{0};    // submit() until the result
};

struct job_result {
    std::string job_id;
    outcome result = outcome::infra_error;

    // How the evaluator ended: an exit status, or the signal that killed it.
    std::optional<int> exit_code;
    std::optional<int> signal;

    // From correct.json (missing or malformed -> correct=false with an explanation).
    bool correct = false;
    std::string error;

    // From metrics.json ({} when missing or unparsable; see warnings).
    boost::json::object metrics;
    // metrics["combined_score"] as a number, 0.0 when missing.
    double combined_score = 0.0;

    // Captured output, capped; a truncation mark stands where bytes were dropped.
    std::string stdout_text;
    std::string stderr_text;
    bool stdout_truncated = false;
    bool stderr_truncated = false;

    // Local results directory and every file found in it after the run.
    std::filesystem::path results_dir;
    std::vector<std::filesystem::path> result_files;

    // What the launcher itself has to say (why a job timed out, failed to start ...).
    std::string diagnostic;
    // Non-fatal problems (e.g. metrics.json unparsable).
    std::vector<std::string> warnings;

    phase_timings timings;

    // Backend details.
    std::string backend;          // "local" or "e2b"
    std::string sandbox_id;       // E2B only
    double sandbox_seconds = 0.0; // E2B only: sandbox lifetime billed

    // ok and correct: the candidate is valid and scored.
    bool succeeded() const noexcept { return result == outcome::ok && correct; }
};

// A signal's name as diagnostics and reports print it: "SIGKILL", or "signal 70"
// for a number without one.
std::string signal_name(int sig);

// `s` with every ill-formed UTF-8 byte replaced by U+FFFD (JSON output must be valid
// UTF-8; evaluator messages may not be).
std::string valid_utf8(std::string_view s);

// One finished job as a JSON object: the CLI's --json line and the Python package's
// JobResult.to_dict() (docs/cli.md has the schema). `program` is the candidate's path.
boost::json::object to_json(const job_result& r, const std::filesystem::path& program);

}  // namespace genesis::launch
