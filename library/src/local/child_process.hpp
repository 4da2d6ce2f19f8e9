// child_process.hpp - what the local backend does around one evaluator process
// besides spawning it: resource limits and namespaces applied in the child, the
// job's marker variable, and the sweep of marked processes that left the job's
// process group.
//
// Everything the child runs between fork() and exec() is prepared in the parent:
// the child-side functions only make system calls (async-signal-safe).
#pragma once

#include "genesis/launch/config.hpp"

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/types.h>

namespace genesis::launch::detail {

// The environment variable that marks every process of one job.
inline constexpr std::string_view job_marker_variable = "GENESIS_LAUNCH_JOB";

// A fresh random token (32 hex digits) for one job's marker.
std::string make_job_marker();

struct rlimit_setting {
    int resource = 0;
    rlim_t soft = 0;
    rlim_t hard = 0;
};

// The resource limits of one job's evaluator, computed in the parent.
struct child_limits {
    std::array<rlimit_setting, 5> settings{};
    std::size_t count = 0;
};

// Plans the limits of `params`. Returns an error message (and nothing planned)
// when a limit is above this process's hard limit, which an unprivileged child
// could not set.
std::string plan_limits(const local_params& params, child_limits& out);

// In the child: applies the planned limits. 0 or an errno value.
int apply_limits(const child_limits& limits) noexcept;

// In the child: closes every descriptor except those in `keep` (sorted ascending).
// 0 or an errno value.
int close_descriptors_except(const int* keep, std::size_t count) noexcept;

// A private network namespace (loopback only) for the child.
struct network_isolation {
    bool enabled = false;
    bool user_namespace = false;  // needed when not root
    std::string uid_map;          // "<uid> <uid> 1\n"
    std::string gid_map;
};

network_isolation plan_network_isolation(bool network);

// In the child: enters the planned namespaces and brings loopback up. 0 or an errno value.
int enter_network_isolation(const network_isolation& plan) noexcept;

// ---- the jobs' temp folders ----

// Removes a folder and everything in it, also subfolders a candidate left without
// write or search permission. Empty, or an error message.
std::string remove_tree(const std::filesystem::path& dir);

// Whether `dir` may serve another job as its temp folder: a directory (not a
// symbolic link) owned by our effective user, mode exactly 0700, no extended
// attributes (no ACL), and empty.
bool reusable_tmp_folder(const std::filesystem::path& dir);

// Deletes the jobs' temp folders on one thread of its own, so that deleting (an
// rmdir can take milliseconds on a busy disk) never holds up the io_context
// thread between one job and the next. A folder is first renamed into a trash
// folder next to it (genesis-launch-trash-XXXXXX), so its path is gone before the
// job's result is delivered. The thread sleeps on a condition variable while there
// is nothing to delete; it starts with the first folder and is joined, with
// everything deleted and the trash folder removed, by the destructor.
//
// A folder its job left empty and private (reusable_tmp_folder) need not be
// deleted: it waits in the trash folder (idle) and the next job takes it under a
// fresh name (reuse), instead of a new folder being made and this one deleted (on
// ext4 each of the two costs far more than the renames). It is checked again when
// taken. The destructor removes the idle folders too.
class tmp_janitor {
public:
    tmp_janitor() = default;
    tmp_janitor(const tmp_janitor&) = delete;
    tmp_janitor& operator=(const tmp_janitor&) = delete;
    ~tmp_janitor();

    // Moves `dir` into the trash, idle when `may_reuse` and reusable_tmp_folder(dir),
    // else queued for deletion. False when that is not possible (the caller then
    // removes it itself): a folder in another parent than the first one, a failed
    // rename, no thread. Called from one thread (or strand), as reuse.
    bool dispose(const std::filesystem::path& dir, bool may_reuse = false);

    // An idle folder, still reusable, renamed to `parent`/`prefix`-XXXXXX (six random
    // letters or digits); empty when there is none (in `parent`). An idle folder
    // that is no longer reusable is queued for deletion.
    std::filesystem::path reuse(const std::filesystem::path& parent, const std::string& prefix);

    // Why folders deleted since the last call could not be (empty: all were).
    std::string take_error();

    // The trash folder (empty before the first dispose).
    const std::filesystem::path& trash() const { return trash_; }
    // Folders waiting for reuse.
    std::size_t idle() const { return idle_.size(); }

private:
    void run();
    void queue(std::filesystem::path p);

