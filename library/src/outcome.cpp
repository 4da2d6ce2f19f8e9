#include "outcome.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <utility>

namespace genesis::launch::detail {
namespace fs = std::filesystem;

std::string seconds_text(std::chrono::milliseconds d) {
    char buf[32];
    if (d.count() % 1000 == 0)
        std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(d.count() / 1000));
    else
        std::snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(d.count()) / 1000.0);
    return buf;
}

void classify_exit(job_result& r, const process_exit& e) {
    r.exit_code = e.exit_code;
    r.signal = e.signal;
    if (e.signal) {
        r.result = outcome::candidate_failed;
        r.diagnostic = "evaluator killed by " + signal_name(*e.signal);
    } else if (e.exit_code && *e.exit_code == 0) {
        r.result = outcome::ok;
    } else if (e.exit_code) {
        r.result = outcome::candidate_failed;
        r.diagnostic = "evaluator exited with status " + std::to_string(*e.exit_code);
    } else {
        r.result = outcome::candidate_failed;
        r.diagnostic = "evaluator killed by " + (e.status.empty() ? std::string("an unknown cause") : e.status);
    }
}

std::optional<int> signal_from_go_status(std::string_view status) {
    constexpr std::string_view prefix = "signal: ";
    if (!status.starts_with(prefix)) return std::nullopt;
    std::string_view name = status.substr(prefix.size());
    if (auto paren = name.find(" ("); paren != std::string_view::npos) name = name.substr(0, paren);
    static constexpr std::pair<std::string_view, int> names[] = {
        {"hangup", SIGHUP},           {"interrupt", SIGINT},
        {"quit", SIGQUIT},            {"illegal instruction", SIGILL},
        {"trace/breakpoint trap", SIGTRAP}, {"aborted", SIGABRT},
        {"bus error", SIGBUS},        {"floating point exception", SIGFPE},
        {"killed", SIGKILL},          {"user defined signal 1", SIGUSR1},
        {"segmentation fault", SIGSEGV}, {"user defined signal 2", SIGUSR2},
        {"broken pipe", SIGPIPE},     {"alarm clock", SIGALRM},
        {"terminated", SIGTERM},      {"CPU time limit exceeded", SIGXCPU},
        {"file size limit exceeded", SIGXFSZ},
    };
    for (const auto& [n, number] : names)
        if (name == n) return number;
    return std::nullopt;
}

void record_output(job_result& r, output_sink& out, output_sink& err) {
    out.finish();
    err.finish();
    r.stdout_text = out.capture().text();
    r.stderr_text = err.capture().text();
    r.stdout_truncated = out.capture().truncated();
    r.stderr_truncated = err.capture().truncated();
}

void record_results(job_result& r, const fs::path& dir, std::optional<std::string> metrics_text,
                    std::optional<std::string> correct_text, std::optional<std::vector<fs::path>> files) {
    std::error_code ec;
    const bool known = files.has_value();
    bool wrote_correct = false;
    if (known) wrote_correct = std::find(files->begin(), files->end(), dir / "correct.json") != files->end();
    if (known || fs::is_directory(dir, ec)) {
        auto results = read_results(dir, std::move(metrics_text), std::move(correct_text), std::move(files));
        r.correct = results.correct;
        r.error = std::move(results.error);
        r.metrics = std::move(results.metrics);
        r.combined_score = results.combined_score;
        r.result_files = std::move(results.files);
        for (auto& w : results.warnings) r.warnings.push_back(std::move(w));
    }
    // When the evaluator never got to write correct.json, say why the job ended.
    if (r.result != outcome::ok && !r.correct && !(known ? wrote_correct : fs::exists(dir / "correct.json", ec)))
        r.error = r.diagnostic;
}

}  // namespace genesis::launch::detail
