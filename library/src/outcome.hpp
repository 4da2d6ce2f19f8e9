// outcome.hpp - the evaluation contract's rules for how a job ends, written once
// for both backends: how the evaluator's exit is classified, how the results
// folder and the correct.json rule complete a job_result, and the texts the
// diagnostics use. Includes only the public headers and the standard library.
#pragma once

#include "genesis/launch/job.hpp"
#include "genesis/launch/results.hpp"
#include "output_sink.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace genesis::launch::detail {

// A duration as diagnostics print it: "5s", "0.5s", "3600s".
std::string seconds_text(std::chrono::milliseconds d);

// How the evaluator's process ended, as a backend saw it: an exit status, a
// signal, or (E2B) only the service's words for a signal it did not name.
struct process_exit {
    std::optional<int> exit_code;
    std::optional<int> signal;
    std::string status;  // shown when neither is known
};

// The contract's classification: exit 0 is ok, anything else candidate_failed
// with a diagnostic. Sets r.result, r.exit_code, r.signal and r.diagnostic.
void classify_exit(job_result& r, const process_exit& e);

// A signal from the words Go's os/exec uses ("signal: killed" -> SIGKILL), as
// envd reports a command killed by one; nullopt for anything else.
std::optional<int> signal_from_go_status(std::string_view status);

// As read_results(dir), with the files' contents given by a backend that already
// holds them (nullopt: read from `dir`). The folder is listed unless `files` gives
// its regular files (a backend that made the folder and wrote everything in it).
evaluation_results read_results(const std::filesystem::path& dir, std::optional<std::string> metrics_text,
                                std::optional<std::string> correct_text,
                                std::optional<std::vector<std::filesystem::path>> files = std::nullopt);

// Ends both streams and puts their captures (and whether they were cut) into `r`.
void record_output(job_result& r, output_sink& out, output_sink& err);

// Completes `r` once the job has ended: what the evaluator wrote (metrics,
// correct.json, the files; nothing when `dir` is not a folder) goes in, and a job
// that did not end ok without writing correct.json gets its diagnostic as error.
// `files`: as for read_results (given, `dir` is known to be a folder).
void record_results(job_result& r, const std::filesystem::path& dir, std::optional<std::string> metrics_text = {},
                    std::optional<std::string> correct_text = {},
                    std::optional<std::vector<std::filesystem::path>> files = std::nullopt);

}  // namespace genesis::launch::detail
