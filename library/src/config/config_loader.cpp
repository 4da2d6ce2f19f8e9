// config_loader.cpp - load_config, parse_duration and list_config_groups.
//
// Loading happens in stages:
//   1. choose the config group files (Hydra defaults lists + `group=name` overrides),
//   2. merge config.yaml, the group files (variant last) and the value overrides,
//   3. drop `_target_` keys and resolve ${...} interpolations,
//   4. validate the launcher's keys into a launcher_config,
//   5. fill the E2B credentials from the environment or `<working_dir>/.env`.
// Every failure is a config_failure carrying the final one-line message.
#include "genesis/launch/config.hpp"

#include "config/overrides.hpp"
#include "config/yaml_tree.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace genesis::launch {

namespace {

namespace fs = std::filesystem;
using config::config_failure;
using config::node;
using config::node_kind;
using config::source;

// ---- schema ------------------------------------------------------------------------

const std::vector<std::string> top_level_keys = {
    "defaults", "hydra",   "job_config", "evo_config",   "db_config",      "database",
    "evolution", "task",   "verbose",    "results_dir",  "run_name",       "output_dir",
    "exp_name", "variant_suffix", "distributed_job_config", "programs", "launcher"};

const std::vector<std::string> job_config_keys = {
    "eval_program_path", "eval_command", "extra_cmd_args", "env_vars",  "time",
    "conda_env",         "python",       "template",       "timeout",   "dependencies",
    "additional_files",  "cpus",         "memory_mb",      "kill_grace", "output_capture_bytes",
    "api_url",           "sandbox_url",  "domain",
    // E2B backend (docs/e2b.md)
    "install_timeout",   "create_rate",  "ca_file",        "tls_verify", "retry_vanished",
    "max_retries",       "cost_per_cpu_second", "cost_per_gib_second", "run_tag", "sweep_on_start",
    // local backend limits and isolation (docs/configuration.md)
    // (memory_mb above is shared: the sandbox size for E2B, a limit for local)
    "cpu_seconds",       "max_file_mb",  "max_processes",  "max_open_files", "log_limit_mb",
    "core_dumps",        "private_tmp",  "kill_escaped",   "kill_on_parent_exit", "network",
    "isolation"};

// evo_config keys the launcher reads.
const std::vector<std::string> evo_config_own_keys = {"job_type", "max_parallel_jobs",
                                                      "init_program_path", "results_dir"};

// evo_config keys of the Genesis engine: accepted and ignored, and never mistaken
// for misspellings of the launcher's own keys.
const std::vector<std::string> evo_config_engine_keys = {
    "num_generations", "llm_models", "llm_dynamic_selection", "llm_kwargs",
    "llm_dynamic_selection_kwargs", "meta_rec_interval", "meta_llm_models", "meta_llm_kwargs",
    "meta_max_recommendations", "embedding_model", "patch_types", "patch_type_probs",
    "task_sys_msg", "language", "max_patch_attempts", "max_patch_resamples",
    "max_novelty_attempts", "novelty_llm_models", "novelty_llm_kwargs",
    "code_embed_sim_threshold", "use_text_feedback", "agentic", "evaluator", "agentic_mode",
    "max_api_costs", "evolve_prompts", "prompt_evolution_interval", "job_config"};

bool contains(const std::vector<std::string>& list, std::string_view value) {
    return std::find(list.begin(), list.end(), value) != list.end();
}

// Keys that `a.b=VALUE` may set even when no file mentions them (see overrides.hpp).
std::vector<std::string> schema_children(const std::vector<std::string>& parent) {
    if (parent.empty()) return top_level_keys;
    if (parent.size() == 1 && parent[0] == "job_config") return job_config_keys;
    // Maps whose keys are free-form (variable names, flags, sandbox paths).
    if (parent.size() == 2 && parent[0] == "job_config" &&
        (parent[1] == "env_vars" || parent[1] == "extra_cmd_args" || parent[1] == "additional_files"))
        return {"*"};
    if (parent.size() == 1 && parent[0] == "evo_config") {
        std::vector<std::string> keys = evo_config_own_keys;
        keys.insert(keys.end(), evo_config_engine_keys.begin(), evo_config_engine_keys.end());
        return keys;
    }
    return {};
}

// ---- context -----------------------------------------------------------------------

struct context {
    fs::path working_dir;  // absolute
    fs::path config_dir;   // absolute
    std::function<std::optional<std::string>(const std::string&)> getenv;

    // A path as shown in messages: relative to the working folder when inside it.
    std::string display(const fs::path& path) const {
        const fs::path normal = path.lexically_normal();
        const fs::path relative = normal.lexically_relative(working_dir);
        if (!relative.empty() && *relative.begin() != "..") return relative.generic_string();
        return normal.string();
    }

    fs::path resolve(const fs::path& path) const {
        return (path.is_absolute() ? path : working_dir / path).lexically_normal();
    }

