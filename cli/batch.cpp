// batch.cpp - the batch runner: one io_context, every job submitted with a
// callback, progress and reports as jobs finish, signals, summary, exit code.
#include "batch.hpp"

#include "exit_codes.hpp"
#include "report.hpp"
#include "text.hpp"

#include <genesis/launch/json_text.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <utility>

#include <sys/ioctl.h>
#include <unistd.h>

namespace genesis::cli {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto progress_interval = 200ms;
// After an interruption, how long cleanup may take beyond the launcher's kill grace
// before we give up waiting and exit anyway.
constexpr auto cleanup_slack = 5s;

std::size_t stderr_columns() {
    winsize ws{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

void write_all(std::FILE* stream, std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stream);
    std::fflush(stream);
}

// ANSI: carriage return, then erase the whole line.
constexpr std::string_view erase_line = "\r\033[2K";

}  // namespace

// ---------------------------------------------------------------------------
// status_line
// ---------------------------------------------------------------------------

status_line::status_line(bool enabled) : enabled_(enabled) {}

void status_line::show(std::string text) {
    std::lock_guard lock(mutex_);
    if (!enabled_) return;
    // Never wrap: a wrapped line cannot be redrawn with '\r'.
    const std::size_t columns = stderr_columns();
    text_ = fit(text, columns > 1 ? columns - 1 : columns);
    draw_locked();
}

void status_line::clear() {
    std::lock_guard lock(mutex_);
    erase_locked();
    text_.clear();
}

void status_line::write_above(std::string_view text) {
    std::lock_guard lock(mutex_);
    erase_locked();
    write_all(stderr, text);
    if (enabled_ && !text_.empty()) draw_locked();
}

void status_line::erase_locked() {
    if (!drawn_) return;
    write_all(stderr, erase_line);
    drawn_ = false;
}

void status_line::draw_locked() {
    std::string line(erase_line);
    line += text_;
    write_all(stderr, line);
    drawn_ = true;
}

// ---------------------------------------------------------------------------
// batch_runner
// ---------------------------------------------------------------------------

batch_runner::batch_runner(asio::io_context& io, launch::JobLauncher& launcher, run_plan plan, output_settings out,
                           std::chrono::milliseconds kill_grace)
    : io_(io),
      launcher_(launcher),
      plan_(std::move(plan)),
      out_(out),
      kill_grace_(kill_grace),
      status_(std::make_shared<status_line>(out.live_progress)),
      signals_(io, SIGINT, SIGTERM),
      progress_timer_(io),
      cleanup_deadline_(io) {
    finished_.reserve(plan_.jobs.size());
    // Log lines must not collide with the progress line. The sink owns a reference
    // to the status line, so it stays valid if the launcher logs after we are gone.
    launcher_.set_logger(launch::logger{
        out_.log_level, [status = status_](launch::log_level level, std::string_view message) {
            std::string line = "[genesis-launch] ";
            line += launch::to_string(level);
            line += ": ";
            line += message;
            line += '\n';
            status->write_above(line);
        }});
}

batch_runner::~batch_runner() = default;

int batch_runner::run() {
    started_ = std::chrono::steady_clock::now();
    wait_for_signal();
    submit_all();
    if (out_.live_progress) tick_progress();
    io_.run();

    status_->clear();
    if (forced_exit_code_) return *forced_exit_code_;
    print_summary();
    if (interrupted_by_ != 0) return exit_code_for_signal(interrupted_by_);
    return exit_code_for(finished_, plan_.jobs.size());
}

void batch_runner::submit_all() {
    for (std::size_t i = 0; i < plan_.jobs.size(); ++i) {
        const planned_job& job = plan_.jobs[i];
        launch::job_spec spec;
        spec.job_id = job.job_id;
        spec.program_path = job.program;
        spec.results_dir = job.results_dir;
        // Bound to our io_context: completions run on the main thread's event loop.
        launcher_.async_submit(
            std::move(spec), asio::bind_executor(io_.get_executor(), [this, i](boost::system::error_code ec,
                                                                               launch::job_result result) {
                on_job_done(i, ec, std::move(result));
            }));
    }
    all_submitted_ = true;
    finish_if_done();
}

void batch_runner::on_job_done(std::size_t index, boost::system::error_code ec, launch::job_result result) {
    job_record record{index, plan_.jobs[index], std::move(result), static_cast<bool>(ec)};
    if (record.rejected) {
        // The launcher refused the job before it started; make that visible.
        launch::job_result& r = record.result;
        std::string why = "rejected by the launcher: " + ec.message();
        if (!r.diagnostic.empty()) why += ": " + r.diagnostic;
        r.diagnostic = std::move(why);
        r.result = launch::outcome::infra_error;
        r.correct = false;
    }
    if (record.result.succeeded()) ++succeeded_;
    finished_.push_back(std::move(record));
    report(finished_.back());
    if (out_.live_progress && !stopping_) redraw_progress();
    finish_if_done();
}

void batch_runner::finish_if_done() {
    if (!all_submitted_ || finished_.size() < plan_.jobs.size() || stopping_) return;
    if (!shutdown_started_) {
        begin_shutdown();
        return;
    }
    if (!shutdown_done_) return;
    // Nothing is left to wait for: release the signal wait and the timers so that
    // io_context::run() returns.
    stopping_ = true;
    boost::system::error_code ignored;
    signals_.cancel(ignored);
    progress_timer_.cancel();
    cleanup_deadline_.cancel();
}

void batch_runner::begin_shutdown() {
    shutdown_started_ = true;
    launcher_.async_shutdown(asio::bind_executor(io_.get_executor(), [this](boost::system::error_code) {
        shutdown_done_ = true;
        finish_if_done();
    }));
}

void batch_runner::wait_for_signal() {
    signals_.async_wait([this](boost::system::error_code ec, int signal_number) {
        if (ec || stopping_) return;
        on_signal(signal_number);
    });
}

void batch_runner::on_signal(int signal_number) {
    if (interrupted_by_ != 0) {
        // A second signal: the user insists.
        status_->write_above("interrupted again: exiting now\n");
        stop_now(exit_code_for_signal(interrupted_by_));
        return;
    }
    interrupted_by_ = signal_number;
    const std::size_t pending = plan_.jobs.size() - finished_.size();
    if (!out_.quiet) status_->write_above("interrupted: cancelling " + jobs_phrase(pending) + "...\n");
    launcher_.cancel_all();
    if (!shutdown_started_) begin_shutdown();

    // Cancelled jobs report, then the shutdown completes; should cleanup hang, leave anyway.
    cleanup_deadline_.expires_after(kill_grace_ + cleanup_slack);
    cleanup_deadline_.async_wait([this](boost::system::error_code ec) {
        if (ec || stopping_) return;
        status_->clear();
        status_->write_above("genesis_launch: cleanup did not finish in time; exiting\n");
        print_summary();
        stop_now(exit_code_for_signal(interrupted_by_));
    });
    wait_for_signal();
}

void batch_runner::tick_progress() {
    if (stopping_) return;
    redraw_progress();
    progress_timer_.expires_after(progress_interval);
    progress_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec) tick_progress();
    });
}

