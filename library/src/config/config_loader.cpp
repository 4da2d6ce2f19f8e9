// config_loader.cpp - load_config, validate, parse_duration and list_config_groups.
//
// Loading happens in stages:
//   1. compose the config folder the Hydra way (compose.hpp): defaults lists, packages,
//      `override` entries and `group=name` choices from the command line,
//   2. apply the value overrides (`a.b=VALUE`, `+a.b=VALUE`, `~a.b`),
//   3. resolve ${...} interpolations (interpolation.hpp): strictly for the launcher's
//      keys, best-effort for the engine's,
//   4. read the launcher's keys through the schema table (schema.hpp) into a
//      launcher_config, and validate it; every other key is the engine's and is carried,
//   5. fill the E2B credentials from the environment or the nearest `.env`.
// Every failure is a config_failure carrying the final one-line message.
#include "genesis/launch/config.hpp"

#include "config/compose.hpp"
#include "config/interpolation.hpp"
#include "config/overrides.hpp"
#include "config/schema.hpp"
#include "config/yaml_tree.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace genesis::launch {

namespace {

namespace fs = std::filesystem;
using config::config_failure;
using config::node;
using config::node_kind;
using config::source;
using config::trim;
using config::yaml_names_in;

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

std::string join(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
    return out.empty() ? "none" : out;
}

// Keys under which interpolation failures are errors: what the launcher reads.
bool launcher_path(const std::string& path) {
    if (path == "job_config" || path.starts_with("job_config.")) return true;
    if (path == "evo_config") return true;
    for (const char* key : {"evo_config.job_type", "evo_config.max_parallel_jobs", "evo_config.init_program_path",
                            "evo_config.results_dir", "results_dir", "programs", "max_evaluation_jobs"})
        if (path == key || path.starts_with(std::string(key) + ".")) return true;
    return false;
}

// Keys that `a.b=VALUE` may set even when no file mentions them (see overrides.hpp).
std::vector<std::string> schema_children(const std::vector<std::string>& parent) {
    std::string path;
    for (const auto& part : parent) path += (path.empty() ? "" : ".") + part;
    if (const config::launcher_key* key = config::find_launcher_key(path); key && key->free_form_map) return {"*"};
    if (parent.size() > 1) return {};
    return config::launcher_children(path);
}

const node* find_path(const node& root, const std::string& dotted) {
    const node* current = &root;
    std::stringstream stream(dotted);
    for (std::string part; std::getline(stream, part, '.');) {
        current = current->find(part);
        if (!current) return nullptr;
    }
    return current;
}

// ---- stage 4: reading the launcher's keys -----------------------------------------

class launcher_reader {
public:
    launcher_reader(const context& ctx, std::vector<std::string>& notes)
        : ctx_(ctx), notes_(notes), read_([&ctx](const std::string& p) { return ctx.resolve(p); }) {}

    void read(const node& root, loaded_config& out) {
        launcher_config& cfg = out.launcher;
        cfg.eval_program_path = ctx_.resolve(cfg.eval_program_path);
        cfg.init_program_path = ctx_.resolve(cfg.init_program_path);
        cfg.results_dir = ctx_.resolve(cfg.results_dir);

        // Top level: ours, typos of ours, and the engine's (carried).
        for (const auto& [name, value] : root.entries) {
            if (name == "job_config" || name == "evo_config" || name == "programs") continue;
            if (const config::launcher_key* key = config::find_launcher_key(name)) {
                set(*key, value, name, cfg);
            } else if (auto typo = config::near_miss("", name); typo && !value.src.override_text.starts_with("+")) {
                read_.fail(value, name, "unknown key (did you mean '" + *typo + "'?)");
            }
        }
        if (const node* evo = root.find("evo_config"); evo && !evo->is_null()) evo_config(*evo, cfg);
        if (const node* job = root.find("job_config"); job && !job->is_null()) job_config(*job, cfg);
        if (const node* programs = root.find("programs")) out.programs = read_programs(*programs);
    }

private:
    void set(const config::launcher_key& key, const node& value, const std::string& path, launcher_config& cfg) {
        if (config::is_missing_value(value))
            read_.fail(value, path, "mandatory value ??? is not set (set it in a config file or with " + path + "=VALUE)");
        if (key.set) key.set(read_, value, path, cfg);
    }

