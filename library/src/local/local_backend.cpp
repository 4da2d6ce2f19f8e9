#include "local/local_backend.hpp"

#include "local/child_process.hpp"
#include "local/spawn_plan.hpp"
#include "local/spawner.hpp"

#include "outcome.hpp"
#include "output_sink.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
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

// The job's own temp folder (TMPDIR), removed with everything in it when the job ends.
struct private_tmp_dir {
    fs::path path;

    private_tmp_dir() = default;
    private_tmp_dir(const private_tmp_dir&) = delete;
    private_tmp_dir& operator=(const private_tmp_dir&) = delete;
    ~private_tmp_dir() { remove(); }

    // A folder an earlier job left empty (janitor.reuse), else a new one.
    // Empty, or an error message.
    std::string create(const std::string& job_id, tmp_janitor& janitor) {
        std::error_code ec;
        fs::path base = fs::temp_directory_path(ec);
        if (ec) return "no temp folder: " + ec.message();
        std::string name = "genesis-job-";
        for (char c : job_id.substr(0, 40))
            name.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_');
        path = janitor.reuse(base, name);
        if (!path.empty()) return {};
        std::string templ = (base / (name + "-XXXXXX")).string();
        if (!::mkdtemp(templ.data())) return "cannot create a temp folder in " + base.string() + ": " + std::strerror(errno);
        path = templ;
        return {};
    }

    // Now. Empty, or an error message.
    std::string remove() {
        if (path.empty()) return {};
        return remove_tree(std::exchange(path, {}));
    }

    // Gone from its path now, deleted by `janitor` (or here when it cannot take it),
    // or kept for another job when `may_reuse` and it is empty and private.
    // Empty, or an error message.
    std::string dispose(tmp_janitor& janitor, bool may_reuse) {
        if (path.empty()) return {};
        if (janitor.dispose(path, may_reuse)) {
            path.clear();
            return {};
        }
        return remove();
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
        if (group > 0 && !swept) kill_marked_processes(marker, group);
    }

    pid_t group = 0;
    bool group_outlived_leader = false;  // the kill at the leader's exit still found members
    bool spare_leader_sigterm = false;  // bwrap: SIGTERM to the evaluator, not to bwrap
    std::string marker;  // empty: no sweep of escaped processes
    pids_cgroup* cgroup = nullptr;  // max_processes: emptied when the evaluator exits
    bool swept = false;
    sweep_result sweep;
    bool exited = false;
    stop_reason reason = stop_reason::none;
    asio::steady_timer watchdog;
    asio::steady_timer grace;
    asio::steady_timer drain;
    std::vector<asio::readable_pipe*> pipes;  // valid while the coroutine runs
    bool pipes_abandoned = false;