void batch_runner::redraw_progress() {
    progress_counts counts;
    counts.total = plan_.jobs.size();
    counts.done = finished_.size();
    counts.running = static_cast<std::size_t>(launcher_.usage().running);
    counts.ok = succeeded_;
    counts.failed = counts.done - counts.ok;
    counts.elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
    status_->show(progress_text(counts));
}

void batch_runner::report(const job_record& record) {
    if (out_.json) {
        std::string line = launch::json_text(job_to_json(record));
        line += '\n';
        write_all(stdout, line);
        return;
    }
    if (out_.quiet || out_.live_progress) return;
    status_->write_above(job_line(finished_.size(), plan_.jobs.size(), record) + "\n");
}

void batch_runner::print_summary() {
    if (out_.quiet) return;
    if (out_.json) {
        status_->write_above(short_summary(finished_, plan_) + "\n");
        return;
    }
    // Reports follow completion order; the summary follows the plan.
    std::vector<job_record> records = finished_;
    std::sort(records.begin(), records.end(),
              [](const job_record& a, const job_record& b) { return a.index < b.index; });
    std::string text;
    if (interrupted_by_ != 0) text += "interrupted by " + launch::signal_name(interrupted_by_) + "\n\n";
    if (records.empty())
        text += "no job finished\nresults: " + plan_.run_dir.string() + "\n";
    else if (!plan_.batch && records.size() == 1)
        text += single_summary(records.front(), plan_);
    else
        text += batch_summary(records, plan_, out_.table_width);
    if (const std::size_t missing = plan_.jobs.size() - finished_.size(); missing != 0)
        text += jobs_phrase(missing) + " did not report\n";
    write_all(stdout, text);
}

void batch_runner::stop_now(int code) {
    // Leave io_context::run() at once. What is still pending is destroyed with the
    // io_context, and the local backend SIGKILLs the process group of every job whose
    // run is destroyed that way; the sandboxes of E2B jobs expire on their own timeout.
    forced_exit_code_ = code;
    stopping_ = true;
    io_.stop();
}

}  // namespace genesis::cli
