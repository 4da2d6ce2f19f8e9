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
#include <cstddef>
#include <string>
#include <string_view>

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

// What kill_marked_processes found.
struct sweep_result {
    std::size_t escaped = 0;   // marked processes outside `group`, killed
    std::size_t in_group = 0;  // marked processes still in `group`, killed too
};

// SIGKILLs every other process whose environment holds GENESIS_LAUNCH_JOB=<marker>
// (through a pidfd, so a recycled pid is never hit), scanning /proc again until a
// scan finds nothing more (at most a few rounds). Processes of other users whose
// environment is unreadable are skipped.
sweep_result kill_marked_processes(std::string_view marker, pid_t group);

}  // namespace genesis::launch::detail
