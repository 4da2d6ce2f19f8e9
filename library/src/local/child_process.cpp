#include "local/child_process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <random>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace genesis::launch::detail {

std::string make_job_marker() {
    std::random_device rd;
    static constexpr char hex[] = "0123456789abcdef";
    std::string token;
    for (int i = 0; i < 4; ++i) {
        std::uint32_t word = rd();
        for (int j = 0; j < 8; ++j, word >>= 4) token.push_back(hex[word & 0xf]);
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
    if (params.memory_limit_mb) {
        const rlim_t bytes = static_cast<rlim_t>(*params.memory_limit_mb) * mib;
        why = add(RLIMIT_AS, bytes, bytes, "memory_limit_mb", mib, " MiB");
    }
    if (why.empty() && params.cpu_time_limit) {
        // SIGXCPU at the limit; the hard limit (SIGKILL) one second later in case
        // SIGXCPU is caught or ignored.
        const auto s = static_cast<rlim_t>(std::max<std::int64_t>(1, params.cpu_time_limit->count()));
        why = add(RLIMIT_CPU, s, s + 1, "cpu_time_limit", 1, " s");
    }
    if (why.empty() && params.file_size_limit_mb) {
        const rlim_t bytes = static_cast<rlim_t>(*params.file_size_limit_mb) * mib;
        why = add(RLIMIT_FSIZE, bytes, bytes, "file_size_limit_mb", mib, " MiB");
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

// True when /proc/<pid>/environ holds the exact entry `needle` ("\0NAME=VALUE\0"
// with the leading NUL standing for the start of the block).
bool environment_holds(pid_t pid, const std::string& needle) {
    const std::string path = "/proc/" + std::to_string(pid) + "/environ";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    std::string block(1, '\0');
    char buf[16 * 1024];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        block.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    block.push_back('\0');
    return block.find(needle) != std::string::npos;
}

}  // namespace

sweep_result kill_marked_processes(std::string_view marker, pid_t group) {
    sweep_result result;
    if (marker.empty()) return result;
    std::string needle;
    needle.push_back('\0');
    needle.append(job_marker_variable).append("=").append(marker);
    needle.push_back('\0');
    const pid_t self = ::getpid();
    std::vector<pid_t> killed;
    // A marked process may fork while the scan runs: scan again until a round
    // finds nothing new.
    for (int round = 0; round < 5; ++round) {
        std::size_t found = 0;
        DIR* proc = ::opendir("/proc");
        if (!proc) break;
        while (const dirent* entry = ::readdir(proc)) {
            char* end = nullptr;
            const long value = std::strtol(entry->d_name, &end, 10);
            if (!end || *end != '\0' || value <= 0) continue;
            const auto pid = static_cast<pid_t>(value);
            if (pid == self) continue;
            // The pidfd pins the process: if the pid is recycled after this point,
            // the signal below goes nowhere instead of to a stranger.
            const int pidfd = open_pidfd(pid);
            if (pidfd < 0) continue;
            if (environment_holds(pid, needle)) {
                const bool in_group = group > 0 && ::getpgid(pid) == group;
                if (pidfd_kill(pidfd) == 0 &&
                    std::find(killed.begin(), killed.end(), pid) == killed.end()) {
                    killed.push_back(pid);
                    ++found;
                    ++(in_group ? result.in_group : result.escaped);
                }
            }
            ::close(pidfd);
        }
        ::closedir(proc);
        if (found == 0) break;
    }
    return result;
}

}  // namespace genesis::launch::detail
