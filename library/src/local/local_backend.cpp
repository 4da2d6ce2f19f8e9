#include "local/local_backend.hpp"

#include "genesis/launch/results.hpp"
#include "output_sink.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>

#include <csignal>
#include <cstring>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace genesis::launch::detail {
namespace asio = boost::asio;
namespace bp = boost::process::v2;
namespace fs = std::filesystem;
using namespace asio::experimental::awaitable_operators;
using boost::system::error_code;
using std::chrono::milliseconds;

fs::path find_executable(const std::string& name, const std::string& path_env) {
    if (name.empty()) return {};
    auto executable = [](const fs::path& p) {
        std::error_code ec;
        return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
    };
    if (name.find('/') != std::string::npos) return executable(name) ? fs::absolute(name) : fs::path{};
    std::string_view rest = path_env;
    while (true) {
        auto colon = rest.find(':');
        std::string_view dir = rest.substr(0, colon);
        fs::path candidate = (dir.empty() ? fs::path(".") : fs::path(dir)) / name;
        if (executable(candidate)) return candidate;
        if (colon == std::string_view::npos) break;
        rest.remove_prefix(colon + 1);
    }
    return {};
}

namespace {

std::string seconds_text(milliseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(d.count()) / 1000.0);
    return buf;
}

std::string signal_name(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// The child's environment: the parent's, then the contract's Python settings,
// then configured and per-job variables (later wins).
struct child_environment {
    std::vector<std::string> entries;
    std::vector<const char*> pointers;

    explicit child_environment(const std::map<std::string, std::string>& extra) {
        std::map<std::string, std::string> vars;
        for (char** e = environ; e && *e; ++e) {
            std::string_view kv = *e;
            auto eq = kv.find('=');
            if (eq == std::string_view::npos) continue;
            vars[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
        }
        vars["PYTHONUNBUFFERED"] = "1";
        vars["PYTHONIOENCODING"] = "utf-8";
        for (const auto& [k, v] : extra) vars[k] = v;
        for (const auto& [k, v] : vars) entries.push_back(k + "=" + v);
        for (const auto& e : entries) pointers.push_back(e.c_str());
        pointers.push_back(nullptr);
    }

    std::string get(const std::string& key) const {
        for (const auto& e : entries)
            if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
                return e.substr(key.size() + 1);
        return {};
    }
};

// Process v2 initializer: the environment, a new process group, and a clean
// signal state in the child (the parent may block or ignore signals).
struct job_process_init {
    const child_environment* env;

    error_code on_setup(bp::posix::default_launcher& launcher, const bp::filesystem::path&, const char* const*) {
        launcher.env = env->pointers.data();
        return {};
    }
    error_code on_exec_setup(bp::posix::default_launcher&, const bp::filesystem::path&, const char* const*) {
        if (::setpgid(0, 0) != 0) return {errno, boost::system::system_category()};
        sigset_t all;
        ::sigemptyset(&all);
        ::sigprocmask(SIG_SETMASK, &all, nullptr);
        for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD}) ::signal(sig, SIG_DFL);
        return {};
    }
};

enum class stop_reason { none, timeout, cancel };

// Shared between the job coroutine and timer/cancel callbacks.
struct run_state {
    explicit run_state(asio::any_io_executor ex) : watchdog(ex), grace(ex), drain(ex) {}
    run_state(const run_state&) = delete;
    run_state& operator=(const run_state&) = delete;
    // Whatever path ends the job (even destruction of the io_context), the
    // group does not outlive it.
    ~run_state() {
        *alive = false;
        if (group > 0 && !exited) signal_group(SIGKILL);
    }

    pid_t group = 0;
    bool exited = false;
    stop_reason reason = stop_reason::none;
    asio::steady_timer watchdog;
    asio::steady_timer grace;
    asio::steady_timer drain;
    std::vector<asio::readable_pipe*> pipes;  // valid while the coroutine runs
    bool pipes_abandoned = false;

    void signal_group(int sig) const {
        if (group > 0) ::kill(-group, sig);
    }

