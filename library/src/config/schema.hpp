// schema.hpp - the launcher's keys, in one table (internal).
//
// Every key the launcher reads is one row: its dotted path, its type and default
// (for the reference), one line of meaning, and a setter that turns a YAML node into
// the launcher_config field. The same table drives:
//   - the loader (which keys are read, and how),
//   - command-line overrides (which keys `a.b=VALUE` may set without `+`),
//   - typo detection (a near-miss of a row is an error with a suggestion),
//   - the key reference in docs/configuration.md (config_key_reference()).
// Range and cross-field checks live in validate_values(), which make_launcher runs too.
//
// Keys that are not rows are the engine's (Genesis / ShinkaEvolve settings, database,
// LLM, Slurm fields, ...): carried in the tree and never rejected.
#pragma once

#include "config/yaml_tree.hpp"
#include "genesis/launch/config.hpp"
#include "genesis/launch/job.hpp"

#include <chrono>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace genesis::launch::config {

constexpr int max_parallel_jobs_limit = 100000;
constexpr int max_retries_limit = 100;
// Programs in one batch (a list, or the .py files of programs=DIR).
constexpr std::size_t max_programs = 100000;
// A .env file is read whole: credentials, not data.
constexpr std::size_t max_dotenv_bytes = 1024 * 1024;
// The longest an E2B sandbox lives (Pro plan; the Hobby plan allows 1 h). The
// lifetime asked for is install_timeout (with dependencies) + timeout + this margin
// (see e2b_params in config.hpp and sandbox_lifetime in e2b/e2b_backend.cpp).
constexpr std::chrono::seconds max_sandbox_lifetime{24 * 3600};
constexpr std::chrono::seconds sandbox_lifetime_margin{120};

// Typed reads from nodes. Every failure is a config_failure naming the node's
// file:line (or override) and the key.
class reader {
public:
    using resolve_fn = std::function<std::filesystem::path(const std::string&)>;
    explicit reader(resolve_fn resolve) : resolve_(std::move(resolve)) {}

    [[noreturn]] void fail(const node& at, const std::string& key, const std::string& message) const;

    void expect_map(const node& n, const std::string& key) const;
    std::string string_of(const node& n, const std::string& key) const;
    std::optional<std::string> optional_string_of(const node& n, const std::string& key) const;
    std::filesystem::path path_of(const node& n, const std::string& key) const;
    std::int64_t integer_of(const node& n, const std::string& key) const;
    std::optional<std::int64_t> optional_integer_of(const node& n, const std::string& key) const;
    std::optional<double> number_if(const node& n) const;
    double number_of(const node& n, const std::string& key) const;
    bool bool_of(const node& n, const std::string& key) const;
    std::chrono::milliseconds duration_of(const node& n, const std::string& key) const;
    std::vector<std::string> strings_of(const node& n, const std::string& key) const;

private:
    resolve_fn resolve_;
};

// One launcher key.
struct launcher_key {
    const char* path;          // "job_config.time"
    const char* section;       // heading in the reference
    const char* type;          // for the reference (markdown)
    const char* default_text;  // for the reference (markdown)
    const char* meaning;       // for the reference (markdown, one line)
    void (*set)(const reader&, const node& value, const std::string& key, launcher_config& out);
    // Entries of this map are free-form (variable names, flags, sandbox paths).
    bool free_form_map = false;
};

const std::vector<launcher_key>& launcher_keys();
const launcher_key* find_launcher_key(std::string_view path);

// Keys of Genesis's and ShinkaEvolve's job configs (Slurm, Docker) that mean nothing
// to this launcher: carried, and ignored with one debug note.
struct ignored_key {
    const char* name;  // under job_config
    const char* why;
};
const std::vector<ignored_key>& ignored_job_keys();

// Known engine keys next to launcher keys: never mistaken for near-misses.
const std::vector<std::string>& known_engine_keys(std::string_view parent);

// The launcher key `name` under `parent` ("", "evo_config", "job_config") most likely
// misspells, if any: a small edit distance, and `name` not a known engine key.
std::optional<std::string> near_miss(std::string_view parent, std::string_view name);

// Names of the launcher's keys directly under `parent` (for overrides and suggestions).
std::vector<std::string> launcher_children(std::string_view parent);

// The first value that breaks a rule: {key, message}; nullopt when all is well.
std::optional<std::pair<std::string, std::string>> validate_values(const launcher_config& cfg);

// ---- rules shared by the loader, validate() and check_inputs() ----------------------

// `text` with control characters and bytes >= 0x7f written as \xNN (for messages).
std::string printable(std::string_view text);

// Why `path` cannot be a candidate program ("does not exist", "is a broken symbolic
// link", "is not a regular file (a named pipe)", "cannot be read: ..."); nullopt when
// it is a readable regular file. Never opens the file.
std::optional<std::string> program_file_problem(const std::filesystem::path& path);

// Why an extra_cmd_args / job_spec::extra_args key cannot be passed as `--key`: the
// contract's own flags (--program_path, --results_dir), also as an argparse
// abbreviation (`--results`) or with `=value`, and an empty name.
std::optional<std::string> extra_arg_problem(std::string_view key);
// Why a string value cannot follow `--key`: argparse would read `--results=x` or
// `--program_path` as an option of its own (after a flag that takes no value).
std::optional<std::string> extra_arg_value_problem(std::string_view value);

// Why `name` cannot be an environment variable name (empty, '=', NUL, control
// characters), or `value` a value (NUL).
std::optional<std::string> env_name_problem(std::string_view name);
std::optional<std::string> env_value_problem(std::string_view value);

// An additional_files sandbox path: the absolute target (relative paths are under
// /home/user; the E2B backend uploads to this target), or why it is
// refused (outside /home/user and /tmp, `..`, a folder, or a path the launcher
// itself writes: /home/user/evaluate.py, /home/user/results/...).
struct sandbox_path_check {
    std::string target;
    std::optional<std::string> problem;
};
sandbox_path_check check_sandbox_path(std::string_view configured);

// The sandbox lifetime the E2B backend asks for with this evaluation limit, and why
// it is refused (above max_sandbox_lifetime); `timeout_key` names the limit's key.
std::optional<std::string> sandbox_lifetime_problem(const e2b_params& e, std::chrono::milliseconds evaluation,
                                                    std::string_view timeout_key);

// The first problem of one job_spec against its configuration: "<key>: <message>".
std::optional<std::string> job_spec_problem(const launcher_config& cfg, const job_spec& job);

// The key reference (markdown), generated from the table.
std::string key_reference_markdown();

}  // namespace genesis::launch::config
