// overrides.hpp - Hydra-style command-line overrides (internal).
//
//   group=name     choose a config group file (<config_dir>/<group>/<name>.yaml);
//                  group@pkg=name also sets the package it is merged under
//   a.b=VALUE      change a key that exists (VALUE is YAML: 600, true, null, [a, b], 'x')
//   +a.b=VALUE     add a key that must not exist yet
//   ++a.b=VALUE    add or change a key
//   ~a.b           delete a key (~a.b=VALUE: only if it currently has that value)
//
// Keys are dotted paths; a numeric segment indexes a list (job_config.dependencies.0).
#pragma once

#include "config/yaml_tree.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace genesis::launch::config {

enum class override_op {
    set,           // a.b=VALUE
    add,           // +a.b=VALUE
    force_add,     // ++a.b=VALUE
    remove,        // ~a.b  /  ~a.b=VALUE
    select_group,  // group=name  (also +group=name, ++group=name)
    remove_group,  // ~group
};

struct override_spec {
    std::string text;               // as written on the command line
    override_op op = override_op::set;
    std::string key;                // dotted key, or the group's name
    std::vector<std::string> path;  // key split at the dots
    // set/add/force_add: the new value; remove: the value the key must have (optional).
    std::optional<node> value;
    // select_group: the chosen option; nullopt for `group=null` (no file for the group).
    std::optional<std::string> group_option;
    // select_group: `group@pkg=name` (Genesis's launcher writes `task@_global_=name`).
    std::optional<std::string> group_package;

    source src() const { return source::from_override(text); }
};

// Parses one override. `is_group(name)` tells whether a one-segment key names a
// config group (a subfolder of the config folder). Throws config_failure:
//   "command line override '<text>': <what is wrong>".
override_spec parse_override(std::string_view text,
                             const std::function<bool(std::string_view)>& is_group);

// Keys of the launcher's schema below `parent` (dotted path segments): they may be
// set with a plain `a.b=VALUE` even when no YAML file mentions them, like the fields
// of a Hydra structured config. Return an empty list when there are none, and
// {"*"} when any key may be added (free-form maps such as job_config.env_vars).
using schema_children_fn = std::function<std::vector<std::string>(const std::vector<std::string>& parent)>;

// Applies a value override (set/add/force_add/remove) to the merged tree. New nodes
// are marked as coming from the override. Throws config_failure, e.g.
//   command line override 'a.b=1': key 'a.b' is not in the config (use +a.b=... to add it); did you mean 'a.c'?
void apply_override(node& tree, const override_spec& spec, const schema_children_fn& schema_children);

}  // namespace genesis::launch::config
