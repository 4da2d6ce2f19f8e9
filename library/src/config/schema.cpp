// schema.cpp - the launcher keys table, typed readers, validation and the reference.
#include "config/schema.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include <unistd.h>

namespace genesis::launch::config {

namespace fs = std::filesystem;

namespace {

const std::string lifetime_limits =
    "the longest an E2B sandbox lives (1 h on the Hobby plan, 24 h on Pro)";

// A node typed the way OmegaConf converts strings for typed fields ("3" for an int).
node typed(const node& n) {
    if (n.kind == node_kind::string) return scalar_from_plain_text(trim(n.text), n.src);
    return n;
}

}  // namespace

// ---- reader ------------------------------------------------------------------------

void reader::fail(const node& at, const std::string& key, const std::string& message) const {
    throw config_failure(at.src.describe() + ": " + key + ": " + message);
}

void reader::expect_map(const node& n, const std::string& key) const {
    if (!n.is_map()) fail(n, key, "expected a map, got " + describe_value(n));
}

// Strings; numbers and booleans are taken as written (as OmegaConf does for str fields).
std::string reader::string_of(const node& n, const std::string& key) const {
    if (n.is_null() || !n.is_scalar()) fail(n, key, "expected a string, got " + describe_value(n));
    return n.text;
}

std::optional<std::string> reader::optional_string_of(const node& n, const std::string& key) const {
    if (n.is_null()) return std::nullopt;
    return string_of(n, key);
}

fs::path reader::path_of(const node& n, const std::string& key) const {
    const std::string text = string_of(n, key);
    if (text.empty()) fail(n, key, "expected a path, got \"\"");
    return resolve_(text);
}

std::int64_t reader::integer_of(const node& n, const std::string& key) const {
    const node t = typed(n);
    if (t.kind != node_kind::integer) fail(n, key, "expected an integer, got " + describe_value(n));
    return t.int_value;
}

std::optional<std::int64_t> reader::optional_integer_of(const node& n, const std::string& key) const {
    if (n.is_null()) return std::nullopt;
    return integer_of(n, key);
}

std::optional<double> reader::number_if(const node& n) const {
    const node t = typed(n);
    if (t.kind == node_kind::integer) return static_cast<double>(t.int_value);
    if (t.kind == node_kind::floating && std::isfinite(t.float_value)) return t.float_value;
    return std::nullopt;
}

double reader::number_of(const node& n, const std::string& key) const {
    const auto value = number_if(n);
    if (!value) fail(n, key, "expected a number, got " + describe_value(n));
    return *value;
}

// true/false (also the strings "true"/"false", as OmegaConf converts them for bool fields).
bool reader::bool_of(const node& n, const std::string& key) const {
    const node t = typed(n);
    if (t.kind == node_kind::boolean) return t.bool_value;
    fail(n, key, "expected true or false, got " + describe_value(n));
}

// hh:mm:ss, mm:ss or a number of seconds; never negative.
std::chrono::milliseconds reader::duration_of(const node& n, const std::string& key) const {
    std::optional<std::chrono::milliseconds> value;
    if (n.kind == node_kind::string) {
        value = parse_duration(n.text);
    } else if (n.kind == node_kind::integer || n.kind == node_kind::floating) {
        if (auto seconds = number_if(n); seconds && *seconds >= 0 && *seconds < 1e12)
            value = std::chrono::milliseconds(std::llround(*seconds * 1000.0));
    }
    if (!value) fail(n, key, "expected hh:mm:ss or a number of seconds, got " + describe_value(n));
    return *value;
}

std::vector<std::string> reader::strings_of(const node& n, const std::string& key) const {
    std::vector<std::string> out;
    if (n.is_null()) return out;
    if (!n.is_sequence()) fail(n, key, "expected a list of strings, got " + describe_value(n));
    for (std::size_t i = 0; i < n.items.size(); ++i) out.push_back(string_of(n.items[i], key + "." + std::to_string(i)));
    return out;
}

// ---- the table ---------------------------------------------------------------------

namespace {

using R = const reader&;
using N = const node&;
using K = const std::string&;
using C = launcher_config&;

std::optional<std::uint64_t> optional_count(R r, N v, K k) {
    const auto n = r.optional_integer_of(v, k);
    if (!n) return std::nullopt;
    if (*n < 1) r.fail(v, k, "expected an integer >= 1, got " + v.text);
    return static_cast<std::uint64_t>(*n);
}

std::optional<int> optional_int(R r, N v, K k) {
    const auto n = r.optional_integer_of(v, k);
    if (!n) return std::nullopt;
    if (*n > std::numeric_limits<int>::max() || *n < std::numeric_limits<int>::min())
        r.fail(v, k, "value too large: " + v.text);
    return static_cast<int>(*n);
}

// An integer in [-1, maximum]; above it, the message validate_values() gives.
int bounded_int(R r, N v, K k, std::int64_t maximum) {
    const auto n = r.integer_of(v, k);
    if (n > maximum) r.fail(v, k, "expected at most " + std::to_string(maximum) + ", got " + v.text);
    return static_cast<int>(std::max<std::int64_t>(n, -1));
}

std::chrono::seconds whole_seconds(std::chrono::milliseconds ms) {
    return std::chrono::seconds((ms.count() + 999) / 1000);
}

const char* const top = "Top level";
const char* const evo = "evo_config";
const char* const both = "job_config (both backends)";
const char* const local = "job_config (local)";
const char* const e2b = "job_config (E2B)";

const std::vector<launcher_key> table = {
    // ---- top level
    {"results_dir", top, "path", "`results`",
     "fallback for `evo_config.results_dir`",
     [](R r, N v, K k, C c) { if (!v.is_null()) c.results_dir = r.path_of(v, k); }},
    {"max_evaluation_jobs", top, "integer ≥ 1", "—",
     "ShinkaEvolve's name for `evo_config.max_parallel_jobs`, used when that key is not set",
     [](R r, N v, K k, C c) {
         if (!v.is_null()) c.max_parallel_jobs = bounded_int(r, v, k, max_parallel_jobs_limit);
     }},
    {"programs", top, "list of files, a folder, or a file", "—",
     "batch mode: evaluate these programs instead of `evo_config.init_program_path` (a folder: every `*.py` in it, sorted, hidden files skipped); an empty list, a folder without programs, or more than 100000 programs is an error",
     nullptr},

    // ---- evo_config
    {"evo_config.job_type", evo, "`local` \\| `e2b`", "`local`",
     "backend; Genesis's Slurm types (`slurm_conda`, `slurm_docker`, `slurm_env`) are refused",
     nullptr},  // read by the loader itself (it decides how other keys are read)
    {"evo_config.max_parallel_jobs", evo, "integer ≥ 1", "2 (10 in `cluster/e2b.yaml`)",
     "jobs running at once; more queue",
     [](R r, N v, K k, C c) {
         c.max_parallel_jobs = bounded_int(r, v, k, max_parallel_jobs_limit);
     }},
    {"evo_config.init_program_path", evo, "path", "`initial.py`",
     "the program a single CLI run evaluates; a `_target_` node (built by the engine) needs `programs=`",
     nullptr},  // read by the loader itself (a `_target_` node is the engine's)
    {"evo_config.results_dir", evo, "path", "`results`",
     "parent folder of every run's results folder",
     [](R r, N v, K k, C c) { if (!v.is_null()) c.results_dir = r.path_of(v, k); }},

    // ---- job_config, both backends
    {"job_config.eval_program_path", both, "path", "`evaluate.py`", "the evaluator",
     [](R r, N v, K k, C c) { c.eval_program_path = r.path_of(v, k); }},
    {"job_config.extra_cmd_args", both, "map", "`{}`",
     "`--key value` per entry; `true` adds `--key`, `false`/`null` nothing; `program_path`, `results_dir` and their argparse abbreviations (`results`, `program_p`, ...) are refused",
     [](R r, N v, K k, C c) {
         c.extra_cmd_args.clear();
         if (v.is_null()) return;
         r.expect_map(v, k);
         for (const auto& [name, value] : v.entries) {
             if (auto why = extra_arg_problem(name)) r.fail(value, k + "." + printable(name), *why);
             if (value.kind == node_kind::string)
                 if (auto why = extra_arg_value_problem(value.text)) r.fail(value, k + "." + printable(name), *why);
         }
         c.extra_cmd_args = to_json(v).as_object();
     },
     true},
    {"job_config.env_vars", both, "map of scalars", "`{}`",
     "environment variables for the evaluator; a name that is empty or contains `=`, NUL or a control character, or a value with NUL, is refused",
     [](R r, N v, K k, C c) {
         c.env_vars.clear();
         if (v.is_null()) return;
         r.expect_map(v, k);
         for (const auto& [name, text] : v.entries) {
             if (auto why = env_name_problem(name)) r.fail(text, k + "." + printable(name), *why);
             if (text.is_null() || !text.is_scalar())
                 r.fail(text, k + "." + name, "expected a string, got " + describe_value(text));
             if (auto why = env_value_problem(text.text)) r.fail(text, k + "." + name, *why);
             c.env_vars[name] = text.text;
         }
     },
     true},
    {"job_config.numeric_threads_per_job", both, "integer ≥ 1 or `null`", "`null`",
     "(ShinkaEvolve) caps numeric libraries' threads: sets `OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS`, `MKL_NUM_THREADS` and the other thread variables ShinkaEvolve sets; `env_vars` win",
     [](R r, N v, K k, C c) { c.numeric_threads_per_job = optional_int(r, v, k); }},
    {"job_config.eval_verbose", both, "bool or `null`", "`null`",
     "(ShinkaEvolve) sets `SHINKA_EVAL_VERBOSE` to `1` or `0` for the evaluator; `null` leaves it unset",
     [](R r, N v, K k, C c) {
         if (v.is_null()) c.eval_verbose.reset();
         else c.eval_verbose = r.bool_of(v, k);
     }},
    {"job_config.kill_grace", both, "seconds or `hh:mm:ss`", "3", "SIGTERM → SIGKILL grace period",
     [](R r, N v, K k, C c) { c.kill_grace = r.duration_of(v, k); }},
    {"job_config.output_capture_bytes", both, "integer > 0", "262144",
     "bytes of stdout and of stderr kept in memory (head + tail)",
     [](R r, N v, K k, C c) {
         const auto n = r.integer_of(v, k);
         if (n < 1) r.fail(v, k, "expected an integer >= 1, got " + v.text);
         c.output_capture_bytes = static_cast<std::size_t>(n);
     }},

    // ---- local
    {"job_config.python", local, "command or path", "`python3`",
     "interpreter; a command is looked up on the job's `PATH` once per launcher (and `PATH` value)",
     [](R r, N v, K k, C c) { c.local.python = r.string_of(v, k); }},
    {"job_config.python_executable", local, "command, path or `null`", "`null`",
     "(ShinkaEvolve) the same as `python`; `null` keeps `python`",
     [](R r, N v, K k, C c) {
         if (auto text = r.optional_string_of(v, k); text && !trim(*text).empty()) c.local.python = trim(*text);
     }},
    {"job_config.time", local, "`hh:mm:ss`, `mm:ss`, seconds, or `null`", "`null`", "per-job time limit",
     [](R r, N v, K k, C c) {
         if (v.is_null()) c.local.time.reset();
         else c.local.time = r.duration_of(v, k);
     }},
    {"job_config.conda_env", local, "string or `null`", "`null`",
     "run under `conda run -n <env> --no-capture-output`",
     [](R r, N v, K k, C c) {
         auto text = r.optional_string_of(v, k);
         // ShinkaEvolve counts a blank name as unset.
         c.local.conda_env = text && !trim(*text).empty() ? std::optional<std::string>(trim(*text)) : std::nullopt;
     }},
    {"job_config.activate_script", local, "path or `null`", "`null`",
     "(ShinkaEvolve) run as `bash -lc 'set -e; source SCRIPT; exec …'`: the interpreter is then `python` looked up after the script ran; excludes `conda_env`",
     [](R r, N v, K k, C c) {
         auto text = r.optional_string_of(v, k);
         c.local.activate_script =
             text && !trim(*text).empty() ? std::optional<std::string>(r.path_of(v, k).string()) : std::nullopt;
     }},
    {"job_config.memory_mb", local, "integer ≥ 1 or `null`", "`null`",
     "address space per process in MiB (`RLIMIT_AS`); with `job_type: e2b`, the sandbox's size (cost estimate only)",
     [](R r, N v, K k, C c) {
         if (c.type == job_type::e2b) {
             c.e2b.memory_mb = optional_int(r, v, k);
             c.local.memory_mb.reset();
         } else {
             c.local.memory_mb = optional_count(r, v, k);
         }
     }},
    {"job_config.cpu_seconds", local, "seconds, `hh:mm:ss` or `null`", "`null`",
     "CPU time per process (`RLIMIT_CPU`, rounded up to whole seconds); SIGXCPU ends the job as `timeout`",
     [](R r, N v, K k, C c) {
         if (v.is_null()) c.local.cpu_seconds.reset();
         else c.local.cpu_seconds = whole_seconds(r.duration_of(v, k));
     }},
    {"job_config.max_file_mb", local, "integer ≥ 1 or `null`", "`null`",
     "largest file a process may write (`RLIMIT_FSIZE`)",
     [](R r, N v, K k, C c) { c.local.max_file_mb = optional_count(r, v, k); }},
    {"job_config.max_processes", local, "integer ≥ 1 or `null`", "`null`",
     "processes and threads of the whole job at once (pids cgroup, `pids.max`)",
     [](R r, N v, K k, C c) { c.local.max_processes = optional_count(r, v, k); }},
    {"job_config.max_open_files", local, "integer ≥ 1 or `null`", "`null`",
     "open descriptors per process (`RLIMIT_NOFILE`)",
     [](R r, N v, K k, C c) { c.local.max_open_files = optional_count(r, v, k); }},
    {"job_config.core_dumps", local, "bool", "`false`", "`false` sets the soft `RLIMIT_CORE` to 0",
     [](R r, N v, K k, C c) { c.local.core_dumps = r.bool_of(v, k); }},
    {"job_config.log_limit_mb", local, "integer ≥ 1 or `null`", "`null`",
     "bytes written to `job_log.out` and to `job_log.err`, each; past it one mark line ends the file",
     [](R r, N v, K k, C c) { c.local.log_limit_mb = optional_count(r, v, k); }},
    {"job_config.private_tmp", local, "bool", "`true`", "a fresh `TMPDIR` (also `TMP`, `TEMP`) per job, removed afterwards",
     [](R r, N v, K k, C c) { c.local.private_tmp = r.bool_of(v, k); }},
    {"job_config.kill_escaped", local, "bool", "`true`",
     "when the job ends, SIGKILL every process carrying its marker, even one that left the process group",
     [](R r, N v, K k, C c) { c.local.kill_escaped = r.bool_of(v, k); }},
    {"job_config.kill_on_parent_exit", local, "bool", "`true`",
     "the evaluator gets SIGKILL when the thread that started it exits",
     [](R r, N v, K k, C c) { c.local.kill_on_parent_exit = r.bool_of(v, k); }},
    {"job_config.network", local, "bool", "`true`", "`false`: own network namespace with only loopback",
     [](R r, N v, K k, C c) { c.local.network = r.bool_of(v, k); }},
    {"job_config.isolation", local, "`none` or `bwrap`", "`none`",
     "`bwrap`: bubblewrap (read-only system, no network, private `/tmp`)",
     [](R r, N v, K k, C c) {
         const std::string mode = v.is_null() ? std::string("none") : r.string_of(v, k);
         if (mode == "none") c.local.isolation = local_isolation::none;
         else if (mode == "bwrap") c.local.isolation = local_isolation::bwrap;
         else r.fail(v, k, "expected none or bwrap, got " + describe_value(v));
     }},

    // ---- E2B
    {"job_config.template", e2b, "string", "`base`", "sandbox template",
     [](R r, N v, K k, C c) { c.e2b.template_id = r.string_of(v, k); }},
    {"job_config.timeout", e2b, "seconds > 0", "300",
     "evaluation time limit (the sandbox lives `install_timeout` + `timeout` + 120 s, at most 24 h)",
     [](R r, N v, K k, C c) {
         const auto seconds = r.number_if(v);
         if (!seconds || *seconds <= 0 || *seconds > 1e9)
             r.fail(v, k, "expected a positive number of seconds, got " + describe_value(v));
         c.e2b.timeout = std::chrono::seconds(static_cast<std::int64_t>(std::ceil(*seconds)));
     }},
    {"job_config.dependencies", e2b, "list of strings", "`[numpy]` in `cluster/e2b.yaml`",
     "pip packages installed first, one `pip install` per job",
     [](R r, N v, K k, C c) { c.e2b.dependencies = r.strings_of(v, k); }},
    {"job_config.install_timeout", e2b, "seconds or `hh:mm:ss`", "600", "time limit of the `pip install` (at most 24 h)",
     [](R r, N v, K k, C c) { c.e2b.install_timeout = whole_seconds(r.duration_of(v, k)); }},
    {"job_config.additional_files", e2b, "map sandbox path → local path", "`{}`",
     "extra uploads; sandbox paths under `/home/user` (relative ones too) or `/tmp`, without `..`, not `/home/user/evaluate.py` nor in `/home/user/results`",
     [](R r, N v, K k, C c) {
         c.e2b.additional_files.clear();
         if (v.is_null()) return;
         r.expect_map(v, k);
         std::map<std::string, std::string> targets;  // sandbox target -> the key that named it
         for (const auto& [sandbox_path, local_path] : v.entries) {
             const std::string key = k + "." + printable(sandbox_path);
             if (c.type == job_type::e2b) {  // (the local backend does not read it)
                 const sandbox_path_check check = check_sandbox_path(sandbox_path);
                 if (check.problem) r.fail(local_path, key, *check.problem);
                 if (auto [it, fresh] = targets.emplace(check.target, key); !fresh)
                     r.fail(local_path, key, "the same sandbox file (" + check.target + ") as " + it->second);
             }
             c.e2b.additional_files[sandbox_path] = r.path_of(local_path, key).string();
         }
     },
     true},
    {"job_config.cpus", e2b, "integer ≥ 1 or `null`", "`null`", "the template's vCPUs, for the cost estimate",
     [](R r, N v, K k, C c) { c.e2b.cpus = optional_int(r, v, k); }},
    {"job_config.create_rate", e2b, "number > 0", "1.0", "sandbox creations per second per launcher",
     [](R r, N v, K k, C c) { c.e2b.create_rate = r.number_of(v, k); }},
    {"job_config.max_retries", e2b, "integer 1–100", "5",
     "attempts per request for transient failures (and at most 120 s of retrying per request)",
     [](R r, N v, K k, C c) { c.e2b.max_retries = bounded_int(r, v, k, max_retries_limit); }},
    {"job_config.retry_vanished", e2b, "bool", "`true`",
     "retry a job whose sandbox vanishes or whose command stream breaks on a new sandbox (up to 3 per job)",
     [](R r, N v, K k, C c) { c.e2b.retry_vanished = r.bool_of(v, k); }},
    {"job_config.ca_file", e2b, "path", "`\"\"`", "extra trusted CA (PEM)",
     [](R r, N v, K k, C c) {
         const auto text = r.optional_string_of(v, k);
         c.e2b.ca_file = text && !text->empty() ? r.path_of(v, k).string() : std::string();
     }},
    {"job_config.tls_verify", e2b, "bool", "`true`", "certificate and host-name checks",
     [](R r, N v, K k, C c) { c.e2b.tls_verify = r.bool_of(v, k); }},
    {"job_config.cost_per_cpu_second", e2b, "number ≥ 0", "0.000014", "USD per vCPU-second, for the cost estimate",
     [](R r, N v, K k, C c) { c.e2b.cost_per_cpu_second = r.number_of(v, k); }},
    {"job_config.cost_per_gib_second", e2b, "number ≥ 0", "0.0000045", "USD per GiB-second, for the cost estimate",
     [](R r, N v, K k, C c) { c.e2b.cost_per_gib_second = r.number_of(v, k); }},
    {"job_config.run_tag", e2b, "string", "`\"\"` (random)", "tag of this run's sandboxes (`genesis_run`)",
     [](R r, N v, K k, C c) { c.e2b.run_tag = r.optional_string_of(v, k).value_or(""); }},
    {"job_config.sweep_on_start", e2b, "bool", "`false`", "kill sandboxes left with the same `run_tag` at start-up",
     [](R r, N v, K k, C c) { c.e2b.sweep_on_start = r.bool_of(v, k); }},
    {"job_config.api_url", e2b, "string", "`E2B_API_URL`, else `https://api.<domain>`", "control plane endpoint",
     [](R r, N v, K k, C c) { if (auto t = r.optional_string_of(v, k)) c.e2b.api_url = *t; }},
    {"job_config.sandbox_url", e2b, "string", "`E2B_SANDBOX_URL`", "envd endpoint for every sandbox",
     [](R r, N v, K k, C c) { if (auto t = r.optional_string_of(v, k)) c.e2b.sandbox_url = *t; }},
    {"job_config.domain", e2b, "string", "`E2B_DOMAIN`, else `e2b.app`", "E2B domain",
     [](R r, N v, K k, C c) { if (auto t = r.optional_string_of(v, k)) c.e2b.domain = *t; }},
};

const std::vector<ignored_key> ignored = {
    {"eval_command", "Genesis's own command line; the launcher builds the evaluator's argv itself"},
    {"image", "Slurm/Docker setting"},
    {"image_tar_path", "Slurm/Docker setting"},
    {"docker_flags", "Slurm/Docker setting"},
    {"partition", "Slurm setting"},
    {"gpus", "Slurm setting"},
    {"mem", "Slurm setting"},
    {"modules", "Slurm setting (environment modules)"},
};

}  // namespace

const std::vector<launcher_key>& launcher_keys() { return table; }

const launcher_key* find_launcher_key(std::string_view path) {
    for (const auto& key : table)
        if (path == key.path) return &key;
    return nullptr;
}

const std::vector<ignored_key>& ignored_job_keys() { return ignored; }

const std::vector<std::string>& known_engine_keys(std::string_view parent) {
    // Genesis's and ShinkaEvolve's own keys next to ours (their EvolutionConfig and
    // their top level), so that no engine key is ever taken for a misspelling.
    static const std::vector<std::string> top_level = {
        "defaults", "hydra", "db_config", "database", "evolution", "task", "verbose", "run_name",
        "output_dir", "exp_name", "variant_suffix", "distributed_job_config", "evaluate_function",
        "launcher", "max_proposal_jobs", "max_db_workers", "variant", "cluster"};
    static const std::vector<std::string> evo_config = {
        "num_generations", "llm_models", "llm_dynamic_selection", "llm_kwargs",
        "llm_dynamic_selection_kwargs", "meta_rec_interval", "meta_llm_models", "meta_llm_kwargs",
        "meta_max_recommendations", "embedding_model", "patch_types", "patch_type_probs",
        "task_sys_msg", "language", "max_patch_attempts", "max_patch_resamples",
        "max_novelty_attempts", "novelty_llm_models", "novelty_llm_kwargs",
        "code_embed_sim_threshold", "use_text_feedback", "agentic", "evaluator", "agentic_mode",
        "max_api_costs", "evolve_prompts", "prompt_evolution_interval", "job_config",
        "max_proposal_jobs", "max_db_workers", "enable_controlled_oversubscription", "strategy_name"};
    static const std::vector<std::string> job_config = [] {
        std::vector<std::string> names;
        for (const auto& key : ignored) names.emplace_back(key.name);
        return names;
    }();
    static const std::vector<std::string> none;
    if (parent.empty()) return top_level;
    if (parent == "evo_config") return evo_config;
    if (parent == "job_config") return job_config;
    return none;
}

std::vector<std::string> launcher_children(std::string_view parent) {
    std::vector<std::string> names;
    for (const auto& key : table) {
        const std::string_view path = key.path;
        const std::size_t dot = path.rfind('.');
        const std::string_view key_parent = dot == std::string_view::npos ? std::string_view{} : path.substr(0, dot);
        if (key_parent == parent) names.emplace_back(path.substr(dot == std::string_view::npos ? 0 : dot + 1));
    }
    if (parent.empty()) {
        names.emplace_back("job_config");
        names.emplace_back("evo_config");
    }
    return names;
}

std::optional<std::string> near_miss(std::string_view parent, std::string_view name) {
    const auto& engine = known_engine_keys(parent);
    if (std::find(engine.begin(), engine.end(), name) != engine.end()) return std::nullopt;
    // Every field of Genesis's and ShinkaEvolve's job configs is known (ours, or in
    // the ignored list): a new name there is more likely a typo of ours than anywhere
    // else, so the wider "did you mean" match applies.
    if (parent == "job_config") return closest_match(name, launcher_children(parent));
    std::optional<std::string> best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (const auto& own : launcher_children(parent)) {
        if (own == name) return std::nullopt;
        // One typo in a short name, two in a longer one.
        const std::size_t allowed = std::min(name.size(), own.size()) >= 6 ? 2 : 1;
        const std::size_t distance = edit_distance(name, own);
        if (distance <= allowed && distance < best_distance) {
            best = own;
            best_distance = distance;
        }
    }
    return best;
}

// ---- validation --------------------------------------------------------------------

std::optional<std::pair<std::string, std::string>> validate_values(const launcher_config& cfg) {
    using problem = std::pair<std::string, std::string>;
    auto number_text = [](double value) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%g", value);
        return std::string(buf);
    };
    if (cfg.max_parallel_jobs < 1)
        return problem{"evo_config.max_parallel_jobs", "expected an integer >= 1, got " + std::to_string(cfg.max_parallel_jobs)};
    if (cfg.max_parallel_jobs > max_parallel_jobs_limit)
        return problem{"evo_config.max_parallel_jobs", "expected at most " + std::to_string(max_parallel_jobs_limit) +
                                                           ", got " + std::to_string(cfg.max_parallel_jobs)};
    if (cfg.eval_program_path.empty()) return problem{"job_config.eval_program_path", "expected a path, got \"\""};
    if (cfg.kill_grace.count() < 0) return problem{"job_config.kill_grace", "expected a duration >= 0"};
    if (cfg.output_capture_bytes < 1) return problem{"job_config.output_capture_bytes", "expected an integer >= 1, got 0"};
    if (cfg.numeric_threads_per_job && *cfg.numeric_threads_per_job < 1)
        return problem{"job_config.numeric_threads_per_job",
                       "expected an integer >= 1, got " + std::to_string(*cfg.numeric_threads_per_job)};

