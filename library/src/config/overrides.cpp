// overrides.cpp - parsing and applying Hydra-style command-line overrides.
#include "config/overrides.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace genesis::launch::config {

namespace {

[[noreturn]] void fail(std::string_view text, const std::string& message) {
    throw config_failure("command line override '" + std::string(text) + "': " + message);
}

bool valid_key_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '@' ||
           c == '/';
}

// Far deeper than any launcher config; bounds the recursion over the tree an
// override can build (a key of thousands of segments overflowed the stack).
constexpr std::size_t max_key_segments = 32;

std::vector<std::string> split_key(std::string_view text, std::string_view key) {
    if (key.empty()) fail(text, "empty key");
    std::vector<std::string> path;
    std::size_t start = 0;
    while (true) {
        if (path.size() == max_key_segments)
            fail(text, "key has more than " + std::to_string(max_key_segments) + " segments");
        const std::size_t dot = key.find('.', start);
        const std::string_view segment = key.substr(start, dot == std::string_view::npos ? dot : dot - start);
        if (segment.empty() || !std::all_of(segment.begin(), segment.end(), valid_key_char))
            fail(text, "invalid key '" + std::string(key) +
                           "' (expected dotted names made of letters, digits, '_' and '-')");
        path.emplace_back(segment);
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return path;
}

std::string join(const std::vector<std::string>& path, std::size_t count) {
    std::string out;
    for (std::size_t i = 0; i < count && i < path.size(); ++i) {
        if (i) out += '.';
        out += path[i];
    }
    return out;
}

std::optional<std::size_t> list_index(const std::string& segment) {
    std::size_t index = 0;
    auto [end, ec] = std::from_chars(segment.data(), segment.data() + segment.size(), index);
    if (ec != std::errc{} || end != segment.data() + segment.size()) return std::nullopt;
    return index;
}

// The child `segment` of `parent` (map key or list index), or nullptr.
node* child_of(node& parent, const std::string& segment) {
    if (parent.is_map()) return parent.find(segment);
    if (parent.is_sequence()) {
        auto index = list_index(segment);
        if (index && *index < parent.items.size()) return &parent.items[*index];
    }
    return nullptr;
}

// Why a missing key cannot simply be created, with a suggestion from its siblings.
[[noreturn]] void fail_missing(const override_spec& spec, const node& parent, std::size_t depth,
                               const std::vector<std::string>& schema_names, const std::string& hint) {
    std::vector<std::string> siblings = parent.keys();
    for (const auto& name : schema_names)
        if (name != "*" && std::find(siblings.begin(), siblings.end(), name) == siblings.end()) siblings.push_back(name);
    std::string message = "key '" + spec.key + "' is not in the config" + hint;
    if (auto match = closest_match(spec.path[depth], siblings)) {
        const std::string prefix = join(spec.path, depth);
        message += "; did you mean '" + (prefix.empty() ? "" : prefix + ".") + *match + "'?";
    }
    fail(spec.text, message);
}

}  // namespace