    std::optional<std::string> env(const std::string& name) const {
        if (getenv) return getenv(name);
        if (const char* value = std::getenv(name.c_str())) return std::string(value);
        return std::nullopt;
    }
};

std::string trim(std::string_view s) {
    std::size_t begin = 0, end = s.size();
    while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
    while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
    return std::string(s.substr(begin, end - begin));
}

std::string join(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
    return out.empty() ? "none" : out;
}

std::vector<std::string> yaml_names_in(const fs::path& folder) {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        const fs::path& p = it->path();
        if (p.extension() == ".yaml" && it->is_regular_file(ec) && !p.stem().empty())
            names.push_back(p.stem().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

// ---- stage 1: choosing the group files ---------------------------------------------

// One entry of a defaults list, e.g. `override /cluster@_global_: e2b`.
struct group_choice {
    std::string group;
    std::optional<std::string> option;  // nullopt: the group is switched off
    std::string package;                // "" = merged at the top level
    bool optional = false;              // `optional group: name`: a missing file is fine
    bool is_override = false;           // `override /group: name`
    bool from_command_line = false;     // command-line choices win over files
    source where;                       // where the choice was written
};

std::vector<group_choice> parse_defaults_list(const node& defaults) {
    if (!defaults.is_sequence())
        throw config_failure(defaults.src.describe() + ": defaults: expected a list, got " +
                             config::describe_value(defaults));
    std::vector<group_choice> out;
    for (const node& item : defaults.items) {
        if (item.kind == node_kind::string && item.text == "_self_") continue;  // see load_config
        if (!item.is_map() || item.entries.size() != 1)
            throw config_failure(item.src.describe() + ": defaults: unsupported entry " +
                                 config::describe_value(item) +
                                 " (expected _self_ or 'group: name')");
        const auto& [raw_key, value] = item.entries.front();
        group_choice choice;
        choice.where = value.src;
        std::string key = trim(raw_key);
        if (key.starts_with("override ")) {
            choice.is_override = true;
            key = trim(key.substr(9));
        }
        if (key.starts_with("optional ")) {
            choice.optional = true;
            key = trim(key.substr(9));
        }
        if (key.starts_with("/")) key.erase(0, 1);
        if (const auto at = key.find('@'); at != std::string::npos) {
            choice.package = key.substr(at + 1);
            key.erase(at);
            if (choice.package == "_global_") choice.package.clear();
            else if (choice.package == "_group_") choice.package = key;
        }
        if (key.empty())
            throw config_failure(item.src.describe() + ": defaults: entry without a group name");
        choice.group = key;
        if (value.is_null()) {
            choice.option.reset();
        } else if (value.is_scalar()) {
            choice.option = value.text;
        } else {
            throw config_failure(value.src.describe() + ": defaults: " + key +
                                 ": expected the name of one config, got " +
                                 config::describe_value(value));
        }
        out.push_back(std::move(choice));
    }
    return out;
}

// Applies a defaults-list entry to the list of choices: command-line choices are
// kept, `override` entries change the option, other entries only add new groups.
void apply_choice(std::vector<group_choice>& choices, const group_choice& choice) {
    auto it = std::find_if(choices.begin(), choices.end(),
                           [&](const group_choice& c) { return c.group == choice.group; });
    if (it == choices.end()) {
        choices.push_back(choice);
        return;
    }
    if (it->from_command_line || !choice.is_override) return;
    it->option = choice.option;
    it->where = choice.where;
}

struct group_file {
    fs::path path;
    node tree;                             // without its defaults list
    std::vector<group_choice> defaults;    // its own defaults list
    bool missing = false;                  // optional entry without a file
};

class group_selector {
public:
    explicit group_selector(const context& ctx) : ctx_(ctx) {}

    // Returns the final choices; group files are loaded (and cached) on the way.
    std::vector<group_choice> select(const std::vector<group_choice>& base) {
        std::vector<group_choice> choices = base;
        // Group files may override other groups (`override /cluster@_global_: local`),
        // which may load files with their own overrides: iterate to a fixed point.
        for (int round = 0;; ++round) {
            std::vector<group_choice> next = base;
            for (const auto& choice : choices) {
                if (!choice.option) continue;
                for (const auto& item : load(choice).defaults) apply_choice(next, item);
            }
            if (same_options(next, choices)) return choices;
            if (round == 16)
                throw config_failure(ctx_.display(ctx_.config_dir / "config.yaml") +
                                     ": defaults: the group files override each other in a cycle");
            choices = std::move(next);
        }
    }

    const group_file& load(const group_choice& choice) {
        const std::string key = choice.group + "/" + *choice.option;
        if (auto it = cache_.find(key); it != cache_.end()) return it->second;

        const fs::path folder = ctx_.config_dir / choice.group;
        const std::string option = *choice.option;
        group_file file;
        file.path = folder / (option + ".yaml");
        std::error_code ec;
        if (!fs::is_directory(folder, ec)) {
            if (!choice.optional)
                fail(choice, "config group '" + choice.group + "' not found in " +
                                 ctx_.display(ctx_.config_dir) +
                                 " (available groups: " + join(group_names()) + ")" +
                                 suggestion(choice.group, group_names()));
            file.missing = true;
        } else if (!fs::is_regular_file(file.path, ec)) {
            if (!choice.optional) {
                const auto available = yaml_names_in(folder);
                fail(choice, choice.group + " '" + option + "' not found in " +
                                 ctx_.display(folder) + " (available: " + join(available) + ")" +
                                 suggestion(option, available));
            }
            file.missing = true;
        } else {
            file.tree = config::load_yaml_file(file.path, ctx_.display(file.path));
            if (const node* defaults = file.tree.find("defaults")) {
                file.defaults = parse_defaults_list(*defaults);
                // Entries in group files always refer to other groups; only `override`
                // entries change a choice that was already made.
                file.tree.erase("defaults");
            }
        }
        return cache_.emplace(key, std::move(file)).first->second;
    }

private:
    static bool same_options(const std::vector<group_choice>& a, const std::vector<group_choice>& b) {
        return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                          [](const group_choice& x, const group_choice& y) {
                              return x.group == y.group && x.option == y.option &&
                                     x.package == y.package;
                          });
    }

    std::vector<std::string> group_names() const {
        std::vector<std::string> names;
        for (const auto& [group, files] : list_config_groups(ctx_.config_dir)) names.push_back(group);
        return names;
    }

    static std::string suggestion(const std::string& word, const std::vector<std::string>& names) {
        if (auto match = config::closest_match(word, names)) return "; did you mean '" + *match + "'?";
        return {};
    }

    [[noreturn]] static void fail(const group_choice& choice, const std::string& message) {
        if (choice.from_command_line) throw config_failure(choice.where.describe() + ": " + message);
        throw config_failure(choice.where.describe() + ": defaults: " + message);
    }

    const context& ctx_;
    std::map<std::string, group_file> cache_;
};

// Wraps `tree` under a dotted package path (`@db.settings` -> {db: {settings: tree}}).
node in_package(node tree, const std::string& package) {
    if (package.empty()) return tree;
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

// ---- stage 3: interpolation --------------------------------------------------------

// Resolves ${...} in string values, in place. Supported:
//   ${a.b.c}                 another key (a whole-string reference keeps the type)
//   ${oc.env:VAR[,default]}  an environment variable (a string)
//   ${oc.select:a.b[,default]} a key, or the default when it is absent
//   ${oc.decode:TEXT}        TEXT parsed as a YAML value
//   ${now:FORMAT}            the local time (strftime)
//   ${hydra:runtime.cwd}     the working folder
// `\${` is a literal `${`. Inside a longer string a value is inserted as written
// (null as "None", like OmegaConf); maps and lists cannot be inserted. The top-level
// `hydra` subtree is Hydra's own and is kept verbatim.
class interpolator {
public:
    interpolator(node& root, const context& ctx) : root_(root), ctx_(ctx) {}

    void run() { resolve(root_, ""); }

private:
    struct piece {
        bool is_expression = false;
        std::string text;  // literal text, or the expression between ${ and }
    };

    static bool has_interpolation(const node& n) {
        return n.kind == node_kind::string && n.text.find("${") != std::string::npos;
    }

    [[noreturn]] static void fail(const node& at, const std::string& path, const std::string& message) {
        throw config_failure(at.src.describe() + ": " + (path.empty() ? "" : path + ": ") + message);
    }

    static std::string child_path(const std::string& path, const std::string& key) {
        return path.empty() ? key : path + "." + key;
    }

    void mark_done(node& n) {
        done_.insert(&n);
        for (auto& item : n.items) mark_done(item);
        for (auto& entry : n.entries) mark_done(entry.value);
    }

    // Resolves `n` and everything below it.
    void resolve(node& n, const std::string& path) {
        if (done_.count(&n)) return;
        if (active_.count(&n)) fail(n, path, "interpolation refers to itself (cycle)");
        active_.insert(&n);
        if (has_interpolation(n)) {
            node result = evaluate_string(n, path);
            result.src = n.src;
            n = std::move(result);
            mark_done(n);
        } else {
            for (std::size_t i = 0; i < n.items.size(); ++i)
                resolve(n.items[i], child_path(path, std::to_string(i)));
            for (auto& [key, value] : n.entries) {
                if (path.empty() && key == "hydra") {
                    mark_done(value);
                    continue;
                }
                resolve(value, child_path(path, key));
            }
        }
        active_.erase(&n);
        done_.insert(&n);
    }

    static std::vector<piece> split(const node& at, const std::string& path, const std::string& text) {
        std::vector<piece> pieces;
        auto literal = [&](std::string_view s) {
            if (pieces.empty() || pieces.back().is_expression) pieces.push_back({false, {}});
            pieces.back().text += s;
        };
        std::size_t i = 0;
        while (i < text.size()) {
            if (text.compare(i, 3, "\\${") == 0) {
                literal("${");
                i += 3;
            } else if (text.compare(i, 2, "${") == 0) {
                // Find the matching brace; expressions may nest (${oc.env:A,${b}}).
                int depth = 0;
                std::size_t j = i;
                for (; j < text.size(); ++j) {
                    if (text.compare(j, 2, "${") == 0) {
                        ++depth;
                        ++j;
                    } else if (text[j] == '}' && --depth == 0) {
                        break;
                    }
                }
                if (j >= text.size()) fail(at, path, "unterminated interpolation in \"" + text + "\"");
                pieces.push_back({true, text.substr(i + 2, j - i - 2)});
                i = j + 1;
            } else {
                literal(std::string_view(text).substr(i, 1));
                ++i;
            }
        }
        return pieces;
    }

    // A value inserted into a longer string.
    static std::string as_text(const node& value, const node& at, const std::string& path,
                               const std::string& expression) {
        if (value.is_null()) return "None";
        if (!value.is_scalar())
            fail(at, path, "'${" + expression + "}' is " + config::describe_value(value) +
                               " and cannot be inserted into a string");
        return value.text;
    }

    node evaluate_string(const node& n, const std::string& path) {
        const std::vector<piece> pieces = split(n, path, n.text);
        if (pieces.size() == 1 && pieces.front().is_expression)
            return evaluate_expression(pieces.front().text, n, path);
        std::string out;
        for (const auto& p : pieces)
            out += p.is_expression ? as_text(evaluate_expression(p.text, n, path), n, path, p.text)
                                   : p.text;
        return node::make_string(std::move(out), n.src);
    }

    // Resolver arguments: "A,B" -> {"A", "B"} (only the first comma splits).
    static std::pair<std::string, std::optional<std::string>> split_argument(const std::string& args) {
        const auto comma = args.find(',');
        if (comma == std::string::npos) return {trim(args), std::nullopt};
        return {trim(args.substr(0, comma)), trim(args.substr(comma + 1))};
    }

    static bool is_quoted(const std::string& s) {
        return s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front();
    }

    node evaluate_expression(std::string expression, const node& at, const std::string& path) {
        const std::string original = expression;
        // Nested interpolations inside an expression are replaced textually first.
        if (expression.find("${") != std::string::npos) {
            node inner = node::make_string(expression, at.src);
            expression = evaluate_string(inner, path).text;
        }

        const auto colon = expression.find(':');
        const std::string name = colon == std::string::npos ? "" : trim(expression.substr(0, colon));
        const bool is_resolver =
            !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
            });
        if (!is_resolver) return copy_of_key(trim(expression), at, path, original, false).value();

        const std::string args = expression.substr(colon + 1);
        if (name == "oc.env") {
            auto [variable, fallback] = split_argument(args);
            if (auto value = ctx_.env(variable)) return node::make_string(*value, at.src);
            if (!fallback)
                fail(at, path, "cannot resolve '${" + original + "}': environment variable '" +
                                   variable + "' is not set");
            if (*fallback == "null") return node::make_null(at.src);
            return node::make_string(is_quoted(*fallback) ? fallback->substr(1, fallback->size() - 2)
                                                          : *fallback,
                                     at.src);
        }
        if (name == "oc.select") {
            auto [key, fallback] = split_argument(args);
            if (auto value = copy_of_key(key, at, path, original, true)) return *value;
            if (!fallback) return node::make_null(at.src);
            if (is_quoted(*fallback))
                return node::make_string(fallback->substr(1, fallback->size() - 2), at.src);
            return config::scalar_from_plain_text(*fallback, at.src);
        }
        if (name == "oc.decode") return config::parse_yaml_value(trim(args), at.src);
        if (name == "now") {
            const std::time_t now = std::time(nullptr);
            std::tm local{};
            localtime_r(&now, &local);
            std::array<char, 256> buffer{};
            const std::size_t size = std::strftime(buffer.data(), buffer.size(), args.c_str(), &local);
            return node::make_string(std::string(buffer.data(), size), at.src);
        }
        if (name == "hydra" && trim(args) == "runtime.cwd")
            return node::make_string(ctx_.working_dir.string(), at.src);
        fail(at, path, "cannot resolve '${" + original + "}': unknown resolver '" + name + "'");
    }

    // A resolved copy of the value at dotted `key`; nullopt (when `optional`) or an
    // error when there is no such key.
    std::optional<node> copy_of_key(const std::string& key, const node& at, const std::string& path,
                                    const std::string& expression, bool optional) {
        auto missing = [&](const std::string& why) -> std::optional<node> {
            if (optional) return std::nullopt;
            fail(at, path, "cannot resolve '${" + expression + "}': " + why);
        };
        if (key.empty() || key.front() == '.' || key.back() == '.')
            return missing("invalid or relative key '" + key + "' (use the full dotted path)");

        node* current = &root_;
        std::string current_path;
        std::stringstream stream(key);
        for (std::string segment; std::getline(stream, segment, '.');) {
            // An interpolated string may stand for a map: resolve it before descending.
            if (has_interpolation(*current)) resolve(*current, current_path);
            node* next = nullptr;
            if (current->is_map()) {
                next = current->find(segment);
            } else if (current->is_sequence()) {
                std::size_t index = 0;
                auto [end, ec] = std::from_chars(segment.data(), segment.data() + segment.size(), index);
                if (ec == std::errc{} && end == segment.data() + segment.size() &&
                    index < current->items.size())
                    next = &current->items[index];
            }
            if (next == nullptr) return missing("key '" + key + "' is not in the config");
            current = next;
            current_path = child_path(current_path, segment);
        }
        resolve(*current, current_path);
        return *current;
    }

    node& root_;
    const context& ctx_;
    std::set<const node*> done_;
    std::set<const node*> active_;
};

// ---- stage 4: validation -----------------------------------------------------------

class validator {
public:
    explicit validator(const context& ctx) : ctx_(ctx) {}