    const local_params& l = cfg.local;
    if (l.python.empty()) return problem{"job_config.python", "expected an interpreter, got \"\""};
    if (l.time && l.time->count() <= 0)
        return problem{"job_config.time", "expected a positive duration, got " + std::to_string(l.time->count()) + " ms"};
    if (l.cpu_seconds && l.cpu_seconds->count() <= 0) return problem{"job_config.cpu_seconds", "expected a positive duration"};
    const std::pair<const char*, const std::optional<std::uint64_t>*> mib_limits[] = {
        {"job_config.memory_mb", &l.memory_mb}, {"job_config.max_file_mb", &l.max_file_mb},
        {"job_config.log_limit_mb", &l.log_limit_mb}};
    for (const auto& [key, value] : mib_limits) {
        if (*value && **value < 1) return problem{key, "expected an integer >= 1, got 0"};
        // MiB values become bytes for setrlimit.
        if (*value && **value > (std::uint64_t{1} << 40)) return problem{key, "value too large: " + std::to_string(**value)};
    }
    if (l.max_processes && *l.max_processes < 1) return problem{"job_config.max_processes", "expected an integer >= 1, got 0"};
    if (l.max_open_files && *l.max_open_files < 1) return problem{"job_config.max_open_files", "expected an integer >= 1, got 0"};
    if (l.conda_env && l.conda_env->empty()) return problem{"job_config.conda_env", "expected an environment name, got \"\""};
    if (l.conda_env && l.activate_script)
        return problem{"job_config.activate_script",
                       "cannot be combined with job_config.conda_env (set one of them to null)"};

