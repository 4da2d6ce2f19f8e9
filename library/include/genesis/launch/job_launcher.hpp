// job_launcher.hpp - the backend-independent asynchronous interface.
//
//   auto launcher = genesis::launch::make_launcher(cfg, io.get_executor());
//   auto handle   = launcher->submit({.program_path = "initial.py"});   // any thread
//   job_result r  = handle.result.get();
//
// or, inside a coroutine: `auto [ec, r] = co_await launcher->async_submit(job,
// asio::as_tuple(asio::use_awaitable));`
#pragma once

#include "genesis/launch/config.hpp"
#include "genesis/launch/error.hpp"
#include "genesis/launch/job.hpp"
#include "genesis/launch/logger.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>
#include <optional>
#include <filesystem>

namespace genesis::launch {

// Counters; a snapshot.
struct launcher_usage {
    std::uint64_t submitted = 0;  // accepted by submit()
    std::uint64_t queued = 0;     // waiting for a slot now
    std::uint64_t running = 0;    // holding a slot now
    std::uint64_t finished = 0;   // completed, any outcome
    std::uint64_t rejected = 0;   // refused (invalid job, after shutdown)
    std::array<std::uint64_t, outcome_count> by_outcome{};  // indexed by outcome

    std::uint64_t count(outcome o) const noexcept { return by_outcome[static_cast<std::size_t>(o)]; }
};

// What submit() returns: the future result and a way to cancel this job.
class job_handle {
public:
    job_handle() = default;
    job_handle(std::string id, std::future<job_result> f, std::function<void()> cancel)
        : id_(std::move(id)), result(std::move(f)), cancel_(std::move(cancel)) {}

    const std::string& id() const noexcept { return id_; }
    // Requests cancellation; safe from any thread, any number of times. The
    // future still delivers a job_result (outcome cancelled, unless it had ended).
    void cancel() const {
        if (cancel_) cancel_();
    }

private:
    std::string id_;

public:
    // Ready when the job is over. get() throws launch_error only when the job
    // was rejected (invalid job_spec, launcher shut down).
    std::future<job_result> result;

private:
    std::function<void()> cancel_;
};

class JobLauncher {
public:
    using executor_type = boost::asio::any_io_executor;
    using submit_signature = void(boost::system::error_code, job_result);
    using submit_handler = boost::asio::any_completion_handler<submit_signature>;
    using shutdown_handler = boost::asio::any_completion_handler<void(boost::system::error_code)>;

    virtual ~JobLauncher() = default;
    JobLauncher(const JobLauncher&) = delete;
    JobLauncher& operator=(const JobLauncher&) = delete;

    virtual executor_type get_executor() const = 0;

    // Runs one job. Completes with (error_code, job_result):
    //  - ec empty: the job ran (or was cancelled / timed out); see job_result::result;
    //  - ec set: the job was rejected before it started (errc::invalid_job,
    //    errc::shut_down); job_result carries job_id and diagnostic only.
    // Queues without blocking when max_parallel_jobs are running. Honours the
    // completion handler's cancellation slot (any cancellation type): the job
    // ends with outcome::cancelled. Works with use_future, use_awaitable,
    // deferred, callbacks ... Safe to call from any thread.
    template <typename CompletionToken>
    auto async_submit(job_spec job, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, submit_signature>(
            [this](auto handler, job_spec j) { submit_impl(std::move(j), submit_handler(std::move(handler))); },
            token, std::move(job));
    }

    // Thread-safe facade over async_submit. Assigns job.job_id when empty.
    job_handle submit(job_spec job);

    // A fresh job id ("job-<n>-<hex>"), unique within the process.
    static std::string make_job_id();

    // Cancels one job by id (queued or running); false if no such live job.
    // Completion of the job is reported through its own handler.
    virtual void cancel(const std::string& job_id) = 0;
    // Cancels every queued and running job; new submissions are still accepted.
    virtual void cancel_all() = 0;

    // Stops accepting jobs, cancels every job, waits until every process or
    // sandbox is cleaned up, then completes.
    template <typename CompletionToken>
    auto async_shutdown(CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
            [this](auto handler) { shutdown_impl(shutdown_handler(std::move(handler))); }, token);
    }
    // Blocking form: must not be called from a thread running the launcher's
    // executor, and the executor's context must be running.
    void shutdown();

    virtual launcher_usage usage() const = 0;
    virtual void set_logger(logger log) = 0;

protected:
    JobLauncher() = default;

private:
    virtual void submit_impl(job_spec job, submit_handler handler) = 0;
    virtual void shutdown_impl(shutdown_handler handler) = 0;
    // A thread-safe callable that cancels `job_id` and stays safe to call after
    // the launcher is destroyed (used by job_handle).
    virtual std::function<void()> canceller(std::string job_id) = 0;
};

// Builds the launcher for cfg.type on `executor` (typically an io_context's).
// Fails with errc::backend_unavailable / errc::missing_credentials / errc::config_error.
std::unique_ptr<JobLauncher> make_launcher(const launcher_config& cfg, JobLauncher::executor_type executor,
                                           boost::system::error_code& ec, diagnostics& diag);
// Throwing overload (launch_error).
std::unique_ptr<JobLauncher> make_launcher(const launcher_config& cfg, JobLauncher::executor_type executor);

// What make_launcher cannot know: whether the files of a run are there. Checks that
// the evaluator, each of `programs` and (E2B) every additional file is a readable
// regular file, and (local) that the interpreter, conda or bash is found on the
// jobs' PATH. `programs_key` names the setting the programs came from. Returns a
// one-line description of the first problem, or nullopt.
std::optional<std::string> check_inputs(const launcher_config& cfg,
                                        const std::vector<std::filesystem::path>& programs,
                                        std::string_view programs_key = "evo_config.init_program_path");

// The checks of one job_spec that submit() also makes (a job failing them is
// rejected with errc::invalid_job): extra_args that would pass the contract's own
// flags (`program_path`, `results_dir`, an argparse abbreviation of either, or
// `name=value`, or a string value argparse would read as one of them), env names that are not environment variable names (empty, '=', NUL,
// control characters) and values with NUL, and (E2B) a timeout that would make the
// sandbox live longer than 24 h. Sets ec = errc::invalid_job and a one-line
// diag.client_message naming the field on the first problem; clears both otherwise.
void check_inputs(const launcher_config& cfg, const job_spec& job, boost::system::error_code& ec,
                  diagnostics& diag);

}  // namespace genesis::launch