override_spec parse_override(std::string_view text,
                             const std::function<bool(std::string_view)>& is_group) {
    override_spec spec;
    spec.text = std::string(text);

    std::string_view rest = text;
    if (rest.starts_with("~")) {
        spec.op = override_op::remove;
        rest.remove_prefix(1);
    } else if (rest.starts_with("++")) {
        spec.op = override_op::force_add;
        rest.remove_prefix(2);
    } else if (rest.starts_with("+")) {
        spec.op = override_op::add;
        rest.remove_prefix(1);
    }

    const std::size_t equals = rest.find('=');
    if (equals == std::string_view::npos && spec.op != override_op::remove)
        fail(text, "expected key=value");
    const std::string_view key = rest.substr(0, equals);
    spec.path = split_key(text, key);
    spec.key = std::string(key);
    const bool has_value = equals != std::string_view::npos;
    const std::string_view value_text = has_value ? rest.substr(equals + 1) : std::string_view{};

    std::optional<std::string> package;
    if (const auto at = spec.key.find('@'); spec.path.size() == 1 && at != std::string::npos && at > 0 &&
                                             is_group(std::string_view(spec.key).substr(0, at))) {
        package = spec.key.substr(at + 1);
        spec.key.erase(at);
        spec.path = {spec.key};
    }
    if (spec.path.size() == 1 && is_group(spec.key)) {
        spec.group_package = package;
        if (spec.op == override_op::remove) {
            if (has_value) fail(text, "use ~" + spec.key + " (without a value) to remove the group");
            spec.op = override_op::remove_group;
            return spec;
        }
        spec.op = override_op::select_group;
        if (value_text.empty()) fail(text, "expected the name of a " + spec.key + " config");
        if (value_text != "null") {
            const bool plain = std::all_of(value_text.begin(), value_text.end(), [](char c) {
                return valid_key_char(c) || c == '.';
            });
            if (!plain || value_text.find("..") != std::string_view::npos ||
                value_text.front() == '/')
                fail(text, "invalid " + spec.key + " name '" + std::string(value_text) + "'");
            spec.group_option = std::string(value_text);
        }
        return spec;
    }

    if (has_value) spec.value = parse_yaml_value(value_text, spec.src());
    return spec;
}

void apply_override(node& tree, const override_spec& spec, const schema_children_fn& schema_children) {
    if (spec.op == override_op::select_group || spec.op == override_op::remove_group) return;

    // Walk down to the parent of the last segment, creating maps where allowed.
    node* current = &tree;
    const std::size_t last = spec.path.size() - 1;
    for (std::size_t depth = 0; depth < spec.path.size(); ++depth) {
        const std::string& segment = spec.path[depth];
        const std::vector<std::string> parent_path(spec.path.begin(), spec.path.begin() + depth);

        if (current->is_null() && spec.op != override_op::remove) {
            // `env_vars: null` and then `+job_config.env_vars.X=1`: the null becomes a map.
            *current = node::make_map(spec.src());
        }
        if (current->is_scalar())
            fail(spec.text, "'" + join(spec.path, depth) + "' is not a map (it is " +
                                describe_value(*current) + ")");

        node* next = child_of(*current, segment);
        const bool at_target = depth == last;

        if (next == nullptr) {
            const std::vector<std::string> known =
                current->is_map() ? schema_children(parent_path) : std::vector<std::string>{};
            const bool in_schema = std::find(known.begin(), known.end(), segment) != known.end() ||
                                   std::find(known.begin(), known.end(), "*") != known.end();
            switch (spec.op) {
            case override_op::remove:
                fail_missing(spec, *current, depth, {}, "");
            case override_op::set:
                if (!in_schema)
                    fail_missing(spec, *current, depth, known,
                                 " (use +" + spec.key + "=... to add it)");
                break;
            case override_op::add:
            case override_op::force_add:
                break;
            default:
                break;
            }
            if (!current->is_map())
                fail(spec.text, "'" + join(spec.path, depth) + "' is a list; '" + segment +
                                    "' is not one of its indexes");
            next = &current->set(segment, at_target ? *spec.value : node::make_map(spec.src()));
            if (at_target) return;
            current = next;
            continue;
        }

        if (!at_target) {
            current = next;
            continue;
        }

        // The key exists.
        switch (spec.op) {
        case override_op::add:
            fail(spec.text, "key '" + spec.key + "' is already in the config (use ++" + spec.key +
                                "=... to override it)");
        case override_op::set:
        case override_op::force_add:
            *next = *spec.value;
            return;
        case override_op::remove:
            if (spec.value && to_json(*next) != to_json(*spec.value))
                fail(spec.text, "key '" + spec.key + "' is " + describe_value(*next) + ", not " +
                                    describe_value(*spec.value));
            if (current->is_map()) {
                current->erase(segment);
            } else {
                current->items.erase(current->items.begin() +
                                     static_cast<std::ptrdiff_t>(*list_index(segment)));
            }
            return;
        default:
            return;
        }
    }
}

}  // namespace genesis::launch::config