    // SIGTERM to the whole group now, SIGKILL after the grace period.
    void stop(stop_reason why, milliseconds grace_period) {
        if (exited || reason != stop_reason::none) return;
        reason = why;
        signal_group(SIGTERM);
        grace.expires_after(grace_period);
        grace.async_wait([this, alive = alive](error_code ec) {
            if (!ec && !*alive) return;
            if (!ec) signal_group(SIGKILL);
        });
    }

    std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

class local_backend final : public backend {
public:
    local_backend(strand_type strand, const launcher_config& cfg, const logger& log)
        : strand_(std::move(strand)), cfg_(cfg), log_(log) {}

    std::string_view name() const override { return "local"; }

    void run(std::shared_ptr<job_context> ctx, std::function<void(job_result)> done) override {
        asio::co_spawn(strand_, run_job(ctx), job_completion(ctx, "local", std::move(done)));
    }

private:
    asio::awaitable<void> pump(asio::readable_pipe& pipe, output_sink& sink) {
        std::array<char, 16 * 1024> buf;
        for (;;) {
            auto [ec, n] = co_await pipe.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
            if (n) sink.write({buf.data(), n});
            if (ec) break;
        }
        sink.finish();
    }

    asio::awaitable<void> wait_exit(bp::basic_process<asio::any_io_executor>& proc, run_state& st) {
        co_await proc.async_wait(asio::as_tuple(asio::use_awaitable));
        st.exited = true;
        st.watchdog.cancel();
        st.grace.cancel();
        // Leftovers in the group (a grandchild still running) die with the job.
        st.signal_group(SIGKILL);
        // Output pipes close when every holder is gone; a process that left the
        // group (setsid) could hold them forever, so stop reading after a while.
        st.drain.expires_after(cfg_.kill_grace);
        st.drain.async_wait([&st, alive = st.alive](error_code ec) {
            if (ec || !*alive) return;
            st.pipes_abandoned = true;
            for (auto* p : st.pipes) {
                error_code ignored;
                p->close(ignored);
            }
        });
    }

    asio::awaitable<job_result> run_job(std::shared_ptr<job_context> ctx) {
        const prepared_job& job = ctx->job;
        job_result r;
        r.backend = "local";
        r.results_dir = job.results_dir;
        const auto t_setup = clock::now();
        auto elapsed = [](clock::time_point t) {
            return std::chrono::duration_cast<milliseconds>(clock::now() - t);
        };
        auto fail_setup = [&](std::string why) {
            r.result = outcome::setup_failed;
            r.diagnostic = std::move(why);
            r.timings.setup = elapsed(t_setup);
            return r;
        };

        // --- setup ---
        std::error_code fec;
        fs::create_directories(job.results_dir, fec);
        if (fec) co_return fail_setup("cannot create results directory " + job.results_dir.string() + ": " + fec.message());
        if (!fs::is_regular_file(job.program, fec)) co_return fail_setup("candidate program not found: " + job.program.string());
        if (!fs::is_regular_file(job.evaluator, fec)) co_return fail_setup("evaluator not found: " + job.evaluator.string());
        if (ctx->cancel_requested()) {
            r.result = outcome::cancelled;
            r.diagnostic = "cancelled before it started";
            co_return r;
        }

        child_environment env(job.env);
        std::vector<std::string> args = evaluator_arguments(job.evaluator, job.program, job.results_dir, job.extra_args);
        fs::path exe;
        const std::string path_env = env.get("PATH");
        if (cfg_.local.conda_env) {
            exe = find_executable("conda", path_env);
            if (exe.empty()) co_return fail_setup("job_config.conda_env is set but 'conda' was not found on PATH");
            args.insert(args.begin(), {"run", "-n", *cfg_.local.conda_env, "--no-capture-output", cfg_.local.python});
        } else {
            exe = find_executable(cfg_.local.python, path_env);
            if (exe.empty()) co_return fail_setup("python interpreter '" + cfg_.local.python + "' not found" +
                                                  (cfg_.local.python.find('/') == std::string::npos ? " on PATH" : ""));
        }

        output_sink out(cfg_.output_capture_bytes, job.on_stdout);
        output_sink err(cfg_.output_capture_bytes, job.on_stderr);
        if (auto ec = out.open_file(job.results_dir / "job_log.out"))
            co_return fail_setup("cannot write " + (job.results_dir / "job_log.out").string() + ": " + ec.message());
        if (auto ec = err.open_file(job.results_dir / "job_log.err"))
            co_return fail_setup("cannot write " + (job.results_dir / "job_log.err").string() + ": " + ec.message());

        auto ex = co_await asio::this_coro::executor;
        asio::readable_pipe out_pipe(ex), err_pipe(ex);
        run_state st(ex);
        error_code spawn_ec;
        bp::basic_process<asio::any_io_executor> proc = bp::default_process_launcher()(
            ex, spawn_ec, exe, args, bp::process_stdio{nullptr, out_pipe, err_pipe}, job_process_init{&env});
        if (spawn_ec) {
            out.finish();
            err.finish();
            co_return fail_setup("could not start " + exe.string() + ": " + spawn_ec.message());
        }
        st.group = proc.id();
        st.pipes = {&out_pipe, &err_pipe};
        log_.log(log_level::debug, "job " + job.job_id + ": started pid " + std::to_string(proc.id()) + ": " +
                                       exe.string() + " " + args.front());
        r.timings.setup = elapsed(t_setup);

        // --- run ---
        const auto t_run = clock::now();
        const auto grace = cfg_.kill_grace;
        const auto limit = job.timeout ? job.timeout : cfg_.local.time;
        if (limit) {
            st.watchdog.expires_after(*limit);
            st.watchdog.async_wait([&st, grace, alive = st.alive](error_code ec) {
                if (!ec && *alive) st.stop(stop_reason::timeout, grace);
            });
        }
        ctx->on_cancel([&st, grace, alive = st.alive] {
            if (*alive) st.stop(stop_reason::cancel, grace);
        });

        co_await (wait_exit(proc, st) && pump(out_pipe, out) && pump(err_pipe, err));

        ctx->clear_on_cancel();
        *st.alive = false;
        st.drain.cancel();
        r.timings.run = elapsed(t_run);

        // --- results ---
        const auto t_cleanup = clock::now();
        const int status = proc.native_exit_code();
        proc.detach();
        if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
        else if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);