    const e2b_params& e = cfg.e2b;
    if (e.template_id.empty()) return problem{"job_config.template", "expected a template name, got \"\""};
    if (e.timeout.count() <= 0)
        return problem{"job_config.timeout", "expected a positive number of seconds, got " + std::to_string(e.timeout.count())};
    if (e.install_timeout.count() <= 0) return problem{"job_config.install_timeout", "expected a positive duration, got 0"};
    if (!(e.create_rate > 0) || !std::isfinite(e.create_rate))
        return problem{"job_config.create_rate", "expected a number > 0, got " + number_text(e.create_rate)};
    if (e.max_retries < 1) return problem{"job_config.max_retries", "expected an integer >= 1, got " + std::to_string(e.max_retries)};
    if (e.max_retries > max_retries_limit)
        return problem{"job_config.max_retries",
                       "expected at most " + std::to_string(max_retries_limit) + ", got " + std::to_string(e.max_retries)};
    if (!(e.cost_per_cpu_second >= 0) || !std::isfinite(e.cost_per_cpu_second))
        return problem{"job_config.cost_per_cpu_second", "expected a number >= 0, got " + number_text(e.cost_per_cpu_second)};
    if (!(e.cost_per_gib_second >= 0) || !std::isfinite(e.cost_per_gib_second))
        return problem{"job_config.cost_per_gib_second", "expected a number >= 0, got " + number_text(e.cost_per_gib_second)};
    if (e.cpus && *e.cpus < 1) return problem{"job_config.cpus", "expected an integer >= 1, got " + std::to_string(*e.cpus)};
    if (e.memory_mb && *e.memory_mb < 1)
        return problem{"job_config.memory_mb", "expected an integer >= 1, got " + std::to_string(*e.memory_mb)};
    for (char ch : e.run_tag)
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.'))
            return problem{"job_config.run_tag", "expected letters, digits, '-', '_' or '.', got \"" + e.run_tag + "\""};
    if (e.sweep_on_start && e.run_tag.empty())
        return problem{"job_config.sweep_on_start", "needs job_config.run_tag (the tag whose sandboxes are killed at start-up)"};
    if (cfg.type == job_type::e2b) {
        if (e.install_timeout > max_sandbox_lifetime)
            return problem{"job_config.install_timeout",
                           std::to_string(e.install_timeout.count()) + " s is above 24 h (86400 s), " + lifetime_limits};
        if (auto why = sandbox_lifetime_problem(e, e.timeout, "job_config.timeout"))
            return problem{"job_config.timeout", *why};
        std::map<std::string, std::string> targets;
        for (const auto& [sandbox_path, local] : e.additional_files) {
            const std::string key = "job_config.additional_files." + printable(sandbox_path);
            const sandbox_path_check check = check_sandbox_path(sandbox_path);
            if (check.problem) return problem{key, *check.problem};
            if (auto [it, fresh] = targets.emplace(check.target, key); !fresh)
                return problem{key, "the same sandbox file (" + check.target + ") as " + it->second};
        }
    }
    for (const auto& [name, value] : cfg.extra_cmd_args) {
        if (auto why = extra_arg_problem(name)) return problem{"job_config.extra_cmd_args." + printable(name), *why};
        if (value.is_string())
            if (auto why = extra_arg_value_problem(value.get_string()))
                return problem{"job_config.extra_cmd_args." + printable(name), *why};
    }
    for (const auto& [name, value] : cfg.env_vars) {
        if (auto why = env_name_problem(name)) return problem{"job_config.env_vars." + printable(name), *why};
        if (auto why = env_value_problem(value)) return problem{"job_config.env_vars." + name, *why};
    }
    return std::nullopt;
}

