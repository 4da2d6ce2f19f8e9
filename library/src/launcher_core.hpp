// launcher_core.hpp - the backend-independent part of every launcher: id and
// path resolution, the max_parallel_jobs limiter and queue, cancellation,
// counters, shutdown. Backends only run one prepared job at a time each call.
#pragma once

#include "genesis/launch/job_launcher.hpp"

#include <boost/asio/strand.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <unordered_map>

namespace genesis::launch::detail {

using clock = std::chrono::steady_clock;

// A job after the configuration was applied: every path absolute, args and env merged.
struct prepared_job {
    std::string job_id;
    std::filesystem::path program;
    std::filesystem::path evaluator;
    std::filesystem::path results_dir;
    boost::json::object extra_args;
    std::map<std::string, std::string> env;
    std::optional<std::chrono::milliseconds> timeout;
    line_callback on_stdout;
    line_callback on_stderr;
};

// Handed to a backend for one job. Lives on the launcher's strand.
class job_context {
public:
    explicit job_context(prepared_job j) : job(std::move(j)) {}

    prepared_job job;

    bool cancel_requested() const noexcept { return cancelled_; }
    // The backend's way to stop the job; called at most once, on the strand.
    // If cancellation was already requested, `f` runs at once.
    void on_cancel(std::function<void()> f) {
        if (cancelled_) {
            f();
            return;
        }
        stop_ = std::move(f);
    }
    void clear_on_cancel() { stop_ = nullptr; }
    void request_cancel() {
        if (cancelled_) return;
        cancelled_ = true;
        if (auto f = std::exchange(stop_, nullptr)) f();
    }

private:
    bool cancelled_ = false;
    std::function<void()> stop_;
};

// The launcher's strand, type-erased. Over an io_context's own executor (the usual
// case) it is a strand<io_context::executor_type>: small enough for
// any_io_executor to hold in place, so copying it, and the work-tracking copies
// every asynchronous operation makes, allocate nothing; a strand over a
// type-erased executor is a heap object, and one more allocation per copy that
// changes its properties. make_launcher_strand() picks the kind.
using strand_type = boost::asio::any_io_executor;

strand_type make_launcher_strand(const boost::asio::any_io_executor& ex);

// True on a thread that is running a handler of `strand` (one made by
// make_launcher_strand).
bool running_in_launcher_strand(const boost::asio::any_io_executor& strand);

class backend {
public:
    virtual ~backend() = default;
    virtual std::string_view name() const = 0;
    // Runs one job; calls `done` exactly once, on `strand`. Must honour
    // ctx->on_cancel(). Never throws.
    virtual void run(std::shared_ptr<job_context> ctx, std::function<void(job_result)> done) = 0;
    // After every job finished: releases whatever the backend still holds,
    // then calls `done` on the strand.
    virtual void drain(std::function<void()> done) { done(); }
};

// The logger reference stays valid for the backend's lifetime.
// The completion handler of a backend's job coroutine: delivers its result, or
// turns an escaped exception into an infra_error result, and detaches the
// cancel hook either way. `backend_name` goes into the diagnostic.
std::function<void(std::exception_ptr, job_result)> job_completion(std::shared_ptr<job_context> ctx,
                                                                    std::string backend_name,
                                                                    std::function<void(job_result)> done);

using backend_factory =
    std::function<std::unique_ptr<backend>(strand_type, const launcher_config&, const logger&)>;

// The concrete JobLauncher: all state lives in a shared `state` object on one strand.
class launcher_core final : public JobLauncher {
public:
    launcher_core(const launcher_config& cfg, executor_type ex, const backend_factory& make_backend);
    ~launcher_core() override;

    executor_type get_executor() const override;
    void cancel(const std::string& job_id) override;
    void cancel_all() override;
    launcher_usage usage() const override;
    void set_logger(logger log) override;

    struct state;

private:
    void submit_impl(job_spec job, submit_handler handler) override;
    void shutdown_impl(shutdown_handler handler) override;
    std::function<void()> canceller(std::string job_id) override;

    std::shared_ptr<state> state_;
};

}  // namespace genesis::launch::detail