    // True when a process was signalled.
    bool signal_group(int sig) const {
        if (group <= 0) return false;
        if (sig == SIGTERM && spare_leader_sigterm) return signal_group_except_leader(group, sig) > 0;
        return ::kill(-group, sig) == 0;
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
        // Leftovers in the group (a grandchild still running) die with the job,
        // and so do marked processes that left the group.
        st.group_outlived_leader = st.signal_group(SIGKILL);
        st.sweep = kill_marked_processes(st.marker, st.group, true, &launched_);
        st.swept = true;
        // What is left in the job's cgroup dies too (also processes that dropped the marker).
        if (st.cgroup) st.cgroup->kill_all();
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

        const local_params& lp = cfg_.local;
        const bool sandboxed = lp.isolation == local_isolation::bwrap;
        const bwrap_probe* bwrap = sandboxed ? &probe_bwrap() : nullptr;
        if (bwrap && !bwrap->error.empty())
            co_return fail_setup("job_config.isolation = bwrap: " + bwrap->error);
        child_limits limits;
        if (auto why = plan_limits(lp, limits); !why.empty()) co_return fail_setup(why);
        // Under bwrap the network namespace is bwrap's own.
        const network_isolation network = plan_network_isolation(lp.network || sandboxed);
        private_tmp_dir tmp;
        // Under bwrap the private folder is always made: it becomes the job's /tmp.
        const bool job_sets_tmpdir = job.env.contains("TMPDIR");
        if (sandboxed || (lp.private_tmp && !job_sets_tmpdir))
            if (auto why = tmp.create(job.job_id, janitor_); !why.empty()) co_return fail_setup(why);
        const std::string marker = lp.kill_escaped ? make_job_marker() : std::string();
        const std::string tmp_var = job_sets_tmpdir ? std::string() : sandboxed ? std::string("/tmp") : tmp.path.string();
        child_environment env(job.env, tmp_var, marker);
        pids_cgroup cgroup;
        if (lp.max_processes)
            if (auto why = cgroup.create(*lp.max_processes); !why.empty())
                co_return fail_setup("job_config.max_processes = " + std::to_string(*lp.max_processes) +
                                     " needs a pids cgroup: " + why);
        const std::string path_env = env.get("PATH");
        spawn_command command;
        if (auto why = plan_command(lp, evaluator_arguments(job.evaluator, job.program, job.results_dir, job.extra_args),
                                    [&](const std::string& name) { return resolve(name, path_env); }, command);
            !why.empty())
            co_return fail_setup(std::move(why));
        if (sandboxed) {
            std::error_code cwd_ec;
            bwrap_layout layout;
            layout.private_tmp = tmp.path.string();
            layout.results_dir = fs::absolute(job.results_dir, cwd_ec).string();
            layout.cwd = fs::current_path(cwd_ec).string();
            for (const fs::path& p : {fs::absolute(job.program, cwd_ec).parent_path(),
                                      fs::absolute(job.evaluator, cwd_ec).parent_path()})
                layout.readable.push_back(p.string());
            command = wrap_in_bwrap(std::move(command), std::move(layout), bwrap->path);
        }
        const fs::path& exe = command.exe;
        const std::vector<std::string>& args = command.args;

        output_sink out(cfg_.output_capture_bytes, job.on_stdout);
        output_sink err(cfg_.output_capture_bytes, job.on_stderr);
        const std::uint64_t log_limit =
            lp.log_limit_mb ? *lp.log_limit_mb * 1024 * 1024 : std::numeric_limits<std::uint64_t>::max();
        if (auto ec = out.open_file(job.results_dir / "job_log.out", log_limit))
            co_return fail_setup("cannot write " + (job.results_dir / "job_log.out").string() + ": " + ec.message());
        if (auto ec = err.open_file(job.results_dir / "job_log.err", log_limit))
            co_return fail_setup("cannot write " + (job.results_dir / "job_log.err").string() + ": " + ec.message());

        auto ex = co_await asio::this_coro::executor;
        asio::readable_pipe out_pipe(ex), err_pipe(ex);
        run_state st(ex);
        st.cgroup = cgroup.active() ? &cgroup : nullptr;
        error_code spawn_ec;
        // Namespaces and cgroups are entered by a child with its own memory (unshare of a
        // user namespace refuses a shared one).
        const bool shared_memory = child_may_share_memory && !network.enabled && !cgroup.active();
        bp::basic_process<asio::any_io_executor> proc = vfork_spawner(child_stack_).launch(
            ex, spawn_ec, shared_memory, exe, args, bp::process_stdio{nullptr, out_pipe, err_pipe},
            job_process_init{&env, &limits, &network, &cgroup, sandboxed, lp.kill_on_parent_exit ? ::getpid() : 0});
        if (spawn_ec) {
            out.finish();
            err.finish();
            // The errors unshare() and the id maps give when namespaces are not allowed.
            const int e = spawn_ec.value();
            const bool namespace_error = network.enabled && (e == EPERM || e == EINVAL || e == ENOSPC || e == EUSERS);
            co_return fail_setup("could not start " + exe.string() + ": " + spawn_ec.message() +
                                 (namespace_error ? " (job_config.network=false needs network namespaces; "
                                                    "unprivileged user namespaces when not root)"
                                                  : ""));
        }
        st.group = proc.id();
        launched_.add(proc.id());
        // bwrap leads the group and would die of SIGTERM, taking the sandbox down before
        // the evaluator could handle it; SIGKILL still goes to the whole group.
        st.spare_leader_sigterm = sandboxed;
        st.marker = marker;
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
        if (st.cgroup) {
            // The kernel lets go of killed tasks a moment after they exit.
            std::string why;
            asio::steady_timer pause(ex);
            for (int i = 0; i < 200 && !cgroup.remove(&why); ++i) {
                cgroup.kill_all();
                pause.expires_after(milliseconds(10));
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            if (cgroup.active()) r.warnings.push_back(why);
        }

        // --- results ---
        const auto t_cleanup = clock::now();
        const int status = proc.native_exit_code();
        proc.detach();
        if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
        else if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
        if (sandboxed && r.exit_code) {
            // bwrap exits with 128 + N when the evaluator died of signal N, and with 1
            // after its own error message when it could not set the sandbox up. Only
            // signals that end processes on their own (crashes, limits, SIGKILL) or the
            // stop's SIGTERM are read back: an evaluator's own `exit(130)` stays an exit code.
            const int folded = *r.exit_code - 128;
            bool is_signal = st.reason != stop_reason::none && folded == SIGTERM;
            for (int sig : {SIGKILL, SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGXCPU, SIGXFSZ})
                is_signal = is_signal || folded == sig;
            if (is_signal) {
                r.signal = *r.exit_code - 128;
                r.exit_code.reset();
            } else if (*r.exit_code == 1 && err.capture().text().starts_with("bwrap: ")) {
                std::string line = err.capture().text();
                line = line.substr(0, line.find('\n'));
                r.timings.run = {};
                co_return fail_setup("job_config.isolation = bwrap: the sandbox could not be set up: " + line);
            }
        }

        record_output(r, out, err);
        for (const auto& [sink, name] : {std::pair{&out, "job_log.out"}, std::pair{&err, "job_log.err"}})
            if (sink->file_truncated())
                r.warnings.push_back(std::string(name) + " stopped at job_config.log_limit_mb = " +
                                     std::to_string(*lp.log_limit_mb) + " MiB; the rest of the output was not logged");
        if (st.sweep.escaped)
            r.warnings.push_back("killed " + std::to_string(st.sweep.escaped) +
                                 " process(es) of the job that had left its process group");
        // The folder may serve the next job only when no process of this one is known to
        // be left: the sweep of marked processes ran (kill_escaped) and found none, the
        // group was empty once the leader had exited, the job was not stopped, its output
        // was not abandoned, no cgroup had to be emptied. reusable_tmp_folder checks the
        // folder itself, here and again when the next job takes it.
        const bool may_reuse = !st.marker.empty() && st.sweep.escaped == 0 && st.sweep.in_group == 0 &&
                               !st.group_outlived_leader && st.reason == stop_reason::none &&
                               !st.pipes_abandoned && !st.cgroup;
        if (auto why = tmp.dispose(janitor_, may_reuse); !why.empty()) r.warnings.push_back(std::move(why));
        if (auto why = janitor_.take_error(); !why.empty()) r.warnings.push_back(std::move(why));
        if (st.pipes_abandoned)
            r.warnings.push_back("a process outside the job's process group kept its output open; stopped reading");

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
                if (r.signal && *r.signal == SIGXCPU && lp.cpu_seconds) {
                    r.result = outcome::timeout;
                    r.diagnostic = "CPU time limit of " + std::to_string(lp.cpu_seconds->count()) +
                                   "s exceeded (SIGXCPU)";
                } else if (r.signal && *r.signal == SIGXFSZ && lp.max_file_mb) {
                    r.result = outcome::candidate_failed;
                    r.diagnostic = "file size limit of " + std::to_string(*lp.max_file_mb) +
                                   " MiB exceeded (SIGXFSZ)";
                } else {
                    classify_exit(r, {r.exit_code, r.signal, {}});
                }
                break;
        }
        if (lp.memory_mb && r.result == outcome::candidate_failed &&
            r.stderr_text.find("MemoryError") != std::string::npos)
            r.warnings.push_back("the evaluator ran out of memory (job_config.memory_mb = " +
                                 std::to_string(*lp.memory_mb) + ")");
        record_results(r, job.results_dir);
        r.timings.cleanup = elapsed(t_cleanup);
        co_return r;
    }

    // The interpreter (or conda) is looked up once per launcher and PATH, not per
    // job; a name that is not found is looked up again by the next job.
    fs::path resolve(const std::string& name, const std::string& path_env) {
        auto key = std::make_pair(name, path_env);
        if (auto it = resolved_.find(key); it != resolved_.end()) return it->second;
        fs::path exe = find_executable(name, path_env);
        if (!exe.empty()) resolved_.emplace(std::move(key), exe);
        return exe;
    }

    strand_type strand_;
    const launcher_config& cfg_;
    const logger& log_;
    std::map<std::pair<std::string, std::string>, fs::path> resolved_;  // on the strand
    tmp_janitor janitor_;
    launched_pids launched_;  // the leaders started, for the sweeps (on the strand)
    std::vector<char> child_stack_;  // vfork_spawner's, one spawn at a time on the strand
};

}  // namespace

std::unique_ptr<backend> make_local_backend(strand_type strand, const launcher_config& cfg, const logger& log) {
    return std::make_unique<local_backend>(std::move(strand), cfg, log);
}

}  // namespace genesis::launch::detail