    [[noreturn]] void fail(const node& at, const std::string& key, const std::string& message) const {
        throw config_failure(at.src.describe() + ": " + key + ": " + message);
    }

    void expect_map(const node& n, const std::string& key) const {
        if (!n.is_map()) fail(n, key, "expected a map, got " + config::describe_value(n));
    }

    // Strings; numbers and booleans are taken as written (as OmegaConf does for str fields).
    std::string string_of(const node& n, const std::string& key) const {
        if (n.is_null() || !n.is_scalar())
            fail(n, key, "expected a string, got " + config::describe_value(n));
        return n.text;
    }

    std::optional<std::string> optional_string_of(const node& n, const std::string& key) const {
        if (n.is_null()) return std::nullopt;
        return string_of(n, key);
    }

    fs::path path_of(const node& n, const std::string& key) const {
        const std::string text = string_of(n, key);
        if (text.empty()) fail(n, key, "expected a path, got \"\"");
        return ctx_.resolve(text);
    }

    // An integer, or a string holding one (OmegaConf converts those for int fields).
    std::int64_t integer_of(const node& n, const std::string& key, std::int64_t minimum) const {
        node typed = n;
        if (n.kind == node_kind::string) typed = config::scalar_from_plain_text(trim(n.text), n.src);
        if (typed.kind != node_kind::integer)
            fail(n, key, "expected an integer, got " + config::describe_value(n));
        if (typed.int_value < minimum)
            fail(n, key, "expected an integer >= " + std::to_string(minimum) + ", got " + n.text);
        return typed.int_value;
    }

