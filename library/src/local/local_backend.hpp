// local_backend.hpp - runs evaluators as local subprocesses, each in its own
// process group, on the launcher's strand.
#pragma once

#include "launcher_core.hpp"

namespace genesis::launch::detail {

std::unique_ptr<backend> make_local_backend(strand_type strand, const launcher_config& cfg, const logger& log);

// Resolves a command name against PATH (as execvp would); a name containing
// '/' is taken as a path. Empty when nothing executable was found.
std::filesystem::path find_executable(const std::string& name, const std::string& path_env);

}  // namespace genesis::launch::detail
