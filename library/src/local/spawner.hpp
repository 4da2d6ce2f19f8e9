// spawner.hpp - how the local backend starts an evaluator: its environment, the
// Process v2 initializer that sets the child up between fork and exec, and the
// spawner that starts it with clone(CLONE_VM | CLONE_VFORK) when it can.
#pragma once

#include "local/child_process.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/process/v2/process.hpp>

#include <algorithm>
#include <csignal>
#include <map>
#include <string>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace genesis::launch::detail {

namespace asio = boost::asio;
namespace bp = boost::process::v2;
using boost::system::error_code;

// The child's environment: the parent's, then the contract's Python settings,
// then configured and per-job variables (later wins), then the private temp
// folder (unless the job sets TMPDIR) and the job's marker.
struct child_environment {
    std::vector<std::string> entries;
    std::vector<const char*> pointers;  // entries' texts, then nullptr (for execve)

    child_environment(const std::map<std::string, std::string>& extra, const std::string& tmp,
                      const std::string& marker);
    // The value of `key`, or "".
    std::string get(const std::string& key) const;
};

// Process v2 initializer: the environment, the pids cgroup, a new process group
// (a new session under bwrap: no controlling terminal), a clean signal state in the
// child (the parent may block or ignore signals), the network namespace, the
// parent-death signal and the resource limits. Everything the child uses is
// prepared before fork().
struct job_process_init {
    const child_environment* env;
    const child_limits* limits;
    const network_isolation* network;
    const pids_cgroup* cgroup;
    bool new_session = false;
    pid_t parent = 0;  // set: SIGKILL when the starting thread exits

    error_code on_setup(bp::posix::default_launcher& launcher, const bp::filesystem::path&, const char* const*) {
        launcher.env = env->pointers.data();
        return {};
    }
    error_code on_exec_setup(bp::posix::default_launcher& launcher, const bp::filesystem::path&, const char* const*) {
        // First: every process the job starts is then counted against pids.max.
        if (int err = cgroup->enter()) return {err, boost::system::system_category()};
        if ((new_session ? ::setsid() : ::setpgid(0, 0)) < 0) return {errno, boost::system::system_category()};
        // Default dispositions first, then the empty mask (the launcher blocked every
        // signal around the fork): no handler of the engine ever runs in the child,
        // which may share the engine's memory until exec.
        for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGXCPU, SIGXFSZ}) ::signal(sig, SIG_DFL);
        for (int sig = 1; sig < NSIG; ++sig) {
            struct sigaction current {};
            if (::sigaction(sig, nullptr, &current) == 0 && current.sa_handler != SIG_DFL &&
                current.sa_handler != SIG_IGN)
                ::signal(sig, SIG_DFL);
        }
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (int err = enter_network_isolation(*network)) return {err, boost::system::system_category()};
        // After the namespaces: a change of credentials clears the parent-death signal.
        if (parent > 0) {
            if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return {errno, boost::system::system_category()};
            if (::getppid() != parent) return {ESRCH, boost::system::system_category()};
        }
        if (int err = apply_limits(*limits)) return {err, boost::system::system_category()};
        // Boost 1.81's own close_all (Linux) only closes descriptors above the highest
        // whitelisted one, and its exec-error pipe is whitelisted: every descriptor
        // below it (an engine's sockets, other jobs' log files) would reach the
        // evaluator. process_stdio ran before this initializer, so 0-2 are in place.
        std::sort(launcher.fd_whitelist.begin(), launcher.fd_whitelist.end());
        if (int err = close_descriptors_except(launcher.fd_whitelist.data(), launcher.fd_whitelist.size()))
            return {err, boost::system::system_category()};
        return {};
    }
};

// Sanitizer runtimes keep per-thread state (fake stacks, shadow state) that a child
// sharing this thread's memory would use and corrupt: those builds always fork.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool child_may_share_memory = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
constexpr bool child_may_share_memory = false;
#else
constexpr bool child_may_share_memory = true;
#endif
#else
constexpr bool child_may_share_memory = true;
#endif