    std::optional<int> optional_int_of(const node& n, const std::string& key, int minimum) const {
        if (n.is_null()) return std::nullopt;
        const std::int64_t value = integer_of(n, key, minimum);
        if (value > std::numeric_limits<int>::max()) fail(n, key, "value too large: " + n.text);
        return static_cast<int>(value);
    }

    // A number of seconds (integer or decimal; also a string holding one).
    std::optional<double> seconds_of(const node& n) const {
        node typed = n;
        if (n.kind == node_kind::string) typed = config::scalar_from_plain_text(trim(n.text), n.src);
        if (typed.kind == node_kind::integer) return static_cast<double>(typed.int_value);
        if (typed.kind == node_kind::floating && std::isfinite(typed.float_value))
            return typed.float_value;
        return std::nullopt;
    }

    // true/false (also the strings "true"/"false", as OmegaConf converts them for bool fields).
    bool bool_of(const node& n, const std::string& key) const {
        if (n.kind == node_kind::boolean) return n.bool_value;
        if (n.kind == node_kind::string) {
            const node typed = config::scalar_from_plain_text(trim(n.text), n.src);
            if (typed.kind == node_kind::boolean) return typed.bool_value;
        }
        fail(n, key, "expected true or false, got " + config::describe_value(n));
    }

