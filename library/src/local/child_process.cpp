#include "local/child_process.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <spawn.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

extern char** environ;

namespace genesis::launch::detail {

std::string make_job_marker() {
    // getrandom(2) directly: a std::random_device per job probes the CPU (cpuid, which
    // a virtual machine traps) each time it is made.
    std::uint8_t bytes[16];
    std::size_t have = 0;
    while (have < sizeof bytes) {
        const ssize_t n = ::getrandom(bytes + have, sizeof bytes - have, 0);
        if (n > 0) have += static_cast<std::size_t>(n);
        else if (n < 0 && errno != EINTR) break;
    }
    if (have < sizeof bytes) {  // no getrandom (a kernel before 3.17): the slower way
        std::random_device rd;
        for (auto& b : bytes) b = static_cast<std::uint8_t>(rd());
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string token;
    for (std::uint8_t b : bytes) {
        token.push_back(hex[b & 0xf]);
        token.push_back(hex[b >> 4]);
    }
    return token;
}

std::string plan_limits(const local_params& params, child_limits& out) {
    out = {};
    constexpr rlim_t mib = 1024 * 1024;
    // `unit` converts the limit to the key's own units for the message.
    auto add = [&](int resource, rlim_t soft, rlim_t hard, const char* key, rlim_t unit, const char* unit_name) {
        rlimit current{};
        if (::geteuid() != 0 && ::getrlimit(resource, &current) == 0 && current.rlim_max != RLIM_INFINITY &&
            hard > current.rlim_max) {
            return std::string("job_config.") + key + " = " + std::to_string(hard / unit) + unit_name +
                   " is above this process's hard limit of " + std::to_string(current.rlim_max / unit) + unit_name;
        }
        out.settings[out.count++] = {resource, soft, hard};
        return std::string();
    };
    std::string why;
    if (params.memory_mb) {
        const rlim_t bytes = static_cast<rlim_t>(*params.memory_mb) * mib;
        why = add(RLIMIT_AS, bytes, bytes, "memory_mb", mib, " MiB");
    }
    if (why.empty() && params.cpu_seconds) {
        // SIGXCPU at the limit; the hard limit (SIGKILL) one second later in case
        // SIGXCPU is caught or ignored.
        const auto s = static_cast<rlim_t>(std::max<std::int64_t>(1, params.cpu_seconds->count()));
        why = add(RLIMIT_CPU, s, s + 1, "cpu_seconds", 1, " s");
    }
    if (why.empty() && params.max_file_mb) {
        const rlim_t bytes = static_cast<rlim_t>(*params.max_file_mb) * mib;
        why = add(RLIMIT_FSIZE, bytes, bytes, "max_file_mb", mib, " MiB");
    }
    if (why.empty() && params.max_open_files) {
        const auto n = static_cast<rlim_t>(*params.max_open_files);
        why = add(RLIMIT_NOFILE, n, n, "max_open_files", 1, "");
    }
    if (why.empty() && !params.core_dumps) {
        // Soft limit only: a candidate may raise it again, it is hygiene, not a boundary.
        rlimit current{};
        const rlim_t hard = ::getrlimit(RLIMIT_CORE, &current) == 0 ? current.rlim_max : RLIM_INFINITY;
        out.settings[out.count++] = {RLIMIT_CORE, 0, hard};
    }
    if (!why.empty()) out = {};
    return why;
}

int apply_limits(const child_limits& limits) noexcept {
    for (std::size_t i = 0; i < limits.count; ++i) {
        const rlimit value{limits.settings[i].soft, limits.settings[i].hard};
        if (::setrlimit(limits.settings[i].resource, &value) != 0) return errno;
    }
    return 0;
}

int close_descriptors_except(const int* keep, std::size_t count) noexcept {
    unsigned int next = 0;  // lowest descriptor not yet handled
    for (std::size_t i = 0; i < count; ++i) {
        if (keep[i] < 0) continue;
        const auto fd = static_cast<unsigned int>(keep[i]);
        if (fd > next && ::close_range(next, fd - 1, 0) != 0) return errno;
        next = std::max(next, fd + 1);
    }
    if (::close_range(next, ~0U, 0) != 0) return errno;
    return 0;
}

network_isolation plan_network_isolation(bool network) {
    network_isolation plan;
    if (network) return plan;
    plan.enabled = true;
    plan.user_namespace = ::geteuid() != 0;
    if (plan.user_namespace) {
        plan.uid_map = std::to_string(::geteuid()) + " " + std::to_string(::geteuid()) + " 1\n";
        plan.gid_map = std::to_string(::getegid()) + " " + std::to_string(::getegid()) + " 1\n";
    }
    return plan;
}

namespace {

int write_proc_file(const char* path, const std::string& text) noexcept {
    const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    const ssize_t n = ::write(fd, text.data(), text.size());
    const int err = n == static_cast<ssize_t>(text.size()) ? 0 : (n < 0 ? errno : EIO);
    ::close(fd);
    return err;
}

}  // namespace

int enter_network_isolation(const network_isolation& plan) noexcept {
    if (!plan.enabled) return 0;
    if (::unshare(CLONE_NEWNET | (plan.user_namespace ? CLONE_NEWUSER : 0)) != 0) return errno;
    if (plan.user_namespace) {
        // Keep the same user and group ids inside the namespace.
        static const std::string deny = "deny";
        if (int err = write_proc_file("/proc/self/setgroups", deny)) return err;
        if (int err = write_proc_file("/proc/self/uid_map", plan.uid_map)) return err;
        if (int err = write_proc_file("/proc/self/gid_map", plan.gid_map)) return err;
    }
    // Loopback starts down in a new network namespace.
    const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return errno;
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, "lo", 3);
    int err = 0;
    if (::ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) err = errno;
    if (!err) {
        ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
        if (::ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) err = errno;
    }
    ::close(sock);
    return err;
}

namespace {

// glibc 2.36's <sys/pidfd.h> lacks C linkage for C++; the system calls are used directly.
int open_pidfd(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_kill(int pidfd) noexcept { return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0)); }

enum class environment { marked, unmarked, empty };

// Whether /proc/<pid>/environ holds the exact entry `needle` ("\0NAME=VALUE\0"
// with the leading NUL standing for the start of the block), or reads empty. One
// open, usually one read (a short read of environ is its end), one close.
environment read_environment(pid_t pid, const std::string& needle) {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/environ", static_cast<int>(pid));
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return environment::unmarked;
    std::string block(1, '\0');
    char buf[16 * 1024];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        block.append(buf, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof buf) break;
    }
    ::close(fd);
    if (block.size() == 1) return environment::empty;
    block.push_back('\0');
    return block.find(needle) != std::string::npos ? environment::marked : environment::unmarked;
}

