// config.hpp - the launcher's configuration as plain values, and the loader that
// fills them from Genesis-style YAML config groups plus Hydra-style overrides.
#pragma once

#include "genesis/launch/error.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace genesis::launch {

enum class job_type { local, e2b };

// How the local backend confines an evaluator (job_config.isolation).
enum class local_isolation {
    none,   // an ordinary subprocess (limits and the options below still apply)
    bwrap,  // bubblewrap: no network, read-only system, writable results dir and private /tmp only
};

// job_config for the local backend.
struct local_params {
    // Interpreter: a command looked up on PATH, or a path.
    std::string python = "python3";
    // When set, the evaluator runs under `conda run -n <env> --no-capture-output`.
    std::optional<std::string> conda_env;
    // ShinkaEvolve's activation script: when set, the evaluator runs as
    //   bash -lc 'set -e; source "$0"; exec "$@"' <script> <python> <evaluator> ...
    // (`python` is then looked up on the PATH the script leaves). Excludes conda_env.
    std::optional<std::string> activate_script;
    // Per-job time limit; unset = none. (job_config.time: hh:mm:ss or seconds)
    std::optional<std::chrono::milliseconds> time;

    // Resource limits (setrlimit in the evaluator; every process it starts inherits
    // them, and each process has its own allowance). Unset = inherited from this process.
    // Address space in MiB (RLIMIT_AS): an allocation past it fails (Python: MemoryError).
    std::optional<std::uint64_t> memory_mb;
    // CPU seconds per process (RLIMIT_CPU): SIGXCPU at the limit, SIGKILL one second
    // later; the job then ends as `timeout`.
    std::optional<std::chrono::seconds> cpu_seconds;
    // Largest file a process may write, in MiB (RLIMIT_FSIZE; Python: OSError EFBIG).
    std::optional<std::uint64_t> max_file_mb;
    // Processes and threads of the whole job at once (pids cgroup controller, pids.max);
    // needs a writable pids cgroup hierarchy, else the job is setup_failed.
    std::optional<std::uint64_t> max_processes;
    // Open file descriptors per process (RLIMIT_NOFILE).
    std::optional<std::uint64_t> max_open_files;
    // Core dumps of crashing candidates (RLIMIT_CORE 0 when false).
    bool core_dumps = false;
    // Bytes written to job_log.out and to job_log.err, each, in MiB; past it a mark
    // ends the file and the job goes on (the captured output still has head and tail).
    std::optional<std::uint64_t> log_limit_mb;

    // Isolation.
    // A fresh TMPDIR (also TMP, TEMP) per job under the system temp folder, removed
    // when the job ends. Skipped when the job's environment sets TMPDIR itself.
    bool private_tmp = true;
    // At the end of a job, SIGKILL every process still carrying the job's marker
    // variable (GENESIS_LAUNCH_JOB) even if it left the process group (setsid, daemons).
    bool kill_escaped = true;
    // The evaluator gets SIGKILL when the thread that started it exits (PR_SET_PDEATHSIG):
    // a crashed or killed engine does not leave evaluators running.
    bool kill_on_parent_exit = true;
    // false: the evaluator runs in a new network namespace with only loopback
    // (unprivileged user namespaces when not root).
    bool network = true;
    // none or bwrap (bubblewrap; see docs/configuration.md).
    local_isolation isolation = local_isolation::none;
};

// job_config for the E2B backend (see docs/e2b.md).
//
// Time limits. `timeout` is the EVALUATION time limit of one job (the evaluator
// command; a job_spec::timeout overrides it per job). The sandbox is created with
// a lifetime derived from it, so that it outlives every phase of the job and
// still dies on its own if this process disappears:
//     lifetime = (dependencies.empty() ? 0 : install_timeout) + timeout + 120 s
// (the 120 s margin covers uploads, the download and the kill). The backend kills
// the sandbox itself as soon as the job ends; the lifetime is only a backstop.
struct e2b_params {
    std::string template_id = "base";                      // job_config.template
    std::chrono::seconds timeout{300};                     // evaluation time limit (see above)
    std::vector<std::string> dependencies;                 // pip names, one `pip install` per job
    std::map<std::string, std::string> additional_files;   // sandbox path -> local path
    // The template's size, for the cost estimate only (unset = 2 CPUs, 512 MiB).
    std::optional<int> cpus;
    std::optional<int> memory_mb;
    // Time limit of the `pip install` step (only when dependencies is not empty).
    std::chrono::seconds install_timeout{600};
    // Sandbox creations per second, shared by every job of one launcher (E2B Hobby: 1/s).
    double create_rate = 1.0;
    // TLS: an extra trusted CA (PEM) on top of the system roots; verification on/off
    // (off only for tests: no certificate or host-name check at all).
    std::string ca_file;
    bool tls_verify = true;
    // A sandbox that vanishes mid-job, or a command stream that breaks, is retried on
    // a new sandbox: up to 3 sandboxes per job in total (1 when false).
    bool retry_vanished = true;
    // Attempts per request for transient failures (429, 5xx, connection resets),
    // including the first; then the job ends as infra_error.
    int max_retries = 5;
    // Cost estimate (USD): per vCPU-second and per GiB-second of sandbox memory.
    double cost_per_cpu_second = 0.000014;
    double cost_per_gib_second = 0.0000045;
    // Every sandbox is tagged genesis_run=<run tag> and genesis_job=<job id>.
    // Empty = a random tag per launcher.
    std::string run_tag;
    // At start-up, kill every sandbox tagged genesis_run=<run_tag> (left over by an
    // earlier process that used the same run_tag). Needs run_tag.
    bool sweep_on_start = false;
    // Credentials and endpoints (E2B_API_KEY, E2B_API_URL, E2B_SANDBOX_URL, E2B_DOMAIN).
    std::string api_key;
    std::string api_url;
    std::string sandbox_url;
    std::string domain = "e2b.app";
};

