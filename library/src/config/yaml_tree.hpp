// yaml_tree.hpp - the configuration tree used while loading configs (internal).
//
// A `node` is a YAML value (null, bool, integer, float, string, list or map) that
// remembers where it came from: a file and 1-based line, or a command-line override.
// Maps keep their keys in file order. Trees are built from yaml-cpp nodes, merged
// the Hydra way (maps merge recursively, anything else replaces), and converted to
// boost::json for the public API.
#pragma once

#include <boost/json/value.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace YAML {
class Node;
}

namespace genesis::launch::config {

// Raised by the config code; the message is the complete one-line client message.
// load_config turns it into errc::config_error.
class config_failure : public std::runtime_error {
public:
    explicit config_failure(const std::string& message);
};

// Raised when a document or an interpolation would grow past the limits below (YAML
// aliases nested in aliases, "billion laughs"; ${...} repeated in ${...}). Never
// downgraded to a note, also in the engine's keys.
class expansion_failure : public config_failure {
public:
    using config_failure::config_failure;
};

// Limits of one loaded document (a file, or an override's value) after its aliases
// are expanded, and of what interpolation adds to the tree: values (nodes) and bytes
// of text.
inline constexpr std::size_t max_expanded_nodes = 100'000;
inline constexpr std::size_t max_expanded_bytes = 16u * 1024 * 1024;

// Where a value was written.
struct source {
    std::string file;           // file as shown to the user (relative to working_dir when possible)
    int line = 0;               // 1-based; 0 = unknown
    std::string override_text;  // non-empty for a command-line override

    static source from_file(std::string file, int line) { return {std::move(file), line, {}}; }
    static source from_override(std::string text) { return {{}, 0, std::move(text)}; }

    // "configs/cluster/local.yaml:5", "configs/config.yaml" (no line), or
    // "command line override 'a.b=1'".
    std::string describe() const;
};

enum class node_kind { null, boolean, integer, floating, string, sequence, map };

struct map_entry;

struct node {
    node_kind kind = node_kind::null;
    // Scalars: the text as written (for strings, the value itself).
    std::string text;
    bool bool_value = false;
    std::int64_t int_value = 0;
    double float_value = 0.0;
    std::vector<node> items;                             // sequence
    std::vector<map_entry> entries;                      // map, in insertion order
    source src;

    static node make_map(source src);
    static node make_string(std::string value, source src);
    static node make_null(source src);

    bool is_map() const noexcept { return kind == node_kind::map; }
    bool is_sequence() const noexcept { return kind == node_kind::sequence; }
    bool is_scalar() const noexcept { return kind != node_kind::map && kind != node_kind::sequence; }
    bool is_null() const noexcept { return kind == node_kind::null; }

    // Map access (nullptr when absent or when this is not a map).
    node* find(std::string_view key);
    const node* find(std::string_view key) const;
    // Replaces the value of `key` or appends it. Requires a map.
    node& set(std::string key, node value);
    // Removes `key`; false when absent.
    bool erase(std::string_view key);
    std::vector<std::string> keys() const;
};

struct map_entry {
    std::string key;
    node value;
};

// Types a plain (unquoted) scalar with the YAML 1.2 core schema: null, true/false,
// integers (decimal, 0x, 0o), floats (incl. .inf/.nan); anything else is a string.
node scalar_from_plain_text(std::string text, source src);

// Builds a tree from a yaml-cpp node. `file` is the display name used in sources;
// `fallback_line` is used when yaml-cpp has no position (e.g. empty values).
// Throws config_failure for duplicate or non-scalar map keys.
node from_yaml(const YAML::Node& yaml, const std::string& file, int fallback_line = 1);

// Reads a YAML file (an empty file is an empty map). Errors are config_failure:
//   "<display>:<line>: YAML syntax error: <yaml-cpp message>".
node load_yaml_file(const std::filesystem::path& path, const std::string& display);

// Parses one YAML value written on the command line; every node gets `src`.
// An empty text is the empty string (as in Hydra). Throws config_failure with
// `<src>: invalid YAML value: <message>` on bad syntax.
node parse_yaml_value(std::string_view text, const source& src);

// Deep merge: maps merge key by key (recursively), anything else replaces.
void merge_into(node& base, const node& overlay);

boost::json::value to_json(const node& tree);

// Short description of a value for error messages: `"abc"` (quoted, escaped,
// shortened), `12`, `true`, `null`, `a list`, `a map`.
std::string describe_value(const node& value);

// `s` without leading and trailing white space.
std::string trim(std::string_view s);

// Stems of the `*.yaml` files in `folder`, sorted (the options of a config group).
std::vector<std::string> yaml_names_in(const std::filesystem::path& folder);

// ---- "did you mean" helpers ------------------------------------------------------

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate that `word` most likely misspells, if any is close enough (a small
// edit distance, or `word` nearly contained in the candidate).
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace genesis::launch::config
