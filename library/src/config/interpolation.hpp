// interpolation.hpp - OmegaConf-style ${...} interpolation over a config tree (internal).
//
// Supported:
//   ${a.b.c}                    another key (a whole-string reference keeps the type:
//                               `job_config: ${distributed_job_config}` copies the map)
//   ${.x}, ${..x}               relative keys: a sibling, a sibling of the parent, ...
//   text-${a}-${b}              values inserted as text (null as "None", like OmegaConf)
//   ${oc.env:VAR[,default]}     an environment variable
//   ${oc.select:a.b[,default]}  a key, or the default when it is absent
//   ${oc.decode:TEXT}           TEXT parsed as a YAML value
//   ${now:FORMAT}               the local time (strftime), one instant per load
//   ${hydra:runtime.cwd}        the working folder
//   ${hydra:runtime.output_dir} hydra.run.dir (Hydra's default when the tree has none)
//   ${hydra:KEY}                any other key under the tree's `hydra:` node
//   \${                         a literal ${
// Nested interpolations inside an expression are resolved first.
// `???` is OmegaConf's "mandatory, not set yet": a reference to it is an error.
//
// Strict and lenient keys: a failure under a key for which `strict(path)` is true
// (what the launcher reads) is a config_failure; under any other key (the engine's)
// the value stays as written and a note says why, because the engine resolves its own
// keys later, with its own resolvers.
#pragma once

#include "config/yaml_tree.hpp"

#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace genesis::launch::config {

struct interpolation_context {
    std::filesystem::path working_dir;
    std::function<std::optional<std::string>(const std::string&)> getenv;
    std::function<bool(const std::string& path)> strict;
    std::time_t now = 0;  // 0: the time of the call
};

// Resolves every ${...} in `root` in place. The top-level `hydra` subtree is kept as
// written (it is Hydra's own) but may be referenced. Returns notes about engine keys
// left unresolved.
std::vector<std::string> resolve_interpolations(node& root, const interpolation_context& ctx);

// True for OmegaConf's missing-value marker `???`.
inline bool is_missing_value(const node& n) { return n.kind == node_kind::string && n.text == "???"; }

}  // namespace genesis::launch::config