bool environment_holds(pid_t pid, const std::string& needle) {
    return read_environment(pid, needle) == environment::marked;
}

// True while `pid` is in the middle of an exec: its new program's stack, where its
// arguments and environment are, is not set up yet, so both read empty. Not a
// zombie, not a kernel thread (whose both read empty too); a process that was
// started with an empty environment still has its arguments.
bool in_exec(pid_t pid) {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char stat[512];
    const ssize_t n = ::read(fd, stat, sizeof stat - 1);
    ::close(fd);
    if (n <= 0) return false;
    stat[n] = '\0';
    // "pid (comm) state ppid pgrp session tty_nr tpgid flags ...": comm may hold anything.
    const char* p = std::strrchr(stat, ')');
    if (!p || p[1] != ' ' || !p[2]) return false;
    const char state = p[2];
    if (state == 'Z' || state == 'X' || state == 'x') return false;
    p += 3;
    for (int field = 0; field < 5 && p; ++field) {  // ppid pgrp session tty_nr tpgid
        p = std::strchr(p + 1, ' ');
    }
    if (!p) return false;
    constexpr unsigned long kernel_thread = 0x00200000;  // PF_KTHREAD
    if (std::strtoul(p + 1, nullptr, 10) & kernel_thread) return false;
    std::snprintf(path, sizeof path, "/proc/%d/cmdline", static_cast<int>(pid));
    fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char arg;
    const ssize_t args = ::read(fd, &arg, 1);
    ::close(fd);
    return args == 0;
}