        r.stdout_text = out.capture().text();
        r.stderr_text = err.capture().text();
        r.stdout_truncated = out.capture().truncated();
        r.stderr_truncated = err.capture().truncated();
        if (st.pipes_abandoned)
            r.warnings.push_back("a process outside the job's process group kept its output open; stopped reading");

        auto results = read_results(job.results_dir);
        r.correct = results.correct;
        r.error = std::move(results.error);
        r.metrics = std::move(results.metrics);
        r.combined_score = results.combined_score;
        r.result_files = std::move(results.files);
        for (auto& w : results.warnings) r.warnings.push_back(std::move(w));

        const auto limit_text = limit ? seconds_text(*limit) : std::string();
        switch (st.reason) {
            case stop_reason::timeout:
                r.result = outcome::timeout;
                r.diagnostic = "time limit of " + limit_text + " exceeded; process group stopped (SIGTERM, SIGKILL after " +
                               seconds_text(grace) + ")";
                break;
            case stop_reason::cancel:
                r.result = outcome::cancelled;
                r.diagnostic = "cancelled while running; process group stopped";
                break;
            case stop_reason::none:
                if (r.signal) {
                    r.result = outcome::candidate_failed;
                    r.diagnostic = "evaluator killed by " + signal_name(*r.signal);
                } else if (r.exit_code && *r.exit_code == 0) {
                    r.result = outcome::ok;
                } else {
                    r.result = outcome::candidate_failed;
                    r.diagnostic = "evaluator exited with status " + std::to_string(r.exit_code.value_or(-1));
                }
                break;
        }
        // When the evaluator never got to write correct.json, say why the job ended.
        if (r.result != outcome::ok && !r.correct && !fs::exists(job.results_dir / "correct.json", fec))
            r.error = r.diagnostic;
        r.timings.cleanup = elapsed(t_cleanup);
        co_return r;
    }

    strand_type strand_;
    const launcher_config& cfg_;
    const logger& log_;
};

}  // namespace

std::unique_ptr<backend> make_local_backend(strand_type strand, const launcher_config& cfg, const logger& log) {
    return std::make_unique<local_backend>(std::move(strand), cfg, log);
}

}  // namespace genesis::launch::detail