    // A finite number (integer or decimal; also a string holding one) >= minimum,
    // or > minimum when `exclusive`.
    double number_of(const node& n, const std::string& key, double minimum, bool exclusive) const {
        const auto value = seconds_of(n);
        if (!value) fail(n, key, "expected a number, got " + config::describe_value(n));
        if (exclusive ? !(*value > minimum) : !(*value >= minimum)) {
            char bound[64];
            std::snprintf(bound, sizeof bound, "%g", minimum);
            fail(n, key, std::string("expected a number ") + (exclusive ? "> " : ">= ") + bound + ", got " + n.text);
        }
        return *value;
    }

    // hh:mm:ss, mm:ss or a number of seconds.
    std::chrono::milliseconds duration_of(const node& n, const std::string& key, bool allow_zero) const {
        const std::string expected = "expected hh:mm:ss or a number of seconds, got " +
                                     config::describe_value(n);
        std::optional<std::chrono::milliseconds> value;
        if (n.kind == node_kind::string) {
            value = parse_duration(n.text);
        } else if (n.kind == node_kind::integer || n.kind == node_kind::floating) {
            if (auto seconds = seconds_of(n); seconds && *seconds >= 0 && *seconds < 1e12)
                value = std::chrono::milliseconds(std::llround(*seconds * 1000.0));
        }
        if (!value) fail(n, key, expected);
        if (!allow_zero && value->count() <= 0) fail(n, key, "expected a positive duration, got " + n.text);
        return *value;
    }

    void top_level(const node& root) const {
        for (const auto& [key, value] : root.entries) {
            // A key added on purpose with `+key=...` / `++key=...` is the user's own
            // (Hydra allows it); a key that merely appears in a file is checked.
            if (value.src.override_text.starts_with("+")) continue;
            if (!contains(top_level_keys, key))
                fail(value, key, "unknown key" + config::did_you_mean(key, top_level_keys));
        }
    }

    void evo_config(const node& evo, launcher_config& out, bool& results_dir_set) const {
        expect_map(evo, "evo_config");
        for (const auto& [name, value] : evo.entries) {
            const std::string key = "evo_config." + name;
            if (name == "job_type") {
                const std::string type = value.kind == node_kind::string ? value.text : "";
                if (type == "local") out.type = job_type::local;
                else if (type == "e2b") out.type = job_type::e2b;
                else
                    fail(value, key, "expected 'local' or 'e2b', got " + config::describe_value(value) +
                                         config::did_you_mean(type, {"local", "e2b"}));
            } else if (name == "max_parallel_jobs") {
                const std::int64_t jobs = integer_of(value, key, 1);
                if (jobs > 100000) fail(value, key, "expected at most 100000, got " + value.text);
                out.max_parallel_jobs = static_cast<int>(jobs);
            } else if (name == "init_program_path") {
                if (!value.is_null()) out.init_program_path = path_of(value, key);
            } else if (name == "results_dir") {
                if (!value.is_null()) {
                    out.results_dir = path_of(value, key);
                    results_dir_set = true;
                }
            } else if (!contains(evo_config_engine_keys, name)) {
                // Engine settings pass through; a near-miss of one of ours is a typo.
                const std::string* nearest = nullptr;
                std::size_t nearest_distance = 3;
                for (const auto& own : evo_config_own_keys) {
                    const std::size_t distance = config::edit_distance(name, own);
                    if (distance < nearest_distance) {
                        nearest = &own;
                        nearest_distance = distance;
                    }
                }
                if (nearest) fail(value, key, "unknown key (did you mean '" + *nearest + "'?)");
            }
        }
    }

