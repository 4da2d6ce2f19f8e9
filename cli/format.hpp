// format.hpp - turning job records into text: JSON lines, the progress line, the
// per-job line, the single-job summary and the batch table. Pure functions that
// return strings; the caller decides where they go.
#pragma once

#include "plan.hpp"

#include <genesis/launch/config.hpp>
#include <genesis/launch/job.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace genesis::cli {

// ---------------------------------------------------------------------------
// Text helpers (UTF-8 aware; display width is approximated by code points)
// ---------------------------------------------------------------------------

// Replaces every ill-formed byte with U+FFFD so the text is valid UTF-8 (JSON output
// must be; evaluator messages may not be).
inline std::string sanitize_utf8(std::string_view s) { return launch::valid_utf8(s); }

// Number of code points of valid UTF-8 text.
inline std::size_t display_width(std::string_view s) {
    std::size_t width = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++width;
    return width;
}

// At most `width` code points; "..." marks a cut.
inline std::string fit(std::string_view s, std::size_t width) {
    if (display_width(s) <= width) return std::string(s);
    const std::size_t keep = width > 3 ? width - 3 : width;
    std::size_t points = 0, end = 0;
    while (end < s.size()) {
        if ((static_cast<unsigned char>(s[end]) & 0xC0) != 0x80) {
            if (points == keep) break;
            ++points;
        }
        ++end;
    }
    std::string out(s.substr(0, end));
    if (width > 3) out += "...";
    return out;
}

// Valid UTF-8 on one line: control characters become spaces, runs of blanks
// collapse, both ends are trimmed.
inline std::string one_line(std::string_view s) {
    const std::string clean = sanitize_utf8(s);
    std::string out;
    out.reserve(clean.size());
    bool pending_space = false;
    for (unsigned char c : clean) {
        if (c < 0x20 || c == 0x7F || c == ' ') {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space) out += ' ';
        pending_space = false;
        out += static_cast<char>(c);
    }
    return out;
}

