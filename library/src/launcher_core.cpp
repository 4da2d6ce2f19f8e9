#include "launcher_core.hpp"

#include "config/schema.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <mutex>

namespace genesis::launch::detail {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using boost::system::error_code;

namespace {
std::chrono::milliseconds since(clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t);
}

fs::path absolute_or_empty(const fs::path& p) {
    if (p.empty()) return p;
    std::error_code ec;
    auto a = fs::absolute(p, ec);
    return ec ? p : a.lexically_normal();
}
}  // namespace

struct launcher_core::state : std::enable_shared_from_this<state> {
    struct entry {
        prepared_job job;  // moved into ctx when started
        std::string id;
        submit_handler handler;
        clock::time_point submitted = clock::now();
        clock::time_point started{};
        std::shared_ptr<job_context> ctx;  // set while running
    };

    state(const launcher_config& c, executor_type ex)
        : cfg(c), strand(make_launcher_strand(ex)), base_env(evaluator_environment(c)) {}

    // ShinkaEvolve's settings first, so that env_vars (and then the job's own env) win.
    static std::map<std::string, std::string> evaluator_environment(const launcher_config& c) {
        std::map<std::string, std::string> env;
        if (c.numeric_threads_per_job) env = numeric_thread_variables(*c.numeric_threads_per_job);
        if (c.eval_verbose) env["SHINKA_EVAL_VERBOSE"] = *c.eval_verbose ? "1" : "0";
        for (const auto& [k, v] : c.env_vars) env[k] = v;
        return env;
    }

    launcher_config cfg;
    strand_type strand;
    std::unique_ptr<backend> impl;
    logger log;
    std::map<std::string, std::string> base_env;  // evaluator_environment(cfg)

    std::deque<std::shared_ptr<entry>> queue;
    std::unordered_map<std::string, std::shared_ptr<entry>> live;  // queued + running
    std::size_t running = 0;
    bool accepting = true;
    std::vector<shutdown_handler> shutdown_waiters;
    bool draining = false;

    mutable std::mutex usage_mutex;
    launcher_usage counters;

    template <class F>
    void bump(F f) {
        std::lock_guard lock(usage_mutex);
        f(counters);
    }

    void warn(std::string_view msg) const { log.log(log_level::warning, msg); }

    // --- everything below runs on the strand ---

    static void complete(submit_handler h, error_code ec, job_result r) {
        // Only ever called from a strand handler, never from inside the initiating
        // function, so dispatching to the handler's executor cannot run it inline
        // within async_submit().
        auto ex = asio::get_associated_executor(h);
        asio::dispatch(ex, [h = std::move(h), ec, r = std::move(r)]() mutable { std::move(h)(ec, std::move(r)); });
    }

    void reject(submit_handler h, std::string id, errc code, std::string why) {
        bump([](launcher_usage& u) { ++u.rejected; });
        warn("job " + id + " rejected: " + why);
        job_result r;
        r.job_id = std::move(id);
        r.diagnostic = std::move(why);
        r.backend = std::string(impl->name());
        asio::get_associated_cancellation_slot(h).clear();
        complete(std::move(h), make_error_code(code), std::move(r));
    }

    std::optional<std::string> prepare(job_spec& spec, prepared_job& out) const {
        if (spec.program_path.empty()) return "job_spec.program_path is empty";
        // Flags of the contract in extra_args, bad environment names, an E2B lifetime over 24 h.
        if (auto why = config::job_spec_problem(cfg, spec)) return why;
        out.job_id = spec.job_id;
        out.program = absolute_or_empty(spec.program_path);
        out.evaluator = absolute_or_empty(spec.evaluator_path.empty() ? cfg.eval_program_path : spec.evaluator_path);
        if (out.evaluator.empty()) return "no evaluator: job_spec.evaluator_path and job_config.eval_program_path are empty";
        out.results_dir = absolute_or_empty(spec.results_dir.empty() ? cfg.results_dir / spec.job_id : spec.results_dir);
        out.extra_args = cfg.extra_cmd_args;
        for (auto& [k, v] : spec.extra_args) out.extra_args[k] = v;
        out.env = base_env;
        for (auto& [k, v] : spec.env) out.env[k] = v;
        if (spec.timeout && spec.timeout->count() <= 0) return "job_spec.timeout must be positive";
        out.timeout = spec.timeout;
        out.on_stdout = std::move(spec.on_stdout);
        out.on_stderr = std::move(spec.on_stderr);
        return std::nullopt;
    }