// ---- rules shared by the loader, validate() and check_inputs() ----------------------

std::string printable(std::string_view text) {
    std::string out;
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out;
}

std::optional<std::string> program_file_problem(const fs::path& path) {
    std::error_code ec;
    const fs::file_status link = fs::symlink_status(path, ec);
    if (ec || !fs::exists(link)) return std::string("does not exist");
    const fs::file_status target = fs::status(path, ec);
    if (ec || !fs::exists(target)) {
        if (fs::is_symlink(link)) return std::string("is a broken symbolic link");
        return std::string("does not exist");
    }
    if (fs::is_directory(target)) return std::string("is a folder");
    if (!fs::is_regular_file(target)) {
        const char* kind = fs::is_fifo(target)                                           ? "a named pipe"
                           : fs::is_socket(target)                                       ? "a socket"
                           : fs::is_block_file(target) || fs::is_character_file(target) ? "a device"
                                                                                        : "not a file";
        return "is not a regular file (" + std::string(kind) + ")";
    }
    if (::access(path.c_str(), R_OK) != 0)
        return "cannot be read: " + std::error_code(errno, std::generic_category()).message();
    return std::nullopt;
}

std::optional<std::string> extra_arg_problem(std::string_view key) {
    // Rendered as `--key value`; argparse splits `--key=value` at '=' and expands an
    // unambiguous prefix of a long option (allow_abbrev), so `--results` is --results_dir.
    const std::string_view name = key.substr(0, key.find('='));
    if (name.empty())
        return std::string(key.empty() ? "an empty flag name would pass '--', which ends the evaluator's options"
                                       : "a flag name cannot start with '='");
    for (const std::string_view flag : {std::string_view("program_path"), std::string_view("results_dir")}) {
        const std::string contract = "--" + std::string(flag);
        const std::string what = flag == "program_path" ? "evaluate another program than the job's"
                                                        : "write its results where the launcher does not read them";
        if (name == flag)
            return contract + " is passed by the launcher itself (the evaluation contract); a second one would win "
                              "and make the evaluator " + what + "; remove this entry";
        if (flag.starts_with(name))
            return "'--" + printable(name) + "' is an abbreviation that Python's argparse expands to " + contract +
                   ", which the launcher passes itself (the evaluation contract); a second one would make the "
                   "evaluator " + what + "; remove or rename this entry";
    }
    return std::nullopt;
}

