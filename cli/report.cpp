#include "report.hpp"

#include "text.hpp"

#include <genesis/launch/cost.hpp>

#include <algorithm>
#include <cstdio>

namespace genesis::cli {

namespace {

bool is_e2b(const launch::job_result& r) { return r.backend == "e2b"; }

}  // namespace

// ---------------------------------------------------------------------------
// Job records
// ---------------------------------------------------------------------------

const std::string& record_job_id(const job_record& r) {
    return r.result.job_id.empty() ? r.job.job_id : r.result.job_id;
}

std::filesystem::path record_results_dir(const job_record& r) {
    return r.result.results_dir.empty() ? r.job.results_dir : r.result.results_dir;
}

// What went wrong, in one line: correct.json's error, else the launcher's diagnostic.
std::string record_problem(const job_record& r) {
    return one_line(!r.result.error.empty() ? r.result.error : r.result.diagnostic);
}

// `file` relative to `dir` when it lies inside it.
std::string display_path(const std::filesystem::path& file, const std::filesystem::path& dir) {
    const auto rel = file.lexically_relative(dir);
    if (rel.empty() || *rel.begin() == "..") return printable(file.string());
    return printable(rel.string());
}

// One --json line (without the newline); see docs/cli.md for the schema. A rejected
// job has no result of its own: its id and folder come from the plan.
boost::json::object job_to_json(const job_record& rec) {
    boost::json::object o = launch::to_json(rec.result, rec.job.program);
    o["job_id"] = sanitize_utf8(record_job_id(rec));
    o["results_dir"] = sanitize_utf8(record_results_dir(rec).string());
    return o;
}

// Non-terminal progress: "[3/8] 001_foo ok correct=true score=2.3 (1.2s)", plus the
// problem for a job that did not succeed.
std::string job_line(std::size_t done, std::size_t total, const job_record& rec) {
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

// Terminal progress: "[#####-----] 3/8 done  2 running  ok 2  failed 1  12.3s".
std::string progress_text(const progress_counts& c) {
    constexpr std::size_t bar_width = 10;
    const std::size_t filled = c.total == 0 ? bar_width : std::min(bar_width, c.done * bar_width / c.total);
    std::string text = "[" + std::string(filled, '#') + std::string(bar_width - filled, '-') + "] ";
    text += std::to_string(c.done) + "/" + std::to_string(c.total) + " done  " + std::to_string(c.running) +
            " running  ok " + std::to_string(c.ok) + "  failed " + std::to_string(c.failed) + "  " +
            format_seconds(c.elapsed);
    return text;
}

// The single-mode report: every detail of one job.
std::string single_summary(const job_record& rec, const run_plan& plan, std::size_t stderr_lines) {
    const launch::sandbox_cost_rates& rates = plan.cost_rates;
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
                      format_cost(launch::estimate_cost(r, rates)).c_str(), r.sandbox_seconds, rates.cpus,
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
std::string outcome_counts(const std::vector<job_record>& records) {
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
const job_record* best_record(const std::vector<job_record>& records) {
    const job_record* best = nullptr;
    for (const auto& rec : records)
        if (rec.result.succeeded() && (!best || rec.result.combined_score > best->result.combined_score))
            best = &rec;
    return best;
}

std::string jobs_phrase(std::size_t n) { return std::to_string(n) + (n == 1 ? " job" : " jobs"); }

// "123.4 sandbox-seconds, estimated $0.0037 (2 vCPU, 512 MiB)" over the E2B jobs,
// or "" when no job ran on E2B.
std::string sandbox_totals(const std::vector<job_record>& records, const launch::sandbox_cost_rates& rates) {
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
std::string batch_summary(const std::vector<job_record>& records, const run_plan& plan, std::size_t width) {
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
    if (const std::string totals = sandbox_totals(records, plan.cost_rates); !totals.empty()) out += "sandboxes: " + totals + "\n";
    out += "results: " + plan.run_dir.string() + "\n";
    return out;
}

// One line for stderr in --json mode.
std::string short_summary(const std::vector<job_record>& records, const run_plan& plan) {
    std::string line = "genesis_launch: " + jobs_phrase(records.size()) + ": " + outcome_counts(records);
    if (const job_record* best = best_record(records))
        line += "; best " + format_score(best->result.combined_score, 10) + " (" + record_job_id(*best) + ")";
    if (const std::string totals = sandbox_totals(records, plan.cost_rates); !totals.empty()) line += "; " + totals;
    line += "; results in " + plan.run_dir.string();
    return line;
}

}  // namespace genesis::cli