    void accept(job_spec spec, submit_handler h) {
        std::string id = spec.job_id;
        if (!accepting) return reject(std::move(h), id, errc::shut_down, "the launcher is shutting down");
        if (live.count(id)) return reject(std::move(h), id, errc::invalid_job, "a job with id '" + id + "' is already live");
        auto e = std::make_shared<entry>();
        e->id = id;
        if (auto why = prepare(spec, e->job)) return reject(std::move(h), id, errc::invalid_job, *why);
        // Not `e->handler = std::move(h)`: Boost 1.81's any_completion_handler
        // move-assignment recurses forever (it copies from an lvalue).
        e->handler.swap(h);
        live.emplace(id, e);
        queue.push_back(e);
        bump([](launcher_usage& u) {
            ++u.submitted;
            ++u.queued;
        });
        log.log(log_level::debug, "job " + id + " queued");
        pump();
    }

    void pump() {
        const auto limit = static_cast<std::size_t>(std::max(1, cfg.max_parallel_jobs));
        while (running < limit && !queue.empty()) {
            auto e = std::move(queue.front());
            queue.pop_front();
            start(std::move(e));
        }
    }

    void start(std::shared_ptr<entry> e) {
        ++running;
        bump([](launcher_usage& u) {
            --u.queued;
            ++u.running;
        });
        e->started = clock::now();
        e->ctx = std::make_shared<job_context>(std::move(e->job));
        log.log(log_level::debug, "job " + e->id + " started");
        impl->run(e->ctx, [self = shared_from_this(), e](job_result r) { self->finish(e, std::move(r), true); });
    }

    void finish(const std::shared_ptr<entry>& e, job_result r, bool was_running) {
        r.job_id = e->id;
        if (r.backend.empty()) r.backend = std::string(impl->name());
        r.timings.queued = std::chrono::duration_cast<std::chrono::milliseconds>(
            (was_running ? e->started : clock::now()) - e->submitted);
        r.timings.total = since(e->submitted);
        live.erase(e->id);
        if (was_running) --running;
        bump([&](launcher_usage& u) {
            if (was_running) --u.running;
            else --u.queued;
            ++u.finished;
            ++u.by_outcome[static_cast<std::size_t>(r.result)];
        });
        log.log(r.result == outcome::ok ? log_level::debug : log_level::info,
                "job " + e->id + " finished: " + std::string(to_string(r.result)) +
                    (r.diagnostic.empty() ? "" : " (" + r.diagnostic + ")"));
        auto h = std::move(e->handler);
        asio::get_associated_cancellation_slot(h).clear();
        complete(std::move(h), {}, std::move(r));
        pump();
        maybe_finish_shutdown();
    }

    void cancel(const std::string& id) {
        auto it = live.find(id);
        if (it == live.end()) return;
        auto e = it->second;
        if (e->ctx) {
            log.log(log_level::debug, "job " + id + " cancel requested");
            e->ctx->request_cancel();
            return;
        }
        // Still queued: it never started.
        std::erase(queue, e);
        job_result r;
        r.result = outcome::cancelled;
        r.diagnostic = "cancelled before it started";
        r.results_dir = e->job.results_dir;
        finish(e, std::move(r), false);
    }

    void cancel_all() {
        std::vector<std::string> ids;
        ids.reserve(live.size());
        for (auto& [id, e] : live) ids.push_back(id);
        for (auto& id : ids) cancel(id);
    }

