// sandbox_runtime.hpp - what a sandbox looks like from inside, how envd paths
// map onto the host, and running a command in a sandbox with bubblewrap.
//
// The view a sandbox process gets (one bubblewrap per command):
//   /               the host's root, read-only
//   /home/user      <sandbox root>/home, writable (HOME; the default cwd)
//   /tmp            <sandbox root>/tmp, writable, shared by the sandbox's commands
//   /home, /root    empty (tmpfs): the host's homes are invisible
//   <state dir>     empty (tmpfs) when it is not under /tmp, /home or /root already:
//                   other sandboxes are invisible
//   /opt/e2b        the template's runtime: bin/{python,python3,pip,pip3}, etc/profile
//   /etc/profile    a wrapper of the host's profile that keeps /opt/e2b/bin on PATH
//   own PID, IPC and UTS namespaces; no network unless the sandbox has internet.
// Processes run with the emulator's uid (root here: the sandbox's "user" is root).
//
// Path rule for envd (files, filesystem RPCs, cwd):
//   "~", "~/x" and relative paths are relative to /home/user; "." and ".." are
//   resolved lexically (like Go's filepath.Clean). Only /home/user/... and
//   /tmp/... are served; they map to <sandbox root>/home/... and
//   <sandbox root>/tmp/... . Any other absolute path is refused (it would be the
//   read-only host, never touched by envd). Symlinks are followed as the sandbox
//   sees them (an absolute target is a sandbox path), one component at a time
//   with O_NOFOLLOW, so a link can never lead envd onto a host path.
#pragma once

#include "sandbox.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/writable_pipe.hpp>

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace genesis::e2b_emulator {

namespace asio = boost::asio;

inline constexpr std::string_view sandbox_home_path = "/home/user";
inline constexpr std::string_view sandbox_tmp_path = "/tmp";

// A file descriptor that closes itself.
class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
    unique_fd& operator=(unique_fd&& o) noexcept;
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd();
    int get() const noexcept { return fd_; }
    int release() noexcept {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }
    explicit operator bool() const noexcept { return fd_ >= 0; }

private:
    int fd_ = -1;
};

// --- paths ---

// The absolute, clean sandbox path for `path` as a client sent it (see the rule above).
std::string normalize_sandbox_path(std::string_view path);

// Where a sandbox path lives on the host: a directory (O_PATH) beneath one of
// the sandbox's writable folders, and the last component in it ("." when the
// path is /home/user or /tmp itself). Use with the *at() system calls.
struct host_location {
    unique_fd dir;
    std::string name;
    std::string view;      // the normalized sandbox path that was asked for
    std::string resolved;  // the sandbox path after following symlinks
    bool is_area_root() const { return name == "."; }
};

struct locate_options {
    bool create_parents = false;  // mkdir missing parent folders (mode 0755)
    bool follow_last = false;     // when the last component is a symlink, follow it
};

// Errors: no_such_file_or_directory (a parent is missing), not_a_directory,
// too_many_symbolic_link_levels, permission_denied (outside /home/user and /tmp;
// see outside_message()), or what the system calls said.
std::error_code locate(const sandbox& sb, std::string_view path, const locate_options& opts, host_location& out);
// The text for a path that is refused because it is outside the served folders.
std::string outside_message(const std::string& view);
// Whether `view` (normalized) is inside /home/user or /tmp.
bool inside_served_area(std::string_view view);

// Whether a normalized sandbox path is a directory a sandbox process could chdir into.
bool sandbox_directory_exists(const sandbox& sb, const std::filesystem::path& state_dir, const std::string& view);

// --- processes ---

struct process_spec {
    std::string cmd;
    std::vector<std::string> args;
    std::map<std::string, std::string> envs;  // request envs (override the sandbox's)
    std::string cwd;                          // normalized sandbox path
    bool stdin_pipe = false;                  // else /dev/null
};

// How a process ended, in envd's terms (Go's os.ProcessState).
struct exit_report {
    bool exited = false;  // false when killed by a signal
    int exit_code = 0;    // -1 when killed by a signal
    int signal = 0;
    std::string status;   // "exit status 3", "signal: killed", ...
};

// A command running in a sandbox: bubblewrap, in its own session and process
// group, and inside it /bin/sh -c 'exec "$@"' -- cmd args... (so a missing
// command exits 127, as with envd's wrapper).
class sandbox_process {
public:
    // Starts the command; null + `error` when bubblewrap could not be started.
    static std::unique_ptr<sandbox_process> start(asio::any_io_executor ex, const sandbox& sb,
                                                  const std::filesystem::path& state_dir, const process_spec& spec,
                                                  std::string& error);
    ~sandbox_process();  // SIGKILLs the group and reaps, when still running
    sandbox_process(const sandbox_process&) = delete;
    sandbox_process& operator=(const sandbox_process&) = delete;

    pid_t pid() const noexcept { return pid_; }  // bubblewrap's host pid = the process group
    asio::readable_pipe& out() { return out_; }
    asio::readable_pipe& err() { return err_; }
    asio::writable_pipe* in() { return in_ && in_->is_open() ? &*in_ : nullptr; }
    void close_stdin();

    // SIGKILL goes to the whole group (bubblewrap dies, and the sandbox's PID
    // namespace with it). Other signals go to the command only, as envd does.
    void signal(int sig);
    // Waits until bubblewrap exits (reaps it).
    asio::awaitable<exit_report> wait();
    // Synchronous teardown: SIGKILL the group and reap. Safe to call repeatedly.
    void kill_and_reap();
    bool reaped() const noexcept { return reaped_; }

    struct impl;

private:
    explicit sandbox_process(asio::any_io_executor ex);
    void signal_command(int sig, int attempt);
    std::unique_ptr<impl> impl_;
    pid_t pid_ = -1;
    asio::readable_pipe out_;
    asio::readable_pipe err_;
    std::optional<asio::writable_pipe> in_;
    bool reaped_ = false;
    int status_ = 0;         // raw wait status once reaped
    int sent_signal_ = 0;    // the last signal we delivered
};

// Go's name for a signal ("killed", "terminated", "segmentation fault", ...).
std::string go_signal_text(int sig);

// Finds bubblewrap; an error message when it is missing.
std::string check_bubblewrap();

}  // namespace genesis::e2b_emulator