    std::filesystem::path trash_;  // set before the thread starts
    std::vector<std::filesystem::path> idle_;  // in trash_; used by the caller's thread only
    std::uint64_t names_ = 0;  // state of the random names (caller's thread)
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::filesystem::path> queue_;
    std::string error_;
    bool stop_ = false;
    std::thread thread_;
};

// ---- bubblewrap (job_config.isolation: bwrap) ----

// Finds bwrap (/usr/bin/bwrap, else on PATH) and runs `bwrap --version` once per
// process; later calls return the first answer. Empty `error` = usable.
struct bwrap_probe {
    std::string path;
    std::string version;  // "bubblewrap 0.8.0"
    std::string error;
};
const bwrap_probe& probe_bwrap();

// The paths one sandboxed job sees besides the read-only system.
struct bwrap_layout {
    std::string private_tmp;                 // bound at /tmp (writable)
    std::string results_dir;                 // bound writable at the same path
    std::string cwd;                         // --chdir (read-only)
    std::vector<std::string> readable;       // bound read-only at the same path (hidden by /tmp otherwise)
};

// bwrap's options up to and including "--" (the command follows).
std::vector<std::string> bwrap_arguments(const bwrap_layout& layout);

// ---- pids cgroup (job_config.max_processes) ----

// One job's cgroup in a writable pids hierarchy (v1 `pids` or v2 with `pids`).
class pids_cgroup {
public:
    pids_cgroup() = default;
    pids_cgroup(const pids_cgroup&) = delete;
    pids_cgroup& operator=(const pids_cgroup&) = delete;
    ~pids_cgroup();

    // Creates genesis-launch-<pid>-<n> with pids.max = `max` and opens its
    // cgroup.procs. Empty, or why not (one line).
    std::string create(std::uint64_t max);
    // The same in the given folders (tried in order) instead of the mounted hierarchies.
    std::string create(std::uint64_t max, const std::vector<std::string>& bases);
    // In the child before exec: moves the calling process into the cgroup. 0 or an errno value.
    int enter() const noexcept;
    // SIGKILLs what is left in the cgroup (counted) and closes the cgroup.procs
    // descriptor. The directory itself goes with remove().
    std::size_t kill_all();
    // rmdir; false while the kernel still counts exiting tasks (retry later).
    bool remove(std::string* error = nullptr);

    const std::string& dir() const { return dir_; }
    bool active() const { return !dir_.empty(); }

private:
    std::string dir_;
    int procs_fd_ = -1;
};

// Sends `sig` to every member of process group `group` except its leader (through
// pidfds). Under bwrap the leader is bwrap itself, which would die of SIGTERM and
// take the sandbox down before the evaluator could handle the signal. Returns the
// number of processes signalled.
std::size_t signal_group_except_leader(pid_t group, int sig);

// What kill_marked_processes found.
struct sweep_result {
    std::size_t escaped = 0;   // marked processes outside `group`, killed
    std::size_t in_group = 0;  // marked processes still in `group`, killed too
};

// What one launcher's sweeps know besides /proc: the pids of the job leaders it
// started, in order (the last 1024), and the kernel's last pid handed out
// (/proc/sys/kernel/ns_last_pid, kept open). Used on one thread (or strand).
class launched_pids {
public:
    launched_pids();
    launched_pids(const launched_pids&) = delete;
    launched_pids& operator=(const launched_pids&) = delete;
    ~launched_pids();

    // A leader just started (its pid was handed out after every pid added before).
    void add(pid_t leader);
    // Whether `pid` is a leader added after `leader` (false when `leader` is no longer known).
    bool started_after(pid_t leader, pid_t pid) const;
    // The last pid handed out in our pid namespace, -1 when it cannot be read.
    pid_t last_handed_out();
    pid_t self() const { return self_; }

private:
    std::deque<pid_t> leaders_;
    int last_pid_fd_ = -1;
    bool opened_ = false;
    pid_t self_;
};

// SIGKILLs every other process whose environment holds GENESIS_LAUNCH_JOB=<marker>
// (through a pidfd, so a recycled pid is never hit), scanning again until a scan
// finds nothing more (at most a few rounds). Processes of other users whose
// environment is unreadable are skipped.
//
// Only the job's leader `group` and newer processes can be the job's: while the
// kernel's pid counter has not wrapped since the leader started, only pids in
// [group, last pid handed out] are looked at, (group, last] once the leader has been
// waited for (`leader_reaped`). With `ours` (the launcher's own
// leaders), those it started after `group` are left out too (they are other jobs'),
// and when at most `probe_limit` pids are left, each is probed directly instead of
// listing /proc; none left (no process was started since the leader but other
// jobs' leaders) means there is nothing to sweep.
sweep_result kill_marked_processes(std::string_view marker, pid_t group, bool leader_reaped = false,
                                   launched_pids* ours = nullptr, int probe_limit = 64);

}  // namespace genesis::launch::detail