    void job_config(const node& job, launcher_config& out, std::set<std::string>& endpoints_set) const {
        expect_map(job, "job_config");
        for (const auto& [name, value] : job.entries) {
            const std::string key = "job_config." + name;
            if (name == "eval_program_path") {
                out.eval_program_path = path_of(value, key);
            } else if (name == "eval_command") {
                // Genesis's own command line; the launcher builds the argv itself.
            } else if (name == "extra_cmd_args") {
                if (value.is_null()) continue;
                expect_map(value, key);
                out.extra_cmd_args = config::to_json(value).as_object();
            } else if (name == "env_vars") {
                if (value.is_null()) continue;
                expect_map(value, key);
                for (const auto& [variable, text] : value.entries) {
                    if (text.is_null() || !text.is_scalar())
                        fail(text, key + "." + variable,
                             "expected a string, got " + config::describe_value(text));
                    out.env_vars[variable] = text.text;
                }
            } else if (name == "time") {
                if (value.is_null()) out.local.time.reset();
                else out.local.time = duration_of(value, key, false);
            } else if (name == "conda_env") {
                out.local.conda_env = optional_string_of(value, key);
            } else if (name == "python") {
                out.local.python = string_of(value, key);
                if (out.local.python.empty()) fail(value, key, "expected an interpreter, got \"\"");
            } else if (name == "memory_mb" && out.type == job_type::e2b) {
                // The sandbox's size (cost estimate); for the local backend, a limit.
                out.e2b.memory_mb = optional_int_of(value, key, 1);
            } else if (name == "memory_mb" || name == "max_file_mb" || name == "max_open_files" ||
                       name == "log_limit_mb" || name == "max_processes") {
                std::optional<std::uint64_t> limit;
                if (!value.is_null()) {
                    const std::int64_t n = integer_of(value, key, 1);
                    // MiB values become bytes for setrlimit.
                    if (name != "max_open_files" && name != "max_processes" && n > (std::int64_t{1} << 40))
                        fail(value, key, "value too large: " + value.text);
                    limit = static_cast<std::uint64_t>(n);
                }
                (name == "memory_mb" ? out.local.memory_mb
                 : name == "max_file_mb" ? out.local.max_file_mb
                 : name == "log_limit_mb"       ? out.local.log_limit_mb
                 : name == "max_processes"      ? out.local.max_processes
                                                : out.local.max_open_files) = limit;
            } else if (name == "cpu_seconds") {
                if (value.is_null()) out.local.cpu_seconds.reset();
                else
                    out.local.cpu_seconds =
                        std::chrono::seconds((duration_of(value, key, false).count() + 999) / 1000);
            } else if (name == "core_dumps") {
                out.local.core_dumps = bool_of(value, key);
            } else if (name == "private_tmp") {
                out.local.private_tmp = bool_of(value, key);
            } else if (name == "kill_escaped") {
                out.local.kill_escaped = bool_of(value, key);
            } else if (name == "kill_on_parent_exit") {
                out.local.kill_on_parent_exit = bool_of(value, key);
            } else if (name == "network") {
                out.local.network = bool_of(value, key);
            } else if (name == "isolation") {
                const std::string mode = value.is_null() ? std::string("none") : string_of(value, key);
                if (mode == "none") out.local.isolation = local_isolation::none;
                else if (mode == "bwrap") out.local.isolation = local_isolation::bwrap;
                else fail(value, key, "expected none or bwrap, got " + config::describe_value(value));
            } else if (name == "template") {
                out.e2b.template_id = string_of(value, key);
            } else if (name == "timeout") {
                const auto seconds = seconds_of(value);
                if (!seconds || *seconds <= 0 || *seconds > 1e9)
                    fail(value, key, "expected a positive number of seconds, got " +
                                         config::describe_value(value));
                out.e2b.timeout = std::chrono::seconds(static_cast<std::int64_t>(std::ceil(*seconds)));
            } else if (name == "dependencies") {
                out.e2b.dependencies.clear();
                if (value.is_null()) continue;
                if (!value.is_sequence())
                    fail(value, key, "expected a list of strings, got " + config::describe_value(value));
                for (std::size_t i = 0; i < value.items.size(); ++i)
                    out.e2b.dependencies.push_back(string_of(value.items[i], key + "." + std::to_string(i)));
            } else if (name == "additional_files") {
                out.e2b.additional_files.clear();
                if (value.is_null()) continue;
                expect_map(value, key);
                for (const auto& [sandbox_path, local] : value.entries)
                    out.e2b.additional_files[sandbox_path] =
                        path_of(local, key + "." + sandbox_path).string();
            } else if (name == "cpus") {
                out.e2b.cpus = optional_int_of(value, key, 1);
            } else if (name == "kill_grace") {
                out.kill_grace = duration_of(value, key, true);
            } else if (name == "output_capture_bytes") {
                out.output_capture_bytes = static_cast<std::size_t>(integer_of(value, key, 1));
            } else if (name == "install_timeout") {
                const auto limit = duration_of(value, key, false);
                out.e2b.install_timeout = std::chrono::seconds((limit.count() + 999) / 1000);
            } else if (name == "create_rate") {
                out.e2b.create_rate = number_of(value, key, 0.0, true);
            } else if (name == "ca_file") {
                const auto text = optional_string_of(value, key);
                out.e2b.ca_file = text && !text->empty() ? ctx_.resolve(*text).string() : std::string();
            } else if (name == "tls_verify") {
                out.e2b.tls_verify = bool_of(value, key);
            } else if (name == "retry_vanished") {
                out.e2b.retry_vanished = bool_of(value, key);
            } else if (name == "max_retries") {
                const std::int64_t attempts = integer_of(value, key, 1);
                if (attempts > 100) fail(value, key, "expected at most 100, got " + value.text);
                out.e2b.max_retries = static_cast<int>(attempts);
            } else if (name == "cost_per_cpu_second") {
                out.e2b.cost_per_cpu_second = number_of(value, key, 0.0, false);
            } else if (name == "cost_per_gib_second") {
                out.e2b.cost_per_gib_second = number_of(value, key, 0.0, false);
            } else if (name == "run_tag") {
                const auto text = optional_string_of(value, key);
                out.e2b.run_tag = text.value_or("");
                for (char c : out.e2b.run_tag)
                    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
                        fail(value, key, "expected letters, digits, '-', '_' or '.', got " +
                                             config::describe_value(value));
            } else if (name == "sweep_on_start") {
                out.e2b.sweep_on_start = bool_of(value, key);
            } else if (name == "api_url" || name == "sandbox_url" || name == "domain") {
                const auto text = optional_string_of(value, key);
                if (!text) continue;
                (name == "api_url" ? out.e2b.api_url
                 : name == "sandbox_url" ? out.e2b.sandbox_url
                                         : out.e2b.domain) = *text;
                endpoints_set.insert(name);
            } else {
                fail(value, key, "unknown key" + config::did_you_mean(name, job_config_keys));
            }
        }
        if (out.e2b.sweep_on_start && out.e2b.run_tag.empty())
            if (const node* sweep = job.find("sweep_on_start"))
                fail(*sweep, "job_config.sweep_on_start",
                     "needs job_config.run_tag (the tag whose sandboxes are killed at start-up)");
    }