// The number in /proc/sys/kernel/ns_last_pid, read at offset 0 of `fd` (-1 when it
// cannot be read).
pid_t read_last_pid(int fd) {
    if (fd < 0) return -1;
    char buf[32];
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char* end = nullptr;
    const long value = std::strtol(buf, &end, 10);
    return end != buf && value > 0 ? static_cast<pid_t>(value) : -1;
}

int open_last_pid() { return ::open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC); }

// Kills `pid` when its environment holds `needle`. Most processes are not the job's:
// their environment is read once and nothing else is done. A marked one is pinned by
// a pidfd and read again through its pid: if the pid was recycled in between, the
// second read is of the new process (killed only if it is marked too), and the
// signal goes to the pinned process (or nowhere if it is gone), never to a stranger.
// True when it was killed now (counted in `result`, remembered in `killed`).
bool kill_if_marked(pid_t pid, const std::string& needle, pid_t group, std::vector<pid_t>& killed,
                    sweep_result& result) {
    environment env = read_environment(pid, needle);
    // A process the job started just before its end may still be in exec, its
    // environment not readable yet: wait for it a moment (rare; at most about 0.2 s).
    for (int i = 0; i < 200 && env == environment::empty && in_exec(pid); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        env = read_environment(pid, needle);
    }
    if (env != environment::marked) return false;
    const int pidfd = open_pidfd(pid);
    if (pidfd < 0) return false;
    bool now = false;
    if (environment_holds(pid, needle)) {
        const bool in_group = group > 0 && ::getpgid(pid) == group;
        if (pidfd_kill(pidfd) == 0 && std::find(killed.begin(), killed.end(), pid) == killed.end()) {
            killed.push_back(pid);
            now = true;
            ++(in_group ? result.in_group : result.escaped);
        }
    }
    ::close(pidfd);
    return now;
}

}  // namespace

launched_pids::launched_pids() : self_(::getpid()) {}

launched_pids::~launched_pids() {
    if (last_pid_fd_ >= 0) ::close(last_pid_fd_);
}

void launched_pids::add(pid_t leader) {
    if (leaders_.size() == 1024) leaders_.pop_front();
    leaders_.push_back(leader);
}

bool launched_pids::started_after(pid_t leader, pid_t pid) const {
    const auto it = std::find(leaders_.rbegin(), leaders_.rend(), leader);
    return it != leaders_.rend() && std::find(leaders_.rbegin(), it, pid) != it;
}

pid_t launched_pids::last_handed_out() {
    if (!opened_) {
        opened_ = true;
        last_pid_fd_ = open_last_pid();
    }
    return read_last_pid(last_pid_fd_);
}