struct launcher_config {
    job_type type = job_type::local;
    int max_parallel_jobs = 2;
    std::filesystem::path eval_program_path = "evaluate.py";
    std::filesystem::path init_program_path = "initial.py";
    std::filesystem::path results_dir = "results";
    // --key value arguments for every job (values: bool, number, string, ...).
    boost::json::object extra_cmd_args;
    std::map<std::string, std::string> env_vars;
    // ShinkaEvolve's thread cap: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, ...
    // (see numeric_thread_variables) for every evaluator; env_vars and the job's env win.
    std::optional<int> numeric_threads_per_job;
    // ShinkaEvolve's SHINKA_EVAL_VERBOSE=1|0 for every evaluator; unset = not set.
    std::optional<bool> eval_verbose;
    local_params local;
    e2b_params e2b;
    // Stopping: SIGTERM, this grace period, then SIGKILL.
    std::chrono::milliseconds kill_grace{3000};
    // Bytes of stdout and of stderr kept in memory per job (head and tail).
    std::size_t output_capture_bytes = 256 * 1024;
};

// Where configuration comes from.
struct load_options {
    // Folder holding config.yaml, cluster/, variant/.
    std::filesystem::path config_dir = "configs";
    // Command-line overrides: `group=name`, `a.b=YAML`, `+a.b=YAML`, `++a.b=YAML`, `~a.b`.
    std::vector<std::string> overrides;
    // Relative paths in the configuration are resolved against this folder, and
    // `.env` is looked up here, then in its parents (the first one found is read).
    // Empty = the current directory.
    std::filesystem::path working_dir;
    // Environment lookup (tests inject one); null = ::getenv.
    std::function<std::optional<std::string>(const std::string&)> getenv;
};

struct loaded_config {
    launcher_config launcher;
    // The merged tree after overrides and interpolation: every key, the engine's
    // included (`_target_`, `???`, `hydra`; engine keys that could not be resolved here
    // stay as written). For --print-config.
    boost::json::object tree;
    // The same tree before interpolation and without `hydra`: what Hydra saves as
    // `.hydra/config.yaml` (see write_hydra_config).
    boost::json::object unresolved_tree;
    // Names of the chosen config groups.
    std::string cluster;
    std::string variant;
    // Batch mode: `programs=[a.py,b.py]` or `programs=DIR`, resolved to files (sorted
    // for a folder). Empty when not given.
    std::vector<std::filesystem::path> programs;
    // Files read, in merge order.
    std::vector<std::filesystem::path> sources;
    // Config group choices as composed (group path -> option), e.g. task -> circle_packing.
    std::map<std::string, std::string> choices;
    // The .env file read for credentials, if one was.
    std::optional<std::filesystem::path> dotenv_file;
    // Debug notes: engine keys carried but not used, unresolved engine interpolations,
    // the .env file read. Never holds a secret's value.
    std::vector<std::string> notes;
};

// Loads and validates. On failure sets ec (errc::config_error) and a one-line
// message in diag.client_message naming the file, line and key, e.g.
//   configs/cluster/local.yaml:4: job_config.tme: unknown key (did you mean 'time'?)
loaded_config load_config(const load_options& options, boost::system::error_code& ec,
                          diagnostics& diag);
// Throwing overload (launch_error).
loaded_config load_config(const load_options& options);

// Checks the values of a launcher_config (ranges, combinations), as load_config and
// make_launcher do. On failure sets ec (errc::config_error) and diag.client_message to
// "<key>: <what is wrong>", e.g. "evo_config.max_parallel_jobs: expected an integer >= 1, got 0".
void validate(const launcher_config& cfg, boost::system::error_code& ec, diagnostics& diag);

// Every key the launcher reads, as the markdown tables of docs/configuration.md.
std::string config_key_reference();

// Environment variables numeric_threads_per_job = n sets (ShinkaEvolve's list).
std::map<std::string, std::string> numeric_thread_variables(int n);

// Writes <dir>/.hydra/config.yaml from loaded.unresolved_tree, as Hydra does for a run,
// so that evaluators that reload it (Genesis's and ShinkaEvolve's eval_hydra.py) work.
void write_hydra_config(const loaded_config& loaded, const std::filesystem::path& dir,
                        boost::system::error_code& ec, diagnostics& diag);

// "hh:mm:ss", "mm:ss", or a number of seconds (integer or decimal).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Parses a dotenv file's text: KEY=VALUE lines, `export ` prefix, # comments,
// single or double quotes.
std::map<std::string, std::string> parse_dotenv(std::string_view text);

// Names of the config groups and the files in each (for --help).
std::map<std::string, std::vector<std::string>> list_config_groups(
    const std::filesystem::path& config_dir);

}  // namespace genesis::launch