    std::vector<fs::path> programs(const node& value) const {
        std::vector<fs::path> out;
        std::error_code ec;
        if (value.is_null()) return out;
        if (value.is_sequence()) {
            for (std::size_t i = 0; i < value.items.size(); ++i) {
                const node& item = value.items[i];
                const std::string key = "programs." + std::to_string(i);
                const fs::path path = path_of(item, key);
                if (fs::is_directory(path, ec))
                    fail(item, key, "'" + item.text + "' is a folder; list files, or give the folder as programs=DIR");
                if (!fs::is_regular_file(path, ec)) fail(item, key, "'" + item.text + "' does not exist");
                out.push_back(path);
            }
            return out;
        }
        if (!value.is_scalar())
            fail(value, "programs", "expected a list of files or a folder, got " + config::describe_value(value));
        const fs::path path = path_of(value, "programs");
        if (fs::is_directory(path, ec)) {
            for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
                const fs::path& file = it->path();
                if (file.filename().string().starts_with(".") || file.extension() != ".py") continue;
                if (it->is_regular_file(ec)) out.push_back(file);
            }
            if (ec) fail(value, "programs", "cannot list '" + value.text + "': " + ec.message());
            std::sort(out.begin(), out.end(),
                      [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
            if (out.empty()) fail(value, "programs", "folder '" + value.text + "' has no .py files");
            return out;
        }
        if (!fs::is_regular_file(path, ec)) fail(value, "programs", "'" + value.text + "' does not exist");
        out.push_back(path);
        return out;
    }

private:
    const context& ctx_;
};

// ---- stage 5: credentials ----------------------------------------------------------

void fill_credentials(const context& ctx, const std::set<std::string>& endpoints_set, e2b_params& e2b) {
    std::optional<std::map<std::string, std::string>> dotenv;
    // Environment first, then <working_dir>/.env; empty values count as unset.
    auto lookup = [&](const std::string& name) -> std::optional<std::string> {
        if (auto value = ctx.env(name); value && !value->empty()) return value;
        if (!dotenv) {
            dotenv.emplace();
            std::ifstream in(ctx.working_dir / ".env", std::ios::binary);
            if (in) {
                std::stringstream text;
                text << in.rdbuf();
                *dotenv = parse_dotenv(text.str());
            }
        }
        if (auto it = dotenv->find(name); it != dotenv->end() && !it->second.empty()) return it->second;
        return std::nullopt;
    };
    if (auto key = lookup("E2B_API_KEY")) e2b.api_key = *key;
    const std::array<std::pair<const char*, std::string*>, 3> endpoints{{
        {"api_url", &e2b.api_url}, {"sandbox_url", &e2b.sandbox_url}, {"domain", &e2b.domain}}};
    for (const auto& [name, field] : endpoints) {
        if (endpoints_set.count(name)) continue;
        std::string variable = std::string("E2B_") + name;
        std::transform(variable.begin(), variable.end(), variable.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        if (auto value = lookup(variable)) *field = *value;
    }
}

// ---- the whole load ------------------------------------------------------------------

loaded_config load(const load_options& options) {
    context ctx;
    std::error_code ec;
    // A relative working_dir is taken from the current folder; a relative config_dir
    // too (it is a command-line path, not a path inside the configuration).
    ctx.working_dir = (options.working_dir.empty() ? fs::current_path()
                                                   : fs::absolute(options.working_dir))
                          .lexically_normal();
    ctx.config_dir = fs::absolute(options.config_dir).lexically_normal();
    ctx.getenv = options.getenv;

    if (!fs::is_directory(ctx.config_dir, ec))
        throw config_failure(ctx.display(ctx.config_dir) + ": config folder not found");
    const fs::path primary_path = ctx.config_dir / "config.yaml";
    if (!fs::is_regular_file(primary_path, ec))
        throw config_failure(ctx.display(primary_path) + ": file not found");

    // Overrides: group choices now, value overrides after merging.
    const auto groups = list_config_groups(ctx.config_dir);
    auto is_group = [&](std::string_view name) { return groups.count(std::string(name)) > 0; };
    std::vector<config::override_spec> overrides;
    for (const auto& text : options.overrides) overrides.push_back(config::parse_override(text, is_group));

    // Stage 1: the defaults list of config.yaml, then command-line group choices.
    loaded_config result;
    node primary = config::load_yaml_file(primary_path, ctx.display(primary_path));
    std::vector<group_choice> base;
    if (const node* defaults = primary.find("defaults")) {
        for (const auto& choice : parse_defaults_list(*defaults)) apply_choice(base, choice);
        primary.erase("defaults");
    }
    for (const auto& spec : overrides) {
        if (spec.op != config::override_op::select_group && spec.op != config::override_op::remove_group)
            continue;
        group_choice choice;
        choice.group = spec.key;
        choice.option = spec.group_option;
        choice.from_command_line = true;
        choice.where = spec.src();
        auto it = std::find_if(base.begin(), base.end(), [&](const group_choice& c) { return c.group == spec.key; });
        if (it == base.end()) {
            base.push_back(std::move(choice));
        } else {
            it->option = choice.option;
            it->from_command_line = true;
            it->optional = false;
            it->where = choice.where;
        }
    }
    group_selector selector(ctx);
    std::vector<group_choice> choices = selector.select(base);

    // Stage 2: merge. config.yaml first (wherever `_self_` is listed), then the groups
    // in defaults-list order with the variant last, then the value overrides.
    node tree = std::move(primary);
    result.sources.push_back(primary_path);
    std::stable_partition(choices.begin(), choices.end(),
                          [](const group_choice& c) { return c.group != "variant"; });
    for (const auto& choice : choices) {
        if (!choice.option) continue;
        const group_file& file = selector.load(choice);
        if (file.missing) continue;
        config::merge_into(tree, in_package(file.tree, choice.package));
        result.sources.push_back(file.path);
        if (choice.group == "cluster") result.cluster = *choice.option;
        if (choice.group == "variant") result.variant = *choice.option;
    }
    for (const auto& spec : overrides) {
        // `name=value` for a name that is neither a key nor a group: most likely a
        // mistyped or missing config group; say so, with both kinds of suggestion.
        if (spec.op == config::override_op::set && spec.path.size() == 1 && !tree.find(spec.key)) {
            const auto known = schema_children({});
            if (std::find(known.begin(), known.end(), spec.key) == known.end()) {
                std::vector<std::string> group_names, names = tree.keys();
                for (const auto& [group, files] : groups) group_names.push_back(group);
                names.insert(names.end(), group_names.begin(), group_names.end());
                std::string message = "command line override '" + spec.text + "': '" + spec.key +
                                      "' is neither a config group in " + ctx.display(ctx.config_dir) + " (groups: " +
                                      (group_names.empty() ? std::string("none") : join(group_names)) +
                                      ") nor a key of the config (use +" + spec.key + "=... to add a key)";
                if (auto match = config::closest_match(spec.key, names)) message += "; did you mean '" + *match + "'?";
                throw config_failure(message);
            }
        }
        config::apply_override(tree, spec, schema_children);
    }

    // Stage 3.
    tree.erase("defaults");
    config::erase_key_recursive(tree, "_target_");
    interpolator(tree, ctx).run();

    // Stage 4.
    validator check(ctx);
    check.top_level(tree);
    launcher_config& out = result.launcher;
    out.eval_program_path = ctx.resolve(out.eval_program_path);
    out.init_program_path = ctx.resolve(out.init_program_path);
    bool results_dir_set = false;
    if (const node* evo = tree.find("evo_config"); evo && !evo->is_null())
        check.evo_config(*evo, out, results_dir_set);
    if (!results_dir_set) {
        const node* top = tree.find("results_dir");
        out.results_dir = top && !top->is_null() ? check.path_of(*top, "results_dir")
                                                 : ctx.resolve(out.results_dir);
    }
    std::set<std::string> endpoints_set;
    if (const node* job = tree.find("job_config"); job && !job->is_null())
        check.job_config(*job, out, endpoints_set);
    if (const node* programs = tree.find("programs")) result.programs = check.programs(*programs);

    // Stage 5 (the key goes into launcher_config only, never into the tree).
    fill_credentials(ctx, endpoints_set, out.e2b);

    result.tree = config::to_json(tree).as_object();
    return result;
}

}  // namespace

loaded_config load_config(const load_options& options, boost::system::error_code& ec,
                          diagnostics& diag) {
    ec.clear();
    diag.clear();
    std::string message;
    try {
        return load(options);
    } catch (const config_failure& e) {
        message = e.what();
    } catch (const fs::filesystem_error& e) {
        message = "cannot read the configuration: " + e.code().message() + ": " + e.path1().string();
    } catch (const std::exception& e) {
        message = std::string("cannot load the configuration: ") + e.what();
    }
    // The contract is one line: flatten anything that slipped through.
    std::replace(message.begin(), message.end(), '\n', ' ');
    std::replace(message.begin(), message.end(), '\r', ' ');
    ec = make_error_code(errc::config_error);
    diag.client_message = std::move(message);
    return {};
}

loaded_config load_config(const load_options& options) {
    boost::system::error_code ec;
    diagnostics diag;
    loaded_config config = load_config(options, ec, diag);
    if (ec) throw launch_error(ec, std::move(diag));
    return config;
}

// ---- parse_duration ----------------------------------------------------------------

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    const std::string trimmed = trim(text);
    if (trimmed.empty()) return std::nullopt;