    void evo_config(const node& evo, launcher_config& cfg) {
        read_.expect_map(evo, "evo_config");
        // The job type first: it decides how job_config.memory_mb is read.
        if (const node* type = evo.find("job_type")) job_type(*type, cfg);
        for (const auto& [name, value] : evo.entries) {
            const std::string path = "evo_config." + name;
            if (name == "job_type" || name == "_target_") continue;
            if (name == "init_program_path") {
                init_program_path(value, cfg);
            } else if (const config::launcher_key* key = config::find_launcher_key(path)) {
                set(*key, value, path, cfg);
            } else if (auto typo = config::near_miss("evo_config", name)) {
                read_.fail(value, path, "unknown key (did you mean '" + *typo + "'?)");
            }
        }
    }

    void job_type(const node& value, launcher_config& cfg) {
        const std::string key = "evo_config.job_type";
        if (config::is_missing_value(value)) read_.fail(value, key, "mandatory value ??? is not set (local or e2b)");
        const std::string type = value.kind == node_kind::string ? value.text : "";
        if (type == "local") {
            cfg.type = job_type::local;
        } else if (type == "e2b") {
            cfg.type = job_type::e2b;
        } else if (type == "slurm_conda" || type == "slurm_docker" || type == "slurm_env") {
            read_.fail(value, key,
                       "'" + type + "' is a Slurm job type, which genesis-launch does not run (supported: local, e2b); "
                       "choose cluster=local or cluster=e2b, or set evo_config.job_type=local");
        } else {
            read_.fail(value, key, "expected 'local' or 'e2b', got " + config::describe_value(value) +
                                       config::did_you_mean(type, {"local", "e2b"}));
        }
    }

    void init_program_path(const node& value, launcher_config& cfg) {
        const std::string key = "evo_config.init_program_path";
        if (value.is_null()) return;
        if (value.is_map() && value.find("_target_")) {
            // Built by the engine at run time (ShinkaEvolve's add_evolve_markers).
            cfg.init_program_path.clear();
            notes_.push_back(value.src.describe() + ": " + key +
                             " is a _target_ node the engine builds; a single run needs programs=FILE");
            return;
        }
        if (config::is_missing_value(value))
            read_.fail(value, key, "mandatory value ??? is not set (set it with " + key + "=FILE, or give programs=...)");
        cfg.init_program_path = read_.path_of(value, key);
    }

    void job_config(const node& job, launcher_config& cfg) {
        read_.expect_map(job, "job_config");
        for (const auto& [name, value] : job.entries) {
            const std::string path = "job_config." + name;
            if (name == "_target_") continue;
            if (const config::launcher_key* key = config::find_launcher_key(path)) {
                set(*key, value, path, cfg);
                continue;
            }
            const auto& ignored = config::ignored_job_keys();
            const std::string& field = name;  // (Clang 14 cannot capture a structured binding)
            auto it = std::find_if(ignored.begin(), ignored.end(), [&](const auto& k) { return field == k.name; });
            if (it != ignored.end()) {
                notes_.push_back(value.src.describe() + ": " + path + ": carried, not used here (" + it->why + ")");
            } else if (auto typo = config::near_miss("job_config", name)) {
                read_.fail(value, path, "unknown key (did you mean '" + *typo + "'?)");
            } else {
                notes_.push_back(value.src.describe() + ": " + path + ": not a genesis-launch key; carried, not used");
            }
        }
    }