// Valid UTF-8 that cannot move the cursor or end a line: control characters
// (except tab) are shown as \xNN. For names and text that come from evaluators.
inline std::string printable(std::string_view s) {
    const std::string clean = sanitize_utf8(s);
    std::string out;
    out.reserve(clean.size());
    for (unsigned char c : clean) {
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

inline std::string pad_right(std::string_view s, std::size_t width) {
    std::string out(s);
    const std::size_t w = display_width(s);
    if (w < width) out.append(width - w, ' ');
    return out;
}

// The last `n` lines of `text` (a trailing newline does not start an empty line).
inline std::string last_lines(std::string_view text, std::size_t n) {
    if (n == 0 || text.empty()) return {};
    std::size_t end = text.size();
    if (text.back() == '\n') --end;
    std::size_t start = end, found = 0;
    while (start > 0) {
        if (text[start - 1] == '\n' && ++found == n) break;
        --start;
    }
    return std::string(text.substr(start, end - start));
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

// "%.<significant>g"; "nan"/"inf" for non-finite values.
inline std::string format_score(double value, int significant = 10) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", significant, value);
    return buf;
}

inline double to_seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

// "1.234s" with `decimals` digits after the point.
inline std::string format_seconds(std::chrono::milliseconds d, int decimals = 1) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*fs", decimals, to_seconds(d));
    return buf;
}

inline std::string signal_name(int sig) {
    static constexpr std::array<std::pair<int, const char*>, 14> names{{
        {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
        {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
        {SIGSEGV, "SIGSEGV"}, {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
        {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
    }};
    for (const auto& [number, name] : names)
        if (number == sig) return name;
    return "signal " + std::to_string(sig);
}

// "code 3", "signal 9 (SIGKILL)" or "-".
inline std::string format_exit(const launch::job_result& r) {
    if (r.signal) return "signal " + std::to_string(*r.signal) + " (" + signal_name(*r.signal) + ")";
    if (r.exit_code) return "code " + std::to_string(*r.exit_code);
    return "-";
}

// ---------------------------------------------------------------------------
// E2B cost estimate
// ---------------------------------------------------------------------------

// What a sandbox-second costs: the template's size times E2B's rates (USD).
struct sandbox_cost_rates {
    double per_cpu_second = 0.000014;
    double per_gib_second = 0.0000045;
    int cpus = 2;
    int memory_mb = 512;

    double per_second() const { return cpus * per_cpu_second + memory_mb / 1024.0 * per_gib_second; }
};

inline sandbox_cost_rates cost_rates_from(const launch::e2b_params& p) {
    sandbox_cost_rates r;
    r.per_cpu_second = p.cost_per_cpu_second;
    r.per_gib_second = p.cost_per_gib_second;
    r.cpus = p.cpus.value_or(2);
    r.memory_mb = p.memory_mb.value_or(512);
    return r;
}

// The rates the summaries use: the defaults until the program sets the
// configured ones (main: `configured_cost_rates() = cost_rates_from(cfg.launcher.e2b)`).
inline sandbox_cost_rates& configured_cost_rates() {
    static sandbox_cost_rates rates;
    return rates;
}

// "$0.0123" (more digits for tiny amounts).
inline std::string format_cost(double usd) {
    char buf[64];
    std::snprintf(buf, sizeof buf, usd != 0 && std::fabs(usd) < 0.01 ? "$%.6f" : "$%.4f", usd);
    return buf;
}

inline bool is_e2b(const launch::job_result& r) { return r.backend == "e2b"; }

// ---------------------------------------------------------------------------
// Job records
// ---------------------------------------------------------------------------

inline const std::string& record_job_id(const job_record& r) {
    return r.result.job_id.empty() ? r.job.job_id : r.result.job_id;
}

inline std::filesystem::path record_results_dir(const job_record& r) {
    return r.result.results_dir.empty() ? r.job.results_dir : r.result.results_dir;
}

// What went wrong, in one line: correct.json's error, else the launcher's diagnostic.
inline std::string record_problem(const job_record& r) {
    return one_line(!r.result.error.empty() ? r.result.error : r.result.diagnostic);
}

// `file` relative to `dir` when it lies inside it.
inline std::string display_path(const std::filesystem::path& file, const std::filesystem::path& dir) {
    const auto rel = file.lexically_relative(dir);
    if (rel.empty() || *rel.begin() == "..") return printable(file.string());
    return printable(rel.string());
}

// One --json line (without the newline); see docs/cli.md for the schema. A rejected
// job has no result of its own: its id and folder come from the plan.
inline boost::json::object job_to_json(const job_record& rec) {
    boost::json::object o = launch::to_json(rec.result, rec.job.program);
    o["job_id"] = sanitize_utf8(record_job_id(rec));
    o["results_dir"] = sanitize_utf8(record_results_dir(rec).string());
    return o;
}

// Non-terminal progress: "[3/8] 001_foo ok correct=true score=2.3 (1.2s)", plus the
// problem for a job that did not succeed.
inline std::string job_line(std::size_t done, std::size_t total, const job_record& rec) {
    const auto& r = rec.result;
    std::string line = "[" + std::to_string(done) + "/" + std::to_string(total) + "] " + record_job_id(rec) + " " +
                       std::string(launch::to_string(r.result)) + " correct=" + (r.correct ? "true" : "false") +
                       " score=" + format_score(r.combined_score, 6) + " (" + format_seconds(r.timings.total) + ")";
    if (!r.succeeded()) {
        const std::string problem = record_problem(rec);
        if (!problem.empty()) line += ": " + fit(problem, 160);
    }
    return line;
}

struct progress_counts {
    std::size_t total = 0;
    std::size_t done = 0;
    std::size_t running = 0;
    std::size_t ok = 0;      // ok and correct
    std::size_t failed = 0;  // every other finished job
    std::chrono::milliseconds elapsed{0};
};

// Terminal progress: "[#####-----] 3/8 done  2 running  ok 2  failed 1  12.3s".
inline std::string progress_text(const progress_counts& c) {
    constexpr std::size_t bar_width = 10;
    const std::size_t filled = c.total == 0 ? bar_width : std::min(bar_width, c.done * bar_width / c.total);
    std::string text = "[" + std::string(filled, '#') + std::string(bar_width - filled, '-') + "] ";
    text += std::to_string(c.done) + "/" + std::to_string(c.total) + " done  " + std::to_string(c.running) +
            " running  ok " + std::to_string(c.ok) + "  failed " + std::to_string(c.failed) + "  " +
            format_seconds(c.elapsed);
    return text;
}

// The single-mode report: every detail of one job.
inline std::string single_summary(const job_record& rec, const run_plan& plan, std::size_t stderr_lines = 10,
                                  const sandbox_cost_rates& rates = configured_cost_rates()) {
    const auto& r = rec.result;
    std::string out;
    auto row = [&out](std::string_view label, std::string_view value) {
        out += pad_right(label, 12);
        out += value;
        out += '\n';
    };
    row("job", record_job_id(rec));
    row("program", rec.job.program.string());
    row("outcome", launch::to_string(r.result));
    row("correct", r.correct ? "true" : "false");
    row("score", format_score(r.combined_score, 10));
    if (!r.error.empty()) row("error", one_line(r.error));
    if (!r.diagnostic.empty() && r.diagnostic != r.error) row("diagnostic", one_line(r.diagnostic));
    row("exit", format_exit(r));

    const auto& t = r.timings;
    std::string timings = "queued " + format_seconds(t.queued, 3);
    if (t.create.count() != 0) timings += "  create " + format_seconds(t.create, 3);
    timings += "  setup " + format_seconds(t.setup, 3) + "  run " + format_seconds(t.run, 3);
    if (t.download.count() != 0) timings += "  download " + format_seconds(t.download, 3);
    timings += "  cleanup " + format_seconds(t.cleanup, 3) + "  total " + format_seconds(t.total, 3);
    row("timings", timings);
    if (!r.backend.empty()) row("backend", r.backend);
    if (!r.sandbox_id.empty()) {
        char seconds[64];
        std::snprintf(seconds, sizeof seconds, " (%.1f sandbox-seconds)", r.sandbox_seconds);
        row("sandbox", r.sandbox_id + seconds);
    }
    if (is_e2b(r)) {
        char cost[160];
        std::snprintf(cost, sizeof cost, "estimated %s (%.1f sandbox-seconds at %d vCPU, %d MiB)",
                      format_cost(r.sandbox_seconds * rates.per_second()).c_str(), r.sandbox_seconds, rates.cpus,
                      rates.memory_mb);
        row("cost", cost);
    }
    for (std::size_t i = 0; i < r.warnings.size(); ++i) row(i == 0 ? "warnings" : "", one_line(r.warnings[i]));

    const auto dir = record_results_dir(rec);
    row("results", dir.string());
    if (r.result_files.empty()) row("files", "(none)");
    for (std::size_t i = 0; i < r.result_files.size(); ++i)
        row(i == 0 ? "files" : "", display_path(r.result_files[i], dir));
    row("run", plan.run_dir.string());

    if (!r.succeeded() && !r.stderr_text.empty()) {
        out += "\nstderr (last " + std::to_string(stderr_lines) + " lines):\n";
        const std::string tail = sanitize_utf8(last_lines(r.stderr_text, stderr_lines));
        std::size_t start = 0;
        while (start <= tail.size()) {
            const std::size_t nl = tail.find('\n', start);
            const std::size_t end = nl == std::string::npos ? tail.size() : nl;
            out += "  | ";
            out += printable(std::string_view(tail).substr(start, end - start));
            out += '\n';
            if (nl == std::string::npos) break;
            start = nl + 1;
        }
    }
    return out;
}

// "ok 2, candidate_failed 1" over the outcomes that occurred, in enum order.
inline std::string outcome_counts(const std::vector<job_record>& records) {
    std::array<std::size_t, launch::outcome_count> counts{};
    std::size_t incorrect = 0;
    for (const auto& rec : records) {
        ++counts[static_cast<std::size_t>(rec.result.result)];
        if (rec.result.result == launch::outcome::ok && !rec.result.correct) ++incorrect;
    }
    std::string text;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] == 0) continue;
        if (!text.empty()) text += ", ";
        text += std::string(launch::to_string(static_cast<launch::outcome>(i))) + " " + std::to_string(counts[i]);
    }
    if (incorrect != 0) text += " (" + std::to_string(incorrect) + " ok but incorrect)";
    return text.empty() ? "none" : text;
}

// The best correct job, if any.
inline const job_record* best_record(const std::vector<job_record>& records) {
    const job_record* best = nullptr;
    for (const auto& rec : records)
        if (rec.result.succeeded() && (!best || rec.result.combined_score > best->result.combined_score))
            best = &rec;
    return best;
}

inline std::string jobs_phrase(std::size_t n) { return std::to_string(n) + (n == 1 ? " job" : " jobs"); }

// "123.4 sandbox-seconds, estimated $0.0037 (2 vCPU, 512 MiB)" over the E2B jobs,
// or "" when no job ran on E2B.
inline std::string sandbox_totals(const std::vector<job_record>& records,
                                  const sandbox_cost_rates& rates = configured_cost_rates()) {
    double seconds = 0;
    bool any = false;
    for (const auto& rec : records) {
        if (!is_e2b(rec.result)) continue;
        any = true;
        seconds += rec.result.sandbox_seconds;
    }
    if (!any) return {};
    char text[160];
    std::snprintf(text, sizeof text, "%.1f sandbox-seconds, estimated %s (%d vCPU, %d MiB)", seconds,
                  format_cost(seconds * rates.per_second()).c_str(), rates.cpus, rates.memory_mb);
    return text;
}

// The batch report: a table, the counts per outcome, the best score.
inline std::string batch_summary(const std::vector<job_record>& records, const run_plan& plan, std::size_t width) {
    std::size_t id_width = 6;
    for (const auto& rec : records) id_width = std::max(id_width, display_width(record_job_id(rec)));
    constexpr std::size_t outcome_width = 16, correct_width = 7, score_width = 12, time_width = 8;
    const std::size_t used = id_width + outcome_width + correct_width + score_width + time_width + 5 * 2;
    const std::size_t error_width = width > used + 20 ? width - used : 20;

    auto row = [&](std::string_view id, std::string_view outcome, std::string_view correct, std::string_view score,
                   std::string_view time, std::string_view error) {
        std::string line = pad_right(id, id_width) + "  " + pad_right(outcome, outcome_width) + "  " +
                           pad_right(correct, correct_width) + "  " + pad_right(score, score_width) + "  " +
                           pad_right(time, time_width) + "  " + fit(error, error_width);
        while (!line.empty() && line.back() == ' ') line.pop_back();
        return line + "\n";
    };

    std::string out = row("job_id", "outcome", "correct", "score", "time", "error");
    for (const auto& rec : records) {
        const auto& r = rec.result;
        out += row(record_job_id(rec), launch::to_string(r.result), r.correct ? "true" : "false",
                   format_score(r.combined_score, 6), format_seconds(r.timings.total), record_problem(rec));
    }
    out += "\n" + jobs_phrase(records.size()) + ": " + outcome_counts(records) + "\n";
    if (const job_record* best = best_record(records))
        out += "best: " + format_score(best->result.combined_score, 10) + "  " + record_job_id(*best) + " (" +
               best->job.program.string() + ")\n";
    else
        out += "best: none (no job was ok and correct)\n";
    if (const std::string totals = sandbox_totals(records); !totals.empty()) out += "sandboxes: " + totals + "\n";
    out += "results: " + plan.run_dir.string() + "\n";
    return out;
}

// One line for stderr in --json mode.
inline std::string short_summary(const std::vector<job_record>& records, const run_plan& plan) {
    std::string line = "genesis_launch: " + jobs_phrase(records.size()) + ": " + outcome_counts(records);
    if (const job_record* best = best_record(records))
        line += "; best " + format_score(best->result.combined_score, 10) + " (" + record_job_id(*best) + ")";
    if (const std::string totals = sandbox_totals(records); !totals.empty()) line += "; " + totals;
    line += "; results in " + plan.run_dir.string();
    return line;
}

// ---------------------------------------------------------------------------
// JSON pretty-printing (for --print-config)
// ---------------------------------------------------------------------------

namespace detail {
inline void pretty_json_to(std::string& out, const boost::json::value& v, std::size_t indent) {
    const std::string inner(indent + 2, ' ');
    if (v.is_object() && !v.get_object().empty()) {
        out += "{\n";
        bool first = true;
        for (const auto& member : v.get_object()) {
            if (!first) out += ",\n";
            first = false;
            out += inner + boost::json::serialize(boost::json::value(member.key())) + ": ";
            pretty_json_to(out, member.value(), indent + 2);
        }
        out += "\n" + std::string(indent, ' ') + "}";
    } else if (v.is_array() && !v.get_array().empty()) {
        out += "[\n";
        bool first = true;
        for (const auto& element : v.get_array()) {
            if (!first) out += ",\n";
            first = false;
            out += inner;
            pretty_json_to(out, element, indent + 2);
        }
        out += "\n" + std::string(indent, ' ') + "]";
    } else if (v.is_double() && std::isfinite(v.get_double())) {
        // The shortest text that reads back as the same double, as YAML and Python write it
        // (0.1, 10.0), not Boost.JSON's 1E-1 / 1E1.
        const double d = v.get_double();
        char buf[32];
        if (d == std::trunc(d) && std::fabs(d) < 1e16) std::snprintf(buf, sizeof buf, "%.1f", d);
        else for (int precision = 1; precision <= 17; ++precision) {
            std::snprintf(buf, sizeof buf, "%.*g", precision, d);
            if (std::strtod(buf, nullptr) == d) break;
        }
        std::string text = buf;
        if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
        out += text;
    } else {
        out += boost::json::serialize(v);
    }
}
}  // namespace detail

inline std::string pretty_json(const boost::json::value& v) {
    std::string out;
    detail::pretty_json_to(out, v, 0);
    out += '\n';
    return out;
}

}  // namespace genesis::cli