// Boost 1.81's default_launcher, less what an evaluator does not need. Its child
// rebuilds the io_context's reactor between fork and exec (notify_fork(fork_child):
// a new epoll, timerfd and eventfd, and every registered descriptor added again,
// under the reactor's mutexes, with allocations): work for every job, on the
// parent's path (it waits for the exec), that grows with the engine's open sockets,
// and not safe when another thread held one of those mutexes at fork. A child
// whose exec failed calls exit() (atexit handlers) and is never reaped. And fork()
// write-protects the whole engine for copy-on-write, after which the engine takes
// a page fault for every page it writes again.
//
// Here, unless the child needs its own memory (`shared_memory` false: it enters
// namespaces or a cgroup), it is started like posix_spawn does, with
// clone(CLONE_VM | CLONE_VFORK) on a stack of its own: the engine's memory is not
// copied, and this thread waits until the child has called exec. Every signal is
// blocked around the clone; the initializers (job_process_init) reset the child's
// dispositions before unblocking, and only make system calls. The child runs the
// initializers (which also close the descriptors) and execs; on failure it reports
// the error over the pipe and _exits, and the parent reaps it.
struct vfork_spawner : bp::posix::default_launcher {
    template <typename Args, typename... Inits>
    bp::basic_process<asio::any_io_executor> launch(asio::any_io_executor exec, error_code& ec, bool shared_memory,
                                                    const bp::filesystem::path& executable, Args&& args,
                                                    Inits&&... inits) {
        namespace bpd = bp::posix::detail;
        const char* const* argv = build_argv_(executable, std::forward<Args>(args));
        pipe_guard pg;
        if (::pipe2(pg.p, O_CLOEXEC) != 0) {
            ec.assign(errno, boost::system::system_category());
            return bp::basic_process<asio::any_io_executor>(exec);
        }
        ec = bpd::on_setup(*this, executable, argv, inits...);
        if (ec) {
            bpd::on_error(*this, executable, argv, ec, inits...);
            return bp::basic_process<asio::any_io_executor>(exec);
        }
        fd_whitelist.push_back(pg.p[1]);
        const int error_fd = pg.p[1];
        auto child = [&]() {
            error_code child_ec = bpd::on_exec_setup(*this, executable, argv, inits...);
            if (!child_ec) {
                ::execve(executable.c_str(), const_cast<char* const*>(argv), const_cast<char* const*>(env));
                child_ec.assign(errno, boost::system::system_category());
            }
            const int err = child_ec.value();
            [[maybe_unused]] const auto written = ::write(error_fd, &err, sizeof err);
            ::_exit(127);
        };
        sigset_t all, saved;
        ::sigfillset(&all);
        ::pthread_sigmask(SIG_SETMASK, &all, &saved);
        if (shared_memory) {
            if (stack_.empty()) stack_.resize(256 * 1024);
            pid = ::clone(&run_child<decltype(child)>, stack_.data() + stack_.size(), CLONE_VM | CLONE_VFORK | SIGCHLD,
                          &child);
        } else {
            pid = ::fork();
            if (pid == 0) child();
        }
        const int clone_errno = errno;
        ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
        if (pid == -1) {
            ec.assign(clone_errno, boost::system::system_category());
            bpd::on_fork_error(*this, executable, argv, ec, inits...);
            bpd::on_error(*this, executable, argv, ec, inits...);
            return bp::basic_process<asio::any_io_executor>(exec);
        }
        ::close(pg.p[1]);
        pg.p[1] = -1;
        int child_error = 0;
        ssize_t count;
        while ((count = ::read(pg.p[0], &child_error, sizeof child_error)) == -1 && errno == EINTR) {}
        if (count != 0) {
            ec.assign(count < 0 ? errno : child_error, boost::system::system_category());
            int status = 0;
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            bpd::on_error(*this, executable, argv, ec, inits...);
            return bp::basic_process<asio::any_io_executor>(exec);
        }
        bp::basic_process<asio::any_io_executor> proc(exec, pid);
        bpd::on_success(*this, executable, argv, ec, inits...);
        return proc;
    }

    // The child's stack while it shares our memory (the stack grows down from its end).
    std::vector<char>& stack_;

    explicit vfork_spawner(std::vector<char>& stack) : stack_(stack) {}

private:
    template <typename F>
    static int run_child(void* f) {
        (*static_cast<F*>(f))();
        return 127;  // not reached: the child execs or _exits
    }
};

}  // namespace genesis::launch::detail
