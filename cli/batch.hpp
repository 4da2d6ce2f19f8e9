// batch.hpp - runs a plan's jobs on one io_context: submits them all, shows
// progress, reports each job as it finishes, handles SIGINT/SIGTERM, prints the
// summary and works out the exit code.
#pragma once

#include "plan.hpp"

#include <genesis/launch/job_launcher.hpp>
#include <genesis/launch/logger.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace genesis::cli {

// How results are shown.
struct output_settings {
    bool json = false;         // one JSON object per job on stdout, nothing else there
    bool quiet = false;        // no progress, no summary; errors only
    bool live_progress = false;  // redraw a progress line on stderr (a terminal)
    std::size_t table_width = 120;
    launch::log_level log_level = launch::log_level::warning;
};

// A line on stderr that is redrawn in place with '\r'. Other stderr output goes
// through write_above() so the two never interleave on the screen. Thread-safe
// (the launcher's logger may call in from its own threads).
class status_line {
public:
    explicit status_line(bool enabled);
    void show(std::string text);
    void clear();
    void write_above(std::string_view text);  // text should end with '\n'

private:
    void erase_locked();
    void draw_locked();

    std::mutex mutex_;
    bool enabled_;
    std::string text_;
    bool drawn_ = false;
};

class batch_runner {
public:
    batch_runner(boost::asio::io_context& io, launch::JobLauncher& launcher, run_plan plan, output_settings out,
                 std::chrono::milliseconds kill_grace);
    ~batch_runner();
    batch_runner(const batch_runner&) = delete;
    batch_runner& operator=(const batch_runner&) = delete;

    // Runs every job to completion (or until interrupted) and returns the exit code.
    int run();

private:
    void submit_all();
    void on_job_done(std::size_t index, boost::system::error_code ec, launch::job_result result);
    void wait_for_signal();
    void on_signal(int signal_number);
    void begin_shutdown();
    void finish_if_done();
    void tick_progress();
    void redraw_progress();
    void report(const job_record& record);
    void print_summary();
    void stop_now(int code);

    boost::asio::io_context& io_;
    launch::JobLauncher& launcher_;
    run_plan plan_;
    output_settings out_;
    std::chrono::milliseconds kill_grace_;

    std::vector<job_record> finished_;  // in completion order
    std::size_t succeeded_ = 0;
    bool all_submitted_ = false;
    bool shutdown_started_ = false;
    bool shutdown_done_ = false;
    bool stopping_ = false;   // everything is over; handlers must not re-arm
    int interrupted_by_ = 0;  // the first SIGINT/SIGTERM received, 0 if none
    std::optional<int> forced_exit_code_;  // set when we stop without waiting for cleanup

    std::chrono::steady_clock::time_point started_;
    std::shared_ptr<status_line> status_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer progress_timer_;
    boost::asio::steady_timer cleanup_deadline_;
};

}  // namespace genesis::cli