sweep_result kill_marked_processes(std::string_view marker, pid_t group, bool leader_reaped, launched_pids* ours,
                                   int probe_limit) {
    sweep_result result;
    if (marker.empty()) return result;
    std::string needle;
    needle.push_back('\0');
    needle.append(job_marker_variable).append("=").append(marker);
    needle.push_back('\0');
    const pid_t self = ours ? ours->self() : ::getpid();
    std::vector<pid_t> killed;
    std::vector<pid_t> candidates;
    // A marked process may fork while the scan runs: scan again until a round
    // finds nothing new.
    for (int round = 0; round < 5; ++round) {
        // Every process the job made was made after its leader (pid `group`), so while
        // the kernel's pid counter has not wrapped since (the last pid handed out is
        // still >= the leader's), only pids >= the leader's can be the job's (> once
        // it is reaped: its pid is then not in use): the others' environments need not
        // be read.
        pid_t last = -1;
        if (ours) {
            last = ours->last_handed_out();
        } else if (const int fd = open_last_pid(); fd >= 0) {
            last = read_last_pid(fd);
            ::close(fd);
        }
        const bool only_newer = group > 0 && last >= group;
        const pid_t first = leader_reaped ? group + 1 : group;
        // Those pids (threads' ids too: they come from the same counter), less the
        // leaders this launcher started since, when there are few of them: each is
        // probed (a pid no longer in use costs one failed open), /proc is not listed.
        // None: nothing was started since the leader but other jobs' leaders.
        bool probe = false;
        if (only_newer && ours && static_cast<long>(last) - group <= 16L * probe_limit) {
            candidates.clear();
            probe = true;
            for (pid_t pid = first; pid <= last && probe; ++pid) {
                if (pid == self || ours->started_after(group, pid)) continue;
                candidates.push_back(pid);
                probe = candidates.size() <= static_cast<std::size_t>(probe_limit);
            }
        }
        std::size_t found = 0;
        if (probe) {
            for (pid_t pid : candidates)
                if (kill_if_marked(pid, needle, group, killed, result)) ++found;
        } else {
            DIR* proc = ::opendir("/proc");
            if (!proc) break;
            while (const dirent* entry = ::readdir(proc)) {
                char* end = nullptr;
                const long value = std::strtol(entry->d_name, &end, 10);
                if (!end || *end != '\0' || value <= 0) continue;
                const auto pid = static_cast<pid_t>(value);
                if (pid == self || (only_newer && pid < first)) continue;
                if (kill_if_marked(pid, needle, group, killed, result)) ++found;
            }
            ::closedir(proc);
        }
        if (found == 0) break;
    }
    return result;
}

std::size_t signal_group_except_leader(pid_t group, int sig) {
    std::size_t signalled = 0;
    if (group <= 0) return signalled;
    DIR* proc = ::opendir("/proc");
    if (!proc) return signalled;
    while (const dirent* entry = ::readdir(proc)) {
        char* end = nullptr;
        const long value = std::strtol(entry->d_name, &end, 10);
        if (!end || *end != '\0' || value <= 0 || value == group) continue;
        // Opened first: the group check below then holds for the process signalled.
        const int pidfd = open_pidfd(static_cast<pid_t>(value));
        if (pidfd < 0) continue;
        if (::getpgid(static_cast<pid_t>(value)) == group &&
            ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0)
            ++signalled;
        ::close(pidfd);
    }
    ::closedir(proc);
    return signalled;
}

// ---- the jobs' temp folders ---------------------------------------------------------

namespace fs = std::filesystem;

std::string remove_tree(const fs::path& dir) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) {
        // A candidate may have left folders without write or search permission.
        for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            std::error_code ignored;
            if (it->is_directory(ignored) && !it->is_symlink(ignored))
                fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ignored);
        }
        std::error_code ignored;
        fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ignored);
        ec.clear();
        fs::remove_all(dir, ec);
    }
    return ec ? "could not remove the job's temp folder " + dir.string() + ": " + ec.message() : std::string();
}

bool reusable_tmp_folder(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st {};
    bool ok = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 &&
              st.st_uid == ::geteuid() && st.st_nlink == 2;  // 2: no subfolder
    // No extended attribute: an ACL could open it to others, or reach the next job's files.
    if (ok) {
        char names[64];
        ok = ::flistxattr(fd, names, sizeof names) == 0;
    }
    // Nothing but "." and "..".
    alignas(dirent64) char buf[2048];
    for (ssize_t n; ok && (n = ::getdents64(fd, buf, sizeof buf)) != 0;) {
        if (n < 0) ok = false;
        for (ssize_t at = 0; ok && at < n;) {
            const auto* entry = reinterpret_cast<const dirent64*>(buf + at);
            ok = std::strcmp(entry->d_name, ".") == 0 || std::strcmp(entry->d_name, "..") == 0;
            at += entry->d_reclen;
        }
    }
    ::close(fd);
    return ok;
}

tmp_janitor::~tmp_janitor() {
    for (const auto& p : idle_) queue(p);
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
    for (const auto& p : queue_) remove_tree(p);  // only when the thread never ran
    if (!trash_.empty()) ::rmdir(trash_.c_str());
}