std::optional<std::string> extra_arg_value_problem(std::string_view value) {
    // `--flag VALUE` is two arguments: for an evaluator whose --flag takes no value
    // (store_true), argparse reads VALUE as an option of its own.
    if (!value.starts_with("--")) return std::nullopt;
    const std::string_view name = value.substr(2, value.find('=') == std::string_view::npos ? std::string_view::npos
                                                                                           : value.find('=') - 2);
    if (name.empty()) return std::nullopt;
    for (const std::string_view flag : {std::string_view("program_path"), std::string_view("results_dir")})
        if (flag.starts_with(name))
            return "the value '" + printable(value.substr(0, 64)) + "' would be read by Python's argparse as --" +
                   std::string(flag) + ", which the launcher passes itself (the evaluation contract)";
    return std::nullopt;
}

std::optional<std::string> env_name_problem(std::string_view name) {
    if (name.empty()) return std::string("not a valid environment variable name: the name is empty");
    if (name.find('\0') != std::string_view::npos)
        return std::string("not a valid environment variable name: it contains a NUL byte");
    if (name.find('=') != std::string_view::npos)
        return std::string("not a valid environment variable name: it contains '=' (the evaluator would get '") +
               printable(name.substr(0, name.find('='))) + "' instead)";
    if (std::any_of(name.begin(), name.end(), [](char c) {
            return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) == 0x7f;
        }))
        return std::string("not a valid environment variable name: it contains a control character");
    return std::nullopt;
}