    void maybe_finish_shutdown() {
        if (accepting || draining || running != 0 || !queue.empty() || shutdown_waiters.empty()) return;
        draining = true;
        impl->drain([self = shared_from_this()] {
            self->draining = false;
            auto waiters = std::move(self->shutdown_waiters);
            self->shutdown_waiters.clear();
            for (auto& w : waiters) {
                auto ex = asio::get_associated_executor(w);
                asio::dispatch(ex, [w = std::move(w)]() mutable { std::move(w)(error_code{}); });
            }
        });
    }
};

std::function<void(std::exception_ptr, job_result)> job_completion(std::shared_ptr<job_context> ctx,
                                                                    std::string backend_name,
                                                                    std::function<void(job_result)> done) {
    return [ctx = std::move(ctx), name = std::move(backend_name), done = std::move(done)](std::exception_ptr ep,
                                                                                           job_result r) {
        if (ep) {
            r = job_result{};
            r.result = outcome::infra_error;
            r.backend = name;
            r.results_dir = ctx->job.results_dir;
            const std::string prefix = "internal error in the " + name + " backend";
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                r.diagnostic = prefix + ": " + e.what();
            } catch (...) {
                r.diagnostic = prefix;
            }
        }
        ctx->clear_on_cancel();
        done(std::move(r));
    };
}

launcher_core::launcher_core(const launcher_config& cfg, executor_type ex, const backend_factory& make_backend)
    : state_(std::make_shared<state>(cfg, std::move(ex))) {
    state_->impl = make_backend(state_->strand, state_->cfg, state_->log);
}

launcher_core::~launcher_core() {
    // Jobs hold the state alive; make sure nothing keeps running unattended.
    asio::post(state_->strand, [s = state_] {
        s->accepting = false;
        s->cancel_all();
    });
}

JobLauncher::executor_type launcher_core::get_executor() const { return state_->strand; }

void launcher_core::submit_impl(job_spec job, submit_handler handler) {
    if (job.job_id.empty()) job.job_id = make_job_id();
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) {
        slot.assign([w = std::weak_ptr<state>(state_), id = job.job_id](asio::cancellation_type) {
            if (auto s = w.lock()) asio::post(s->strand, [s, id] { s->cancel(id); });
        });
    }
    asio::post(state_->strand, [s = state_, job = std::move(job), h = std::move(handler)]() mutable {
        s->accept(std::move(job), std::move(h));
    });
}

void launcher_core::cancel(const std::string& job_id) {
    asio::post(state_->strand, [s = state_, job_id] { s->cancel(job_id); });
}

void launcher_core::cancel_all() {
    asio::post(state_->strand, [s = state_] { s->cancel_all(); });
}

void launcher_core::shutdown_impl(shutdown_handler handler) {
    asio::post(state_->strand, [s = state_, h = std::move(handler)]() mutable {
        s->accepting = false;
        s->shutdown_waiters.push_back(std::move(h));
        s->cancel_all();
        s->maybe_finish_shutdown();
    });
}

std::function<void()> launcher_core::canceller(std::string job_id) {
    return [w = std::weak_ptr<state>(state_), id = std::move(job_id)] {
        if (auto s = w.lock()) asio::post(s->strand, [s, id] { s->cancel(id); });
    };
}

launcher_usage launcher_core::usage() const {
    std::lock_guard lock(state_->usage_mutex);
    return state_->counters;
}

void launcher_core::set_logger(logger log) {
    asio::post(state_->strand, [s = state_, log = std::move(log)]() mutable { s->log = std::move(log); });
}

strand_type make_launcher_strand(const asio::any_io_executor& ex) {
    if (const auto* io = ex.target<asio::io_context::executor_type>()) return asio::make_strand(*io);
    return asio::make_strand(ex);
}

bool running_in_launcher_strand(const asio::any_io_executor& strand) {
    if (const auto* s = strand.target<asio::strand<asio::io_context::executor_type>>())
        return s->running_in_this_thread();
    if (const auto* s = strand.target<asio::strand<asio::any_io_executor>>()) return s->running_in_this_thread();
    return false;
}

}  // namespace genesis::launch::detail
