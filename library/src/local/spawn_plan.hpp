// spawn_plan.hpp - what the local backend executes for one job, decided without
// any I/O: the interpreter (python, `conda run`, or an activation script sourced
// by bash) and the bubblewrap command line around it. Unit-tested in
// tests/unit/spawn_plan_test.cpp; the rest of a job's setup (limits, network,
// cgroup, temp folder) is planned in child_process.hpp.
#pragma once

#include "genesis/launch/config.hpp"
#include "local/child_process.hpp"

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace genesis::launch::detail {

struct spawn_command {
    std::filesystem::path exe;
    std::vector<std::string> args;  // after argv[0]
};

// Resolves a command name on the jobs' PATH; empty when it is not found.
using executable_finder = std::function<std::filesystem::path(const std::string& name)>;

// The evaluator's command line (`evaluator_args`: evaluate.py and its flags) run by
// the configured interpreter. Empty, or why it cannot run (a name not found).
std::string plan_command(const local_params& lp, std::vector<std::string> evaluator_args,
                         const executable_finder& find, spawn_command& out);

// `cmd` inside bubblewrap (`bwrap_path`) with `layout`; the interpreter's folder is
// made readable too.
spawn_command wrap_in_bwrap(spawn_command cmd, bwrap_layout layout, const std::string& bwrap_path);

}  // namespace genesis::launch::detail