std::optional<std::string> env_value_problem(std::string_view value) {
    if (value.find('\0') != std::string_view::npos)
        return std::string("the value contains a NUL byte, which cannot be passed in an environment variable");
    return std::nullopt;
}

sandbox_path_check check_sandbox_path(std::string_view configured) {
    // The folders the sandbox's file service lets the sandbox user write, and what the
    // launcher writes itself (home_dir, evaluator_target and results_folder in e2b/engine.hpp).
    constexpr std::string_view home = "/home/user", tmp = "/tmp";
    constexpr std::string_view evaluator = "/home/user/evaluate.py", results = "/home/user/results";
    sandbox_path_check out;
    auto refuse = [&](std::string why) {
        out.problem = std::move(why);
        return out;
    };
    if (configured.empty()) return refuse("expected a file path in the sandbox, got \"\"");
    if (std::any_of(configured.begin(), configured.end(), [](char c) {
            return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) == 0x7f;
        }))
        return refuse("a sandbox path cannot contain control characters");
    for (std::size_t start = 0; start <= configured.size();) {
        const std::size_t slash = std::min(configured.find('/', start), configured.size());
        if (configured.substr(start, slash - start) == "..")
            return refuse("'..' is not allowed in a sandbox path (files go under /home/user or /tmp)");
        start = slash + 1;
    }
    if (configured.back() == '/') return refuse("names a folder; give the file's path in the sandbox");
    const fs::path full = configured.front() == '/' ? fs::path(configured) : fs::path(home) / fs::path(configured);
    out.target = full.lexically_normal().generic_string();
    const std::string_view t = out.target;
    auto under = [&t](std::string_view folder) {
        return t.size() > folder.size() + 1 && t.starts_with(folder) && t[folder.size()] == '/';
    };
    if (t == home || t == tmp) return refuse("names a folder; give the file's path in the sandbox");
    if (!under(home) && !under(tmp))
        return refuse(out.target + " is outside /home/user and /tmp, the folders a sandbox's files can be written to "
                                   "(a relative path is under /home/user)");
    if (t == evaluator) return refuse("/home/user/evaluate.py is where the launcher uploads the evaluator");
    if (t == results || under(results))
        return refuse(out.target + " is in /home/user/results, the evaluator's results folder, which the launcher "
                                   "creates and downloads; upload the file elsewhere");
    return out;
}