    std::vector<fs::path> read_programs(const node& value) const {
        std::vector<fs::path> out;
        std::error_code ec;
        if (value.is_null()) return out;
        if (config::is_missing_value(value)) read_.fail(value, "programs", "mandatory value ??? is not set");
        if (value.is_sequence()) {
            // An empty list (a pattern that matched nothing) would silently fall back to
            // evo_config.init_program_path: refused, as an empty folder is.
            if (value.items.empty())
                read_.fail(value, "programs",
                           "the list is empty (a pattern that matched no file?): nothing to evaluate; "
                           "give at least one program, or leave programs unset to evaluate "
                           "evo_config.init_program_path");
            if (value.items.size() > config::max_programs)
                read_.fail(value, "programs", "more than " + std::to_string(config::max_programs) +
                                                  " programs in one run; split the batch");
            for (std::size_t i = 0; i < value.items.size(); ++i) {
                const node& item = value.items[i];
                const std::string key = "programs." + std::to_string(i);
                const fs::path path = read_.path_of(item, key);
                if (fs::is_directory(path, ec))
                    read_.fail(item, key, "'" + item.text + "' is a folder; list files, or give the folder as programs=DIR");
                if (auto problem = config::program_file_problem(path)) read_.fail(item, key, "'" + item.text + "' " + *problem);
                out.push_back(path);
            }
            return out;
        }
        if (!value.is_scalar())
            read_.fail(value, "programs", "expected a list of files or a folder, got " + config::describe_value(value));
        const fs::path path = read_.path_of(value, "programs");
        if (fs::is_directory(path, ec)) {
            for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
                const fs::path& file = it->path();
                if (file.filename().string().starts_with(".") || file.extension() != ".py") continue;
                std::error_code type_ec;
                if (it->is_directory(type_ec)) continue;  // a folder named x.py is not a program
                // Named pipes, sockets, devices, broken links and unreadable files are
                // reported, never opened (a pipe would block the run).
                if (auto problem = config::program_file_problem(file))
                    read_.fail(value, "programs", "'" + ctx_.display(file) + "' in folder '" + value.text + "' " + *problem);
                out.push_back(file);
                if (out.size() > config::max_programs)
                    read_.fail(value, "programs", "folder '" + value.text + "' has more than " +
                                                      std::to_string(config::max_programs) +
                                                      " .py files; split it into several runs");
            }
            if (ec) read_.fail(value, "programs", "cannot list '" + value.text + "': " + ec.message());
            std::sort(out.begin(), out.end(),
                      [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
            if (out.empty()) read_.fail(value, "programs", "folder '" + value.text + "' has no .py files");
            return out;
        }
        if (auto problem = config::program_file_problem(path)) read_.fail(value, "programs", "'" + value.text + "' " + *problem);
        out.push_back(path);
        return out;
    }

    const context& ctx_;
    std::vector<std::string>& notes_;
    config::reader read_;
};

// ---- stage 5: credentials ----------------------------------------------------------

// python-dotenv's find_dotenv from the working folder: it, then each parent.
std::optional<fs::path> find_dotenv(const fs::path& start) {
    std::error_code ec;
    for (fs::path dir = start;; dir = dir.parent_path()) {
        const fs::path candidate = dir / ".env";
        if (fs::is_regular_file(candidate, ec)) return candidate;
        if (dir == dir.parent_path() || dir.empty()) return std::nullopt;
    }
}

// `s` without leading and trailing ASCII white space (a .env saved with CRLF line
// ends, `KEY="value "`), as the official SDKs effectively read keys.
std::string trim_ascii(std::string_view s) {
    auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
    while (!s.empty() && blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && blank(s.back())) s.remove_suffix(1);
    return std::string(s);
}

void fill_credentials(const context& ctx, const node& tree, loaded_config& out) {
    e2b_params& e2b = out.launcher.e2b;
    std::optional<std::map<std::string, std::string>> dotenv;
    std::string origin;  // where the last value found came from (never the value)
    // Environment first, then the nearest .env; empty values count as unset.
    auto lookup = [&](const std::string& name) -> std::optional<std::string> {
        if (auto value = ctx.env(name); value && !trim_ascii(*value).empty()) {
            origin = "from the environment";
            return value;
        }
        if (!dotenv) {
            dotenv.emplace();
            if (auto file = find_dotenv(ctx.working_dir)) {
                std::ifstream in(*file, std::ios::binary);
                std::string text(config::max_dotenv_bytes + 1, '\0');
                in.read(text.data(), static_cast<std::streamsize>(text.size()));
                text.resize(static_cast<std::size_t>(in.gcount()));
                if (text.size() > config::max_dotenv_bytes)
                    throw config_failure(ctx.display(*file) + ": a .env file larger than " +
                                         std::to_string(config::max_dotenv_bytes / 1024) + " KiB is not read");
                *dotenv = parse_dotenv(text);
                out.dotenv_file = *file;
            }
        }
        if (auto it = dotenv->find(name); it != dotenv->end() && !trim_ascii(it->second).empty()) {
            out.notes.push_back(name + " read from " + out.dotenv_file->string());
            origin = "from " + ctx.display(*out.dotenv_file);
            return it->second;
        }
        return std::nullopt;
    };
    if (auto key = lookup("E2B_API_KEY")) {
        std::string trimmed = trim_ascii(*key);
        if (trimmed.size() != key->size())
            out.notes.push_back("E2B_API_KEY (" + origin + "): white space around the key removed");
        // Never shown: only what is wrong with it.
        if (std::any_of(trimmed.begin(), trimmed.end(), [](char c) {
                return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f;
            }))
            throw config_failure("E2B_API_KEY (" + origin +
                                 ") contains white space, a control character or a non-ASCII byte inside the key "
                                 "(the key is not shown); copy it again from the E2B dashboard");
        e2b.api_key = std::move(trimmed);
    }
    const node* job = tree.find("job_config");
    const std::array<std::pair<const char*, std::string*>, 3> endpoints{{
        {"api_url", &e2b.api_url}, {"sandbox_url", &e2b.sandbox_url}, {"domain", &e2b.domain}}};
    for (const auto& [name, field] : endpoints) {
        if (job && job->is_map()) {
            const node* set = job->find(name);
            if (set && !set->is_null()) continue;
        }
        std::string variable = std::string("E2B_") + name;
        std::transform(variable.begin(), variable.end(), variable.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        if (auto value = lookup(variable)) *field = trim_ascii(*value);
    }
}

// ---- the whole load ------------------------------------------------------------------

loaded_config load(const load_options& options) {
    context ctx;
    std::error_code ec;
    // A relative working_dir is taken from the current folder; a relative config_dir
    // too (it is a command-line path, not a path inside the configuration).
    ctx.working_dir = (options.working_dir.empty() ? fs::current_path() : fs::absolute(options.working_dir))
                          .lexically_normal();
    ctx.config_dir = fs::absolute(options.config_dir).lexically_normal();
    ctx.getenv = options.getenv;

    if (!fs::is_directory(ctx.config_dir, ec)) throw config_failure(ctx.display(ctx.config_dir) + ": config folder not found");
    const fs::path primary_path = ctx.config_dir / "config.yaml";
    if (!fs::is_regular_file(primary_path, ec)) throw config_failure(ctx.display(primary_path) + ": file not found");

    // Overrides: group choices now, value overrides after composing.
    const auto groups = list_config_groups(ctx.config_dir);
    auto is_group = [&](std::string_view name) { return groups.count(std::string(name)) > 0; };
    std::vector<config::override_spec> overrides;
    for (const auto& text : options.overrides) overrides.push_back(config::parse_override(text, is_group));

    // Stage 1.
    std::vector<config::command_line_choice> choices;
    for (const auto& spec : overrides) {
        if (spec.op != config::override_op::select_group && spec.op != config::override_op::remove_group) continue;
        auto it = std::find_if(choices.begin(), choices.end(), [&](const auto& c) { return c.group == spec.key; });
        config::command_line_choice choice{spec.key, spec.group_option, spec.group_package, spec.src()};
        if (it == choices.end()) choices.push_back(std::move(choice));
        else *it = std::move(choice);  // the last one wins
    }
    config::composition composed =
        config::compose(ctx.config_dir, [&ctx](const fs::path& p) { return ctx.display(p); }, choices);
    node tree = std::move(composed.tree);

    // Stage 2.
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
                                      join(group_names) + ") nor a key of the config (use +" + spec.key +
                                      "=... to add a key)";
                if (auto match = config::closest_match(spec.key, names)) message += "; did you mean '" + *match + "'?";
                throw config_failure(message);
            }
        }
        config::apply_override(tree, spec, schema_children);
    }

