// compose.hpp - Hydra's composition of a config folder (internal).
//
// Follows Hydra 1.3 where the Genesis and ShinkaEvolve trees rely on it:
//   - the primary config.yaml and every group file may have a `defaults:` list of
//     `_self_`, `group: option`, `group@package: option`, `/abs/group: option`,
//     `optional group: option`, `group: null`, `override /group@pkg: option`, and plain
//     config names (`- remote`: <the file's own group>/remote.yaml);
//   - a list without `_self_` has it implicitly last; the merge order is the depth-first
//     order of the lists;
//   - `override` entries anywhere re-select a group chosen elsewhere in the tree;
//     command-line choices (`group=option`) win over every file; an `override` of a
//     group that no list chooses is an error, as in Hydra;
//   - packages: `@pkg` in the entry, else the file's `# @package` header, else the
//     group's own path (`task/x.yaml` lands under `task:`); `_global_` is the root,
//     `_group_` the group path, `_here_` the parent's package. Entry packages are
//     relative to the parent's package, header packages absolute.
// Unlike Hydra, `group=option` on the command line for a group that no list chooses
// appends it at the root package (Hydra wants `+group@_global_=option`).
#pragma once

#include "config/yaml_tree.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace genesis::launch::config {

// A `group=option` (or `~group`, `group@pkg=option`) from the command line.
struct command_line_choice {
    std::string group;                   // group path, e.g. "cluster"
    std::optional<std::string> option;   // nullopt: `~group` or `group=null`
    std::optional<std::string> package;  // `group@pkg=option`
    source where;
};

struct composition {
    node tree;                                   // merged; `defaults` lists removed
    std::vector<std::filesystem::path> sources;  // files in merge order
    std::map<std::string, std::string> choices;  // group path -> option, as composed
};

// Composes <config_dir>/config.yaml. `display` turns a path into the text used in
// messages. Throws config_failure with a one-line message.
composition compose(const std::filesystem::path& config_dir,
                    const std::function<std::string(const std::filesystem::path&)>& display,
                    const std::vector<command_line_choice>& command_line);

// The `# @package X` header among a YAML text's leading comment lines, if any.
std::optional<std::string> package_header(std::string_view text);

}  // namespace genesis::launch::config