void tmp_janitor::queue(fs::path p) {
    {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(p));
    }
    wake_.notify_one();
}

bool tmp_janitor::dispose(const fs::path& dir, bool may_reuse) {
    const fs::path parent = dir.parent_path();
    if (trash_.empty()) {
        std::string templ = (parent / "genesis-launch-trash-XXXXXX").string();
        if (!::mkdtemp(templ.data())) return false;
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::system_error&) {
            ::rmdir(templ.c_str());
            return false;
        }
        trash_ = templ;  // the thread never reads it
    } else if (trash_.parent_path() != parent) {
        return false;
    }
    const fs::path target = trash_ / dir.filename();
    if (may_reuse && reusable_tmp_folder(dir)) {
        if (::renameat2(AT_FDCWD, dir.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) == 0) {
            idle_.push_back(target);
            return true;
        }
    }
    if (::rename(dir.c_str(), target.c_str()) != 0) return false;
    queue(target);
    return true;
}

fs::path tmp_janitor::reuse(const fs::path& parent, const std::string& prefix) {
    if (trash_.empty() || trash_.parent_path() != parent) return {};
    if (names_ == 0) {
        if (::getrandom(&names_, sizeof names_, 0) != static_cast<ssize_t>(sizeof names_))
            names_ = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        names_ |= 1;  // xorshift's state must not be 0
    }
    static constexpr char letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    while (!idle_.empty()) {
        fs::path folder = std::move(idle_.back());
        idle_.pop_back();
        if (!reusable_tmp_folder(folder)) {
            queue(std::move(folder));
            continue;
        }
        for (int attempt = 0; attempt < 16; ++attempt) {
            std::string name = prefix + "-";
            for (int i = 0; i < 6; ++i) {
                // xorshift64: the names only need to differ, their folders are private.
                names_ ^= names_ << 13;
                names_ ^= names_ >> 7;
                names_ ^= names_ << 17;
                name.push_back(letters[names_ % (sizeof letters - 1)]);
            }
            const fs::path target = parent / name;
            if (::renameat2(AT_FDCWD, folder.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) == 0) return target;
            if (errno != EEXIST) break;
        }
        queue(std::move(folder));
    }
    return {};
}

std::string tmp_janitor::take_error() {
    std::lock_guard lock(mutex_);
    return std::exchange(error_, {});
}

void tmp_janitor::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything is deleted
        const fs::path p = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        std::string why = remove_tree(p);
        lock.lock();
        if (!why.empty()) error_ = std::move(why);
    }
}

// ---- bubblewrap ------------------------------------------------------------------

namespace {

bool is_executable(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

bwrap_probe run_bwrap_probe() {
    bwrap_probe probe;
    if (is_executable("/usr/bin/bwrap")) {
        probe.path = "/usr/bin/bwrap";
    } else if (const char* path_env = std::getenv("PATH")) {
        std::stringstream dirs(path_env);
        for (std::string dir; std::getline(dirs, dir, ':');)
            if (!dir.empty() && is_executable(dir + "/bwrap")) {
                probe.path = dir + "/bwrap";
                break;
            }
    }
    if (probe.path.empty()) {
        probe.error = "bubblewrap (bwrap) not found in /usr/bin or on PATH (Debian package bubblewrap)";
        return probe;
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        probe.error = std::string("cannot run ") + probe.path + " --version: " + std::strerror(errno);
        return probe;
    }
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    ::posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    const char* argv[] = {probe.path.c_str(), "--version", nullptr};
    pid_t pid = 0;
    const int spawn_err = ::posix_spawn(&pid, probe.path.c_str(), &actions, nullptr, const_cast<char* const*>(argv), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    std::string text;
    if (spawn_err == 0) {
        char buf[256];
        for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) break;
            if (text.size() < 4096) text.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fds[0]);
    int status = 0;
    if (spawn_err == 0)
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (spawn_err != 0)
        probe.error = "cannot run " + probe.path + " --version: " + std::strerror(spawn_err);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !text.starts_with("bubblewrap "))
        probe.error = probe.path + " --version did not answer as bubblewrap does";
    else
        probe.version = text;
    return probe;
}

}  // namespace