std::optional<std::string> sandbox_lifetime_problem(const e2b_params& e, std::chrono::milliseconds evaluation,
                                                    std::string_view timeout_key) {
    using std::chrono::seconds;
    const seconds eval_s((evaluation.count() + 999) / 1000);
    const seconds install = e.dependencies.empty() ? seconds(0) : e.install_timeout;
    const seconds lifetime = install + eval_s + sandbox_lifetime_margin;
    if (eval_s > max_sandbox_lifetime)
        return std::to_string(eval_s.count()) + " s is above 24 h (86400 s), " + lifetime_limits;
    if (lifetime <= max_sandbox_lifetime) return std::nullopt;
    std::string parts = e.dependencies.empty()
                            ? std::string()
                            : "job_config.install_timeout " + std::to_string(install.count()) + " s + ";
    return "the sandbox would live " + std::to_string(lifetime.count()) + " s (" + parts + std::string(timeout_key) +
           " " + std::to_string(eval_s.count()) + " s + " + std::to_string(sandbox_lifetime_margin.count()) +
           " s margin), above 24 h (86400 s), " + lifetime_limits + "; lower " + std::string(timeout_key) +
           (e.dependencies.empty() ? "" : " or job_config.install_timeout");
}

std::optional<std::string> job_spec_problem(const launcher_config& cfg, const job_spec& job) {
    for (const auto& [name, value] : job.extra_args) {
        if (auto why = extra_arg_problem(name)) return "job_spec.extra_args." + printable(name) + ": " + *why;
        if (value.is_string())
            if (auto why = extra_arg_value_problem(value.get_string()))
                return "job_spec.extra_args." + printable(name) + ": " + *why;
    }
    for (const auto& [name, value] : job.env) {
        if (auto why = env_name_problem(name)) return "job_spec.env." + printable(name) + ": " + *why;
        if (auto why = env_value_problem(value)) return "job_spec.env." + name + ": " + *why;
    }
    if (cfg.type == job_type::e2b && job.timeout && job.timeout->count() > 0)
        if (auto why = sandbox_lifetime_problem(cfg.e2b, *job.timeout, "job_spec.timeout"))
            return "job_spec.timeout: " + *why;
    return std::nullopt;
}

// ---- reference ---------------------------------------------------------------------

std::string key_reference_markdown() {
    std::string out;
    std::string section;
    for (const auto& key : table) {
        if (section != key.section) {
            section = key.section;
            out += std::string(out.empty() ? "" : "\n") + "#### " + section + "\n\n";
            out += "| key | type | default | meaning |\n|---|---|---|---|\n";
        }
        out += std::string("| `") + key.path + "` | " + key.type + " | " + key.default_text + " | " + key.meaning + " |\n";
    }
    out += "\n#### Carried and ignored (`job_config`)\n\n| key | why |\n|---|---|\n";
    for (const auto& key : ignored) out += std::string("| `") + key.name + "` | " + key.why + " |\n";
    return out;
}

}  // namespace genesis::launch::config