    loaded_config result;
    {
        node unresolved = tree;
        unresolved.erase("hydra");
        result.unresolved_tree = config::to_json(unresolved).as_object();
    }

    // Stage 3.
    config::interpolation_context interpolation;
    interpolation.working_dir = ctx.working_dir;
    interpolation.getenv = ctx.getenv;
    interpolation.strict = launcher_path;
    result.notes = config::resolve_interpolations(tree, interpolation);

    // Stage 4.
    launcher_reader(ctx, result.notes).read(tree, result);
    if (auto problem = config::validate_values(result.launcher)) {
        const node* at = find_path(tree, problem->first);
        throw config_failure((at ? at->src.describe() + ": " : std::string()) + problem->first + ": " + problem->second);
    }

    // Stage 5 (the key goes into launcher_config only, never into the tree).
    fill_credentials(ctx, tree, result);

    result.tree = config::to_json(tree).as_object();
    result.sources = std::move(composed.sources);
    result.choices = std::move(composed.choices);
    if (auto it = result.choices.find("cluster"); it != result.choices.end()) result.cluster = it->second;
    if (auto it = result.choices.find("variant"); it != result.choices.end()) result.variant = it->second;
    return result;
}

// ---- .hydra/config.yaml -----------------------------------------------------------

void emit(YAML::Emitter& out, const boost::json::value& value) {
    switch (value.kind()) {
    case boost::json::kind::object:
        out << YAML::BeginMap;
        for (const auto& [key, item] : value.get_object()) {
            out << YAML::Key << std::string(key) << YAML::Value;
            emit(out, item);
        }
        out << YAML::EndMap;
        break;
    case boost::json::kind::array:
        out << YAML::BeginSeq;
        for (const auto& item : value.get_array()) emit(out, item);
        out << YAML::EndSeq;
        break;
    case boost::json::kind::string: {
        // Plain only when no YAML 1.1 reader (PyYAML, under OmegaConf) could take it for
        // anything else: `00:10:00` is a number there, `yes` a bool.
        const std::string text(value.get_string());
        std::string lower = text;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        static const std::set<std::string> words = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"};
        const bool plain = !text.empty() && !words.count(lower) &&
                           (std::isalpha(static_cast<unsigned char>(text[0])) || text[0] == '_' || text[0] == '/') &&
                           std::all_of(text.begin(), text.end(), [](unsigned char c) {
                               return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '/';
                           });
        if (!plain && text != "???") out << YAML::DoubleQuoted;
        out << text;
        break;
    }
    case boost::json::kind::bool_: out << value.get_bool(); break;
    case boost::json::kind::int64: out << value.get_int64(); break;
    case boost::json::kind::uint64: out << value.get_uint64(); break;
    case boost::json::kind::double_: {
        // A float stays a float when read back: 10.0, not 10.
        const double d = value.get_double();
        std::string text;
        if (std::isnan(d)) text = ".nan";
        else if (std::isinf(d)) text = d > 0 ? ".inf" : "-.inf";
        else {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.17g", d);
            text = buf;
            if (text.find_first_of(".e") == std::string::npos) text += ".0";
        }
        out << text;
        break;
    }
    case boost::json::kind::null: out << YAML::Null; break;
    }
}

}  // namespace