    std::vector<std::string_view> parts;
    std::string_view rest = trimmed;
    for (std::size_t colon; (colon = rest.find(':')) != std::string_view::npos;) {
        parts.push_back(rest.substr(0, colon));
        rest.remove_prefix(colon + 1);
    }
    parts.push_back(rest);
    if (parts.size() > 3) return std::nullopt;

    auto digits_only = [](std::string_view s) {
        return !s.empty() && s.size() <= 12 &&
               std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    auto to_int = [](std::string_view s) {
        std::int64_t value = 0;
        std::from_chars(s.data(), s.data() + s.size(), value);
        return value;
    };

    // Seconds: digits with an optional fraction (".5", "1.", "1.25").
    const std::string_view seconds = parts.back();
    const std::size_t dot = seconds.find('.');
    const std::string_view whole = seconds.substr(0, dot);
    const std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : seconds.substr(dot + 1);
    if (whole.empty() && fraction.empty()) return std::nullopt;
    if (!whole.empty() && !digits_only(whole)) return std::nullopt;
    if (!fraction.empty() && !std::all_of(fraction.begin(), fraction.end(),
                                          [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    std::int64_t total_ms = whole.empty() ? 0 : to_int(whole) * 1000;
    // Milliseconds from the fraction, rounded to nearest.
    std::int64_t tenths_of_ms = 0;
    for (std::size_t i = 0; i < 4; ++i)
        tenths_of_ms = tenths_of_ms * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
    total_ms += (tenths_of_ms + 5) / 10;

    if (parts.size() > 1) {
        // In mm:ss and hh:mm:ss the lower fields stay below 60.
        if (!whole.empty() && to_int(whole) >= 60) return std::nullopt;
        for (std::size_t i = 0; i + 1 < parts.size(); ++i)
            if (!digits_only(parts[i])) return std::nullopt;
        const std::int64_t minutes = to_int(parts[parts.size() - 2]);
        if (parts.size() == 3 && minutes >= 60) return std::nullopt;
        const std::int64_t hours = parts.size() == 3 ? to_int(parts[0]) : 0;
        if (hours > 1'000'000'000 || minutes > 1'000'000'000) return std::nullopt;
        total_ms += (hours * 3600 + minutes * 60) * 1000;
    }
    return std::chrono::milliseconds(total_ms);
}

// ---- list_config_groups ------------------------------------------------------------

std::map<std::string, std::vector<std::string>> list_config_groups(const std::filesystem::path& config_dir) {
    std::map<std::string, std::vector<std::string>> groups;
    std::error_code ec;
    for (fs::directory_iterator it(config_dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.starts_with(".") || !it->is_directory(ec)) continue;
        groups[name] = yaml_names_in(it->path());
    }
    return groups;
}

}  // namespace genesis::launch
