// compose.cpp - Hydra's defaults lists, packages and group selection.
#include "config/compose.hpp"

#include "genesis/launch/config.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

namespace genesis::launch::config {

namespace fs = std::filesystem;

namespace {

std::string join(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
    return out.empty() ? "none" : out;
}

std::string suggestion(const std::string& word, const std::vector<std::string>& names) {
    if (auto match = closest_match(word, names)) return "; did you mean '" + *match + "'?";
    return {};
}

// "a/b" -> "a.b"
std::string dotted(std::string path) {
    std::replace(path.begin(), path.end(), '/', '.');
    return path;
}

std::string parent_of(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

// Hydra's final package: `package` relative to `parent`, cut after the last `_global_`.
std::string final_package(const std::string& parent, const std::string& package) {
    std::string ret = package.empty() ? parent : parent.empty() ? package : parent + "." + package;
    const auto global = ret.rfind("_global_");
    if (global == std::string::npos) return ret;
    const std::size_t after = global + 8;
    return after + 1 <= ret.size() ? ret.substr(std::min(after + 1, ret.size())) : std::string();
}

struct defaults_entry {
    enum class kind { self, group, config } type = kind::group;
    std::string name;                    // group as written (may start with '/'), or config path
    std::optional<std::string> option;   // group entries; nullopt = null
    std::optional<std::string> package;  // explicit `@pkg`
    bool optional = false;
    bool is_override = false;
    source where;
};

struct config_file {
    fs::path path;
    std::string config_path;  // "cluster/gcp", "config"
    node body;                // without its defaults list
    std::vector<defaults_entry> defaults;
    std::optional<std::string> header;
    bool missing = false;
};

std::vector<defaults_entry> parse_defaults_list(const node& defaults) {
    if (!defaults.is_sequence())
        throw config_failure(defaults.src.describe() + ": defaults: expected a list, got " + describe_value(defaults));
    std::vector<defaults_entry> out;
    for (const node& item : defaults.items) {
        defaults_entry entry;
        entry.where = item.src;
        if (item.kind == node_kind::string) {
            // `_self_`, or a config of the file's own group (`- remote`, `- /db/base`).
            const std::string text = trim(item.text);
            if (text == "_self_") {
                entry.type = defaults_entry::kind::self;
            } else {
                entry.type = defaults_entry::kind::config;
                std::string name = text;
                if (name.starts_with("optional ")) {
                    entry.optional = true;
                    name = trim(name.substr(9));
                }
                if (const auto at = name.find('@'); at != std::string::npos) {
                    entry.package = name.substr(at + 1);
                    name.erase(at);
                }
                if (name.empty() || name == "/")
                    throw config_failure(item.src.describe() + ": defaults: empty config name");
                entry.name = name;
            }
            out.push_back(std::move(entry));
            continue;
        }
        if (!item.is_map() || item.entries.size() != 1)
            throw config_failure(item.src.describe() + ": defaults: unsupported entry " + describe_value(item) +
                                 " (expected _self_, a config name or 'group: option')");
        const auto& [raw_key, value] = item.entries.front();
        entry.where = value.src;
        std::string key = trim(raw_key);
        if (key.starts_with("override ")) {
            entry.is_override = true;
            key = trim(key.substr(9));
        }
        if (key.starts_with("optional ")) {
            entry.optional = true;
            key = trim(key.substr(9));
        }
        if (const auto at = key.find('@'); at != std::string::npos) {
            entry.package = key.substr(at + 1);
            key.erase(at);
        }
        if (key.empty() || key == "/")
            throw config_failure(item.src.describe() + ": defaults: entry without a group name");
        entry.name = key;
        if (value.is_null()) {
            entry.option.reset();
        } else if (value.is_scalar()) {
            entry.option = value.text;  // `???`: to be chosen on the command line (checked when expanded)
        } else {
            throw config_failure(value.src.describe() + ": defaults: " + key +
                                 ": expected the name of one config, got " + describe_value(value) +
                                 " (lists of options are not supported)");
        }
        out.push_back(std::move(entry));
    }
    return out;
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

class composer {
public:
    composer(const fs::path& config_dir, const std::function<std::string(const fs::path&)>& display)
        : config_dir_(config_dir), display_(display) {}

    composition run(const std::vector<command_line_choice>& command_line) {
        const config_file& primary = load("config", {}, false, source::from_file(display_(config_dir_ / "config.yaml"), 0));

        // Command-line choices: fixed, and they win over every file.
        std::map<std::string, command_line_choice> fixed;
        for (const auto& choice : command_line) fixed[choice.group] = choice;

        // Fixed point: `override` entries found in the files reached with the current
        // choices may reach other files, with overrides of their own.
        std::map<std::string, choice> choices;
        for (const auto& [group, c] : fixed) choices[group] = {c.option, c.where, true};
        for (int round = 0;; ++round) {
            std::map<std::string, choice> next;
            for (const auto& [group, c] : fixed) next[group] = {c.option, c.where, true};
            walk_state state;
            state.choices = &choices;
            state.lenient = true;  // a file reached only before an override applies may not exist
            walk(primary, "", state, fixed);
            for (const auto& [group, entry] : state.overrides)
                if (!fixed.count(group)) next[group] = {entry.option, entry.where, false};
            if (same(next, choices)) break;
            if (round == 16)
                throw config_failure(display_(config_dir_ / "config.yaml") +
                                     ": defaults: the config files override each other in a cycle");
            choices = std::move(next);
        }

        // The final walk: the merge order.
        walk_state state;
        state.choices = &choices;
        walk(primary, "", state, fixed);

        // An `override` must change a group that some list chooses (Hydra's rule).
        for (const auto& [group, entry] : state.overrides)
            if (!state.chosen_groups.count(group))
                throw config_failure(entry.where.describe() + ": defaults: override /" + group +
                                     ": no defaults list chooses a '" + group + "' config to override" +
                                     " (write '" + group + "@_global_: " + entry.option.value_or("null") +
                                     "' without 'override')");
        // Command-line choices for groups no list chooses are appended at the root.
        for (const auto& [group, c] : fixed) {
            if (state.chosen_groups.count(group) || !c.option) continue;
            defaults_entry entry;
            entry.name = "/" + group;
            entry.option = c.option;
            entry.package = c.package.value_or("_global_");
            entry.where = c.where;
            expand(entry, "", "", state, fixed);
        }

        composition out;
        out.tree = node::make_map(source::from_file(display_(primary.path), 0));
        for (const auto& [file, package] : state.merge_order) {
            node body = file->body;
            if (!package.empty()) {
                for (const char* key : {"job_config", "evo_config"})
                    if (const node* misplaced = body.find(key))
                        throw config_failure(
                            misplaced->src.describe() + ": " + key + " is merged under '" + package + "." + key +
                            "', not at the top level: this file's package is '" + package +
                            "' (Hydra's default for its group); add '# @package _global_' as its first line, or choose it with '" +
                            parent_of(file->config_path) + "@_global_: ...' in the defaults list");
                body = wrap(std::move(body), package);
            }
            merge_into(out.tree, body);
            out.sources.push_back(file->path);
        }
        for (const auto& [group, option] : state.selected) out.choices[group] = option;
        return out;
    }

private:
    struct choice {
        std::optional<std::string> option;
        source where;
        bool command_line = false;
    };

    struct walk_state {
        const std::map<std::string, choice>* choices = nullptr;
        std::map<std::string, defaults_entry> overrides;    // group path -> last override entry
        std::set<std::string> chosen_groups;                // groups some list chooses
        std::map<std::string, std::string> selected;        // group path -> option used
        std::vector<std::pair<const config_file*, std::string>> merge_order;
        int depth = 0;
        bool lenient = false;
    };

    static bool same(const std::map<std::string, choice>& a, const std::map<std::string, choice>& b) {
        if (a.size() != b.size()) return false;
        for (const auto& [group, c] : a) {
            auto it = b.find(group);
            if (it == b.end() || it->second.option != c.option) return false;
        }
        return true;
    }

    void walk(const config_file& file, const std::string& package, walk_state& state,
              const std::map<std::string, command_line_choice>& fixed) {
        if (++state.depth > 32)
            throw config_failure(display_(file.path) + ": defaults: config files include each other in a cycle");
        const std::string base = parent_of(file.config_path);
        bool self_listed = false;
        for (const auto& entry : file.defaults) {
            if (entry.is_override) {
                state.overrides[absolute_group(entry.name, base)] = entry;
                continue;
            }
            if (entry.type == defaults_entry::kind::self) {
                self_listed = true;
                state.merge_order.emplace_back(&file, package);
                continue;
            }
            expand(entry, base, package, state, fixed);
        }
        if (!self_listed) state.merge_order.emplace_back(&file, package);
        --state.depth;
    }

    static std::string absolute_group(const std::string& name, const std::string& base) {
        if (name.starts_with("/")) return name.substr(1);
        return base.empty() ? name : base + "/" + name;
    }

    void expand(const defaults_entry& entry, const std::string& base, const std::string& parent_package,
                walk_state& state, const std::map<std::string, command_line_choice>& fixed) {
        std::string config_path;
        std::string relative_group;  // for the default package
        if (entry.type == defaults_entry::kind::config) {
            config_path = absolute_group(entry.name, base);
            const std::string written = entry.name.starts_with("/") ? entry.name.substr(1) : entry.name;
            relative_group = parent_of(written);
        } else {
            const std::string group = absolute_group(entry.name, base);
            state.chosen_groups.insert(group);
            std::optional<std::string> option = entry.option;
            source where = entry.where;
            bool from_command_line = false;
            if (auto it = state.choices->find(group); it != state.choices->end()) {
                option = it->second.option;
                where = it->second.where;
                from_command_line = it->second.command_line;
            }
            if (!option) return;
            if (*option == "???" && state.lenient) return;  // an override may choose it yet
            if (*option == "???")
                throw config_failure(where.describe() + ": defaults: " + group +
                                     ": no option chosen (\?\?\?); choose one on the command line: " + group + "=NAME");
            state.selected[group] = *option;
            config_path = group + "/" + *option;
            relative_group = entry.name.starts_with("/") ? entry.name.substr(1) : entry.name;
            const config_file& file = load(config_path, group, (entry.optional && !from_command_line) || state.lenient,
                                           where, from_command_line, state.lenient);
            if (file.missing) return;
            std::string package = entry.package ? *entry.package : std::string();
            auto it = fixed.find(group);
            if (it != fixed.end() && it->second.package) package = *it->second.package;
            expand_file(file, package, entry.package.has_value() || (it != fixed.end() && it->second.package),
                        relative_group, parent_package, state, fixed);
            return;
        }
        const config_file& file =
            load(config_path, parent_of(config_path), entry.optional || state.lenient, entry.where, false, state.lenient);
        if (file.missing) return;
        expand_file(file, entry.package.value_or(""), entry.package.has_value(), relative_group, parent_package,
                    state, fixed);
    }

    void expand_file(const config_file& file, std::string package, bool explicit_package,
                     const std::string& relative_group, const std::string& parent_package, walk_state& state,
                     const std::map<std::string, command_line_choice>& fixed) {
        const std::string group_path = parent_of(file.config_path);
        std::string final;
        if (explicit_package) {
            if (package == "_here_") package.clear();
            if (package == "_group_") package = dotted(relative_group);
            if (package == "_name_")
                throw config_failure(display_(file.path) + ": package _name_ is not supported");
            final = final_package(parent_package, package);
        } else if (file.header) {
            std::string header = *file.header;
            if (header == "_group_") header = dotted(group_path);
            else if (header.starts_with("_group_.")) header = dotted(group_path) + header.substr(7);
            if (header.find("_name_") != std::string::npos)
                throw config_failure(display_(file.path) + ":1: # @package " + *file.header + ": _name_ is not supported");
            // A header is absolute.
            final = final_package("", header == "_global_" || header.starts_with("_global_.") ? header : "_global_." + header);
        } else {
            final = final_package(parent_package, dotted(relative_group));
        }
        walk(file, final, state, fixed);
    }

    const config_file& load(const std::string& config_path, const std::string& group, bool optional,
                            const source& where, bool from_command_line = false, bool lenient = false) {
        if (auto it = cache_.find(config_path); it != cache_.end() && !(it->second.missing && !optional))
            return it->second;
        static const config_file absent = [] {
            config_file f;
            f.missing = true;
            return f;
        }();
        config_file file;
        file.config_path = config_path;
        file.path = config_dir_ / (config_path + ".yaml");
        std::error_code ec;
        const fs::path folder = file.path.parent_path();
        auto fail = [&](const std::string& message) {
            throw config_failure(where.describe() + ": " + (from_command_line ? "" : "defaults: ") + message);
        };
        if (config_path == "config") {
            if (!fs::is_regular_file(file.path, ec)) throw config_failure(display_(file.path) + ": file not found");
        } else if (!fs::is_directory(folder, ec)) {
            if (!optional) {
                std::vector<std::string> groups;
                for (const auto& [name, options] : list_config_groups(config_dir_)) groups.push_back(name);
                fail("config group '" + group + "' not found in " + display_(config_dir_) + " (available groups: " +
                     join(groups) + ")" + suggestion(group, groups));
            }
            file.missing = true;
        } else if (!fs::is_regular_file(file.path, ec)) {
            if (!optional) {
                const auto available = yaml_names_in(folder);
                const std::string name = file.path.stem().string();
                if (group.empty() || group != parent_of(config_path))
                    fail("config '" + config_path + "' not found in " + display_(folder) + " (available: " +
                         join(available) + ")" + suggestion(name, available));
                fail(group + " '" + name + "' not found in " + display_(folder) + " (available: " + join(available) +
                     ")" + suggestion(name, available));
            }
            file.missing = true;
        }
        if (file.missing && lenient) return absent;
        if (!file.missing) {
            file.body = load_yaml_file(file.path, display_(file.path));
            file.header = package_header(read_text(file.path));
            if (const node* defaults = file.body.find("defaults")) {
                file.defaults = parse_defaults_list(*defaults);
                file.body.erase("defaults");
            }
        }
        return cache_.emplace(config_path, std::move(file)).first->second;
    }

    static node wrap(node tree, const std::string& package) {
        std::vector<std::string> parts;
        std::stringstream stream(package);
        for (std::string part; std::getline(stream, part, '.');)
            if (!part.empty()) parts.push_back(part);
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
            node wrapper = node::make_map(tree.src);
            wrapper.set(*it, std::move(tree));
            tree = std::move(wrapper);
        }
        return tree;
    }

    fs::path config_dir_;
    const std::function<std::string(const fs::path&)>& display_;
    std::map<std::string, config_file> cache_;
};

}  // namespace

std::optional<std::string> package_header(std::string_view text) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t end = std::min(text.find('\n', pos), text.size());
        const std::string line = trim(text.substr(pos, end - pos));
        pos = end + 1;
        if (line.empty()) continue;
        if (!line.starts_with("#")) break;
        const std::string comment = trim(std::string_view(line).substr(1));
        if (comment.starts_with("@package")) {
            const std::string value = trim(std::string_view(comment).substr(8));
            if (!value.empty()) return value;
        }
    }
    return std::nullopt;
}

composition compose(const fs::path& config_dir, const std::function<std::string(const fs::path&)>& display,
                    const std::vector<command_line_choice>& command_line) {
    return composer(config_dir, display).run(command_line);
}

}  // namespace genesis::launch::config