void validate(const launcher_config& cfg, boost::system::error_code& ec, diagnostics& diag) {
    ec.clear();
    diag.clear();
    if (auto problem = config::validate_values(cfg)) {
        ec = make_error_code(errc::config_error);
        diag.client_message = problem->first + ": " + problem->second;
    }
}

std::string config_key_reference() { return config::key_reference_markdown(); }

std::map<std::string, std::string> numeric_thread_variables(int n) {
    const std::string count = std::to_string(std::max(1, n));
    std::map<std::string, std::string> out;
    for (const char* name : {"OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                             "NUMEXPR_NUM_THREADS", "NUMEXPR_MAX_THREADS", "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS",
                             "GOTO_NUM_THREADS"})
        out[name] = count;
    out["OMP_DYNAMIC"] = "FALSE";
    out["OMP_WAIT_POLICY"] = "PASSIVE";
    out["MKL_DYNAMIC"] = "FALSE";
    return out;
}

void write_hydra_config(const loaded_config& loaded, const fs::path& dir, boost::system::error_code& ec,
                        diagnostics& diag) {
    ec.clear();
    diag.clear();
    YAML::Emitter out;
    emit(out, loaded.unresolved_tree);
    const fs::path folder = dir / ".hydra";
    std::error_code fs_ec;
    fs::create_directories(folder, fs_ec);
    const fs::path file = folder / "config.yaml";
    std::ofstream stream(file, std::ios::binary | std::ios::trunc);
    if (!fs_ec && stream) stream << out.c_str() << "\n";
    if (fs_ec || !stream) {
        ec = make_error_code(errc::io_error);
        diag.client_message = "cannot write " + file.string() + (fs_ec ? ": " + fs_ec.message() : std::string());
    }
}

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