const bwrap_probe& probe_bwrap() {
    static const bwrap_probe probe = run_bwrap_probe();
    return probe;
}

std::vector<std::string> bwrap_arguments(const bwrap_layout& layout) {
    std::vector<std::string> a = {
        // New user (when not root), pid, network, ipc, uts and cgroup namespaces: only
        // loopback, and every process of the job dies with the namespace's init.
        "--unshare-all", "--die-with-parent",
        // Root keeps its capabilities in bwrap unless told otherwise.
        "--cap-drop", "ALL",
        "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        "--bind", layout.private_tmp, "/tmp"};
    // Paths under /tmp are hidden by the private /tmp: bring back those the job reads.
    // /tmp itself or a folder above it would cover the private /tmp again: skipped.
    std::vector<std::string> wanted = layout.readable;
    wanted.insert(wanted.begin(), layout.cwd);
    std::vector<std::string> done;
    for (const auto& path : wanted) {
        const bool covers_tmp = path == "/tmp" || path == "/tmp/" || (path.ends_with("/") ? std::string("/tmp").starts_with(path)
                                                                                        : std::string("/tmp").starts_with(path + "/"));
        if (path.empty() || covers_tmp || std::find(done.begin(), done.end(), path) != done.end()) continue;
        done.push_back(path);
        a.insert(a.end(), {"--ro-bind", path, path});
    }
    a.insert(a.end(), {"--bind", layout.results_dir, layout.results_dir});
    if (!layout.cwd.empty()) a.insert(a.end(), {"--chdir", layout.cwd});
    a.push_back("--");
    return a;
}

// ---- pids cgroup ---------------------------------------------------------------------

namespace {

std::string read_small_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

bool has_token(const std::string& list, const std::string& token, char separator) {
    std::stringstream items(list);
    for (std::string item; std::getline(items, item, separator);) {
        while (!item.empty() && (item.back() == '\n' || item.back() == ' ')) item.pop_back();
        if (item == token) return true;
    }
    return false;
}

int write_text(const std::string& path, const std::string& text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    const ssize_t n = ::write(fd, text.data(), text.size());
    const int err = n == static_cast<ssize_t>(text.size()) ? 0 : (n < 0 ? errno : EIO);
    ::close(fd);
    return err;
}

// Folders where a job's cgroup may go, best first: the own cgroup of this process
// in each pids hierarchy, then (cgroup v2) the hierarchy's root.
std::vector<std::string> pids_cgroup_bases() {
    std::vector<std::string> v1_mounts, v2_mounts;
    std::ifstream mountinfo("/proc/self/mountinfo");
    for (std::string line; std::getline(mountinfo, line);) {
        std::stringstream fields(line);
        std::vector<std::string> f;
        for (std::string field; fields >> field;) f.push_back(field);
        const auto dash = std::find(f.begin(), f.end(), "-");
        if (f.size() < 5 || dash == f.end() || f.end() - dash < 4) continue;
        const std::string& type = dash[1];
        if (type == "cgroup" && has_token(dash[3], "pids", ',')) v1_mounts.push_back(f[4]);
        else if (type == "cgroup2") v2_mounts.push_back(f[4]);
    }
    std::string v1_path, v2_path;
    std::ifstream own("/proc/self/cgroup");
    for (std::string line; std::getline(own, line);) {
        const auto first = line.find(':');
        const auto second = line.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        const std::string controllers = line.substr(first + 1, second - first - 1);
        const std::string path = line.substr(second + 1);
        if (controllers.empty() && line.compare(0, first, "0") == 0) v2_path = path;
        else if (has_token(controllers, "pids", ',')) v1_path = path;
    }
    std::vector<std::string> bases;
    auto join = [](const std::string& mount, const std::string& path) {
        return path.empty() || path == "/" ? mount : mount + path;
    };
    for (const auto& m : v1_mounts) bases.push_back(join(m, v1_path));
    for (const auto& m : v2_mounts) {
        if (!has_token(read_small_file(m + "/cgroup.controllers"), "pids", ' ')) continue;
        if (v2_path != "/" && !v2_path.empty()) bases.push_back(join(m, v2_path));
        bases.push_back(m);
    }
    return bases;
}

std::atomic<unsigned> cgroup_counter{0};

}  // namespace

pids_cgroup::~pids_cgroup() {
    if (!active()) return;
    kill_all();
    // Tasks leave the cgroup a moment after SIGKILL.
    for (int i = 0; i < 500 && !remove(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

std::string pids_cgroup::create(std::uint64_t max) {
    const auto bases = pids_cgroup_bases();
    if (bases.empty()) return "no pids cgroup controller is mounted (cgroup v1 pids or cgroup v2 with pids)";
    return create(max, bases);
}

std::string pids_cgroup::create(std::uint64_t max, const std::vector<std::string>& bases) {
    std::string why = "no folder to create it in";
    for (const auto& base : bases) {
        const std::string dir = base + "/genesis-launch-" + std::to_string(::getpid()) + "-" +
                                std::to_string(cgroup_counter.fetch_add(1));
        // cgroup v2: the controller must be enabled for the children of `base`.
        const std::string subtree = base + "/cgroup.subtree_control";
        if (::access(subtree.c_str(), F_OK) == 0 && !has_token(read_small_file(subtree), "pids", ' '))
            write_text(subtree, "+pids");
        if (::mkdir(dir.c_str(), 0755) != 0) {
            why = "cannot create " + dir + ": " + std::strerror(errno);
            continue;
        }
        if (int err = write_text(dir + "/pids.max", std::to_string(max))) {
            why = "cannot write " + dir + "/pids.max: " + std::strerror(err);
            ::rmdir(dir.c_str());
            continue;
        }
        const int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            why = "cannot open " + dir + "/cgroup.procs: " + std::strerror(errno);
            ::rmdir(dir.c_str());
            continue;
        }
        dir_ = dir;
        procs_fd_ = fd;
        return {};
    }
    return "no writable pids cgroup (" + why + ")";
}

int pids_cgroup::enter() const noexcept {
    if (procs_fd_ < 0) return 0;
    // "0" is the writing process.
    return ::write(procs_fd_, "0", 1) == 1 ? 0 : errno;
}

std::size_t pids_cgroup::kill_all() {
    if (procs_fd_ >= 0) ::close(std::exchange(procs_fd_, -1));
    if (dir_.empty()) return 0;
    std::vector<pid_t> killed;
    const std::string kill_file = dir_ + "/cgroup.kill";  // cgroup v2, Linux 5.14+
    const bool has_kill_file = ::access(kill_file.c_str(), F_OK) == 0;
    // A process may fork while it is being killed: read again until nothing is left.
    for (int round = 0; round < 1000; ++round) {
        std::ifstream procs(dir_ + "/cgroup.procs");
        std::vector<pid_t> pids;
        for (long pid; procs >> pid;) pids.push_back(static_cast<pid_t>(pid));
        if (pids.empty()) break;
        for (pid_t pid : pids) {
            const int pidfd = open_pidfd(pid);
            if (pidfd < 0) continue;
            if (pidfd_kill(pidfd) == 0 && std::find(killed.begin(), killed.end(), pid) == killed.end())
                killed.push_back(pid);
            ::close(pidfd);
        }
        if (has_kill_file) write_text(kill_file, "1");
        std::this_thread::yield();
    }
    return killed.size();
}

bool pids_cgroup::remove(std::string* error) {
    if (dir_.empty()) return true;
    if (::rmdir(dir_.c_str()) == 0 || errno == ENOENT) {
        dir_.clear();
        return true;
    }
    if (error) *error = "could not remove the job's cgroup " + dir_ + ": " + std::strerror(errno);
    return false;
}

}  // namespace genesis::launch::detail
