// bad_input_test.cpp - a catalogue of bad inputs to genesis_launch: one row per
// case with its arguments, files and environment, the expected exit code and a
// piece of the expected one-line message. Every row also checks that nothing was
// launched or left behind: no results folder (when the error comes before the
// run), no sandbox created on the E2B emulator, no file written outside.
#include "test_support.hpp"

#if __has_include("emulator.hpp")
#include "emulator_fixture.hpp"
#define GENESIS_HAVE_EMULATOR 1
#endif

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#ifndef GENESIS_CLI_PATH
#error "GENESIS_CLI_PATH must name the genesis_launch binary"
#endif

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using genesis_test::env_list;
using genesis_test::read_file;
using genesis_test::temp_dir;
using genesis_test::write_file;
using genesis_test::yaml_quote;

// Where the expected message shows up.
enum class where {
    stderr_line,  // stderr is exactly one line: "genesis_launch: error: <message>" (and stdout is empty)
    job_json,     // a job ran (or was attempted): the message is in its --json line
};

enum class backend { local, e2b };

struct bad_case {
    std::string name;
    std::vector<std::string> args;            // after --config-dir; "{DIR}" is the case's folder
    std::map<std::string, std::string> files;  // relative to the case's folder ("{DIR}" expanded in the text)
    int exit_code = 2;
    std::string message;
    where at = where::stderr_line;
    backend uses = backend::local;
    bool with_key = true;              // E2B: E2B_API_KEY set to the emulator's key
    std::string key_override;          // E2B: this key instead
    std::vector<std::string> chmod_000;  // files made unreadable (the row is skipped when running as root)
    std::vector<std::string> fifos;    // named pipes made in the case's folder
    std::map<std::string, std::string> symlinks;  // link (in the case's folder) -> target
    int requests = 0;                  // E2B: requests the emulator may see (refused before: 0)
    std::string api_url;               // E2B: this URL instead of the emulator's
};

// gtest prints a row by its name (not as bytes).
void PrintTo(const bad_case& row, std::ostream* os) { *os << row.name; }

constexpr const char* junk_py = R"PY(import argparse, json, os, sys
p = argparse.ArgumentParser()
p.add_argument("--program_path"); p.add_argument("--results_dir")
a, _ = p.parse_known_args()
os.makedirs(a.results_dir, exist_ok=True)
sys.stdout.buffer.write(bytes(range(256)) * 64 + b"\x1b[2J\x00\xff\xfe")
sys.stderr.buffer.write(b"\xc3\x28\xa0\xa1\x00 junk\r\n")
json.dump({"combined_score": 1.0}, open(os.path.join(a.results_dir, "metrics.json"), "w"))
json.dump({"correct": True, "error": None}, open(os.path.join(a.results_dir, "correct.json"), "w"))
)PY";

// Writes result files with hostile names, and a symlink pointing outside.
constexpr const char* hostile_names_py = R"PY(import argparse, json, os
p = argparse.ArgumentParser()
p.add_argument("--program_path"); p.add_argument("--results_dir")
a, _ = p.parse_known_args()
os.makedirs(a.results_dir, exist_ok=True)
for name in ["line\nbreak.txt", "-rf", " lead space", "quote\"d.txt", "\x1b[31mred", "caf\xe9.txt", "..."]:
    open(os.path.join(a.results_dir, name), "w").write("x")
os.symlink("../../../../outside-target", os.path.join(a.results_dir, "escape"))
json.dump({"combined_score": 1.0}, open(os.path.join(a.results_dir, "metrics.json"), "w"))
json.dump({"correct": True, "error": None}, open(os.path.join(a.results_dir, "correct.json"), "w"))
)PY";

// Nine levels of nine YAML aliases: 9^9 values once copied.
std::string billion_laughs() {
    std::string text = "a: &a [x, x, x, x, x, x, x, x, x]\n";
    std::string previous = "a";
    for (const char* name : {"b", "c", "d", "e", "f", "g", "h", "i"}) {
        text += std::string(name) + ": &" + name + " [";
        for (int i = 0; i < 9; ++i) text += (i ? ", *" : "*") + previous;
        text += "]\n";
        previous = name;
    }
    return text;
}

// A 1 KiB string repeated 16 times per level: 16 GiB at the sixth level.
std::string growing_strings() {
    std::string text = "task:\n  a: \"" + std::string(1024, 'x') + "\"\n";
    std::string previous = "a";
    for (const char* name : {"b", "c", "d", "e", "f", "g"}) {
        text += std::string("  ") + name + ": \"";
        for (int i = 0; i < 16; ++i) text += "${task." + previous + "}";
        text += "\"\n";
        previous = name;
    }
    return text;
}

std::vector<bad_case> catalogue() {
    const std::string data = GENESIS_TEST_DATA_DIR;
    std::vector<bad_case> c;
    auto add = [&](bad_case row) { c.push_back(std::move(row)); };
    // ---- YAML syntax ----
    add({"yaml_unclosed_flow_list", {"variant=broken"}, {}, 2,
         "variant/broken.yaml:4: YAML syntax error: end of sequence flow not found"});
    add({"yaml_bad_indentation",
         {"variant=indent"},
         {{"configs/variant/indent.yaml", "job_config:\n  time: 10\n    python: x\n"}},
         2,
         "variant/indent.yaml:3: YAML syntax error"});
    add({"yaml_unclosed_quote",
         {"variant=quote"},
         {{"configs/variant/quote.yaml", "job_config:\n  python: \"x\" y\n"}},
         2,
         "variant/quote.yaml:2: YAML syntax error"});
    add({"yaml_duplicate_key",
         {"variant=dup"},
         {{"configs/variant/dup.yaml", "job_config:\n  time: 1\n  time: 2\n"}},
         2,
         "variant/dup.yaml:3: job_config.time: duplicate key"});
    add({"yaml_tab_indentation",
         {"variant=tab"},
         {{"configs/variant/tab.yaml", "job_config:\n\ttime: 10\n"}},
         2,
         "variant/tab.yaml:2: YAML syntax error"});
    add({"yaml_bad_override_value", {"job_config.dependencies=[numpy,"}, {}, 2,
         "command line override 'job_config.dependencies=[numpy,'"});
    // ---- wrong types and ranges ----
    add({"time_not_a_duration", {"job_config.time=soon"}, {}, 2, "job_config.time: expected hh:mm:ss or a number of seconds"});
    add({"time_negative", {"job_config.time=-5"}, {}, 2, "job_config.time: expected hh:mm:ss or a number of seconds, got -5"});
    add({"time_zero", {"job_config.time=0"}, {}, 2, "job_config.time: expected a positive duration, got 0"});
    add({"max_parallel_jobs_zero", {"evo_config.max_parallel_jobs=0"}, {}, 2,
         "evo_config.max_parallel_jobs: expected an integer >= 1, got 0"});
    add({"max_parallel_jobs_not_a_number", {"evo_config.max_parallel_jobs=two"}, {}, 2,
         "evo_config.max_parallel_jobs: expected an integer"});
    add({"max_parallel_jobs_huge", {"evo_config.max_parallel_jobs=99999999999"}, {}, 2,
         "evo_config.max_parallel_jobs: expected at most 100000, got 99999999999"});
    add({"e2b_timeout_negative", {"cluster=e2b", "job_config.timeout=-1"}, {}, 2,
         "job_config.timeout: expected a positive number of seconds", where::stderr_line, backend::e2b});
    add({"e2b_timeout_huge", {"cluster=e2b", "job_config.timeout=1e12"}, {}, 2,
         "job_config.timeout: expected a positive number of seconds", where::stderr_line, backend::e2b});
    add({"env_vars_not_a_map", {"job_config.env_vars=[1,2]"}, {}, 2, "job_config.env_vars: expected a map"});
    add({"dependencies_not_a_list", {"cluster=e2b", "job_config.dependencies=numpy"}, {}, 2,
         "job_config.dependencies: expected a list of strings", where::stderr_line, backend::e2b});
    add({"job_type_typo", {"evo_config.job_type=e2c"}, {}, 2, "did you mean 'e2b'"});
    add({"run_tag_with_spaces", {"cluster=e2b", "job_config.run_tag='a b'"}, {}, 2,
         "job_config.run_tag: expected letters, digits", where::stderr_line, backend::e2b});
    add({"sweep_on_start_without_run_tag", {"cluster=e2b", "job_config.sweep_on_start=true"}, {}, 2,
         "needs job_config.run_tag", where::stderr_line, backend::e2b});
    add({"api_url_bad_scheme", {"cluster=e2b", "job_config.api_url=ftp://example.invalid"}, {}, 2,
         "unsupported URL scheme 'ftp'", where::stderr_line, backend::e2b});
    add({"ca_file_missing", {"cluster=e2b", "job_config.ca_file={DIR}/no-such-ca.pem"}, {}, 2,
         "job_config.ca_file: {DIR}/no-such-ca.pem is not a file", where::stderr_line, backend::e2b});
    // ---- unknown keys, with suggestions ----
    add({"override_key_typo", {"job_config.tme=3"}, {}, 2, "did you mean 'job_config.time'?"});
    add({"file_key_typo",
         {"variant=typo"},
         {{"configs/variant/typo.yaml", "job_config:\n  timeot: 3\n"}},
         2,
         "variant/typo.yaml:2: job_config.timeot: unknown key (did you mean 'timeout'?)"});
    add({"evo_config_key_typo",
         {"variant=evotypo"},
         {{"configs/variant/evotypo.yaml", "evo_config:\n  max_paralel_jobs: 3\n"}},
         2,
         "did you mean 'max_parallel_jobs'?"});
    // ---- bad override syntax ----
    add({"override_without_value", {"job_config.time"}, {}, 2, "command line override 'job_config.time': expected key=value"});
    add({"override_empty_key", {"=3"}, {}, 2, "command line override '=3': empty key"});
    add({"override_bad_key_characters", {"job_config.ti me=3"}, {}, 2, "invalid key"});
    add({"override_add_existing_key", {"+job_config.eval_program_path=x.py"}, {}, 2,
         "is already in the config (use ++job_config.eval_program_path"});
    add({"override_into_a_scalar", {"job_config.eval_program_path.x=1"}, {}, 2, "is not a map"});
    // ---- config groups ----
    add({"unknown_config_group", {"flavour=spicy"}, {}, 2, "'flavour' is neither a config group in configs (groups: cluster, variant) nor a key of the config"});
    add({"unknown_group_option", {"variant=oks"}, {}, 2, "variant 'oks' not found"});
    add({"unknown_option", {"--frobnicate"}, {}, 2, "The following argument was not expected: --frobnicate (run with --help"});
    add({"quiet_and_verbose", {"--quiet", "--verbose"}, {}, 2, "--quiet and --verbose exclude each other"});
    add({"config_dir_missing", {"--config-dir", "{DIR}/nowhere"}, {}, 2, "error: nowhere: config folder not found"});
    add({"unresolved_env_interpolation", {"evo_config.results_dir=${oc.env:GENESIS_SURELY_UNSET}"}, {}, 2,
         "environment variable 'GENESIS_SURELY_UNSET'"});
    // ---- missing and unreadable files ----
    add({"candidate_missing", {"evo_config.init_program_path={DIR}/missing.py"}, {}, 2,
         "program not found: {DIR}/missing.py (evo_config.init_program_path)"});
    add({"batch_program_missing", {"programs=[{DIR}/missing.py]"}, {}, 2, "programs.0: '{DIR}/missing.py' does not exist"});
    add({"batch_program_is_a_folder", {"programs=[{DIR}/sub]"}, {{"sub/a.py", ""}}, 2,
         "'{DIR}/sub' is a folder; list files, or give the folder as programs=DIR"});
    add({"python_not_on_path", {"job_config.python=no-such-python3"}, {}, 2,
         "python interpreter 'no-such-python3' not found on PATH (job_config.python)"});
    add({"python_path_missing", {"job_config.python={DIR}/bin/python3"}, {}, 2,
         "python interpreter '{DIR}/bin/python3' not found (job_config.python)"});
    add({"batch_folder_without_programs", {"programs={DIR}/empty"}, {{"empty/readme.txt", "x"}}, 2,
         "has no .py files"});
    add({"evaluator_missing", {"job_config.eval_program_path={DIR}/missing_eval.py"}, {}, 2,
         "evaluator not found: {DIR}/missing_eval.py (job_config.eval_program_path)"});
    add({"evaluator_is_a_folder", {"job_config.eval_program_path={DIR}/evalfolder"}, {{"evalfolder/x", ""}}, 2,
         "evaluator {DIR}/evalfolder is a folder, not a file (job_config.eval_program_path)"});
    add({"additional_file_missing",
         {"cluster=e2b", "job_config.additional_files={/home/user/data.txt: {DIR}/missing.txt}"},
         {},
         2,
         "additional file not found: {DIR}/missing.txt (job_config.additional_files./home/user/data.txt)",
         where::stderr_line,
         backend::e2b});
    {
        bad_case row{"evaluator_unreadable", {"job_config.eval_program_path={DIR}/secret_eval.py"},
                     {{"secret_eval.py", "print(1)\n"}}, 2,
                     "evaluator {DIR}/secret_eval.py cannot be read: Permission denied"};
        row.chmod_000 = {"secret_eval.py"};
        add(row);
    }
    {
        bad_case row{"config_file_unreadable", {"variant=locked"}, {{"configs/variant/locked.yaml", "{}\n"}}, 2,
                     "variant/locked.yaml"};
        row.chmod_000 = {"configs/variant/locked.yaml"};
        add(row);
    }
    {
        // Unreadable even for root: reading a named pipe would block the run.
        bad_case row{"candidate_is_a_named_pipe", {"evo_config.init_program_path={DIR}/pipe.py"}, {}, 2,
                     "program {DIR}/pipe.py is not a regular file (a named pipe) (evo_config.init_program_path)"};
        row.fifos = {"pipe.py"};
        add(row);
    }
    // ---- batches: empty, and entries that are not readable regular files ----
    add({"batch_programs_empty_list", {"programs=[]"}, {}, 2,
         "command line override 'programs=[]': programs: the list is empty (a pattern that matched no file?): nothing "
         "to evaluate; give at least one program, or leave programs unset to evaluate evo_config.init_program_path"});
    {
        bad_case row{"batch_program_is_a_named_pipe", {"programs=[{DIR}/pipe.py]"}, {}, 2,
                     "programs.0: '{DIR}/pipe.py' is not a regular file (a named pipe)"};
        row.fifos = {"pipe.py"};
        add(row);
    }
    {
        bad_case row{"batch_folder_holds_a_named_pipe", {"programs={DIR}/cands"}, {{"cands/a.py", "x = 1\n"}}, 2,
                     "programs: 'cands/b.py' in folder '{DIR}/cands' is not a regular file (a named pipe)"};
        row.fifos = {"cands/b.py"};
        add(row);
    }
    {
        bad_case row{"batch_program_is_a_broken_symlink", {"programs=[{DIR}/link.py]"}, {}, 2,
                     "programs.0: '{DIR}/link.py' is a broken symbolic link"};
        row.symlinks = {{"link.py", "{DIR}/gone.py"}};
        add(row);
    }
    {
        bad_case row{"batch_folder_holds_a_broken_symlink", {"programs={DIR}/cands"}, {{"cands/a.py", "x = 1\n"}}, 2,
                     "programs: 'cands/link.py' in folder '{DIR}/cands' is a broken symbolic link"};
        row.symlinks = {{"cands/link.py", "{DIR}/gone.py"}};
        add(row);
    }
    add({"batch_program_is_a_device", {"programs=[/dev/null]"}, {}, 2,
         "programs.0: '/dev/null' is not a regular file (a device)"});
    {
        bad_case row{"batch_program_unreadable", {"programs=[{DIR}/locked.py]"}, {{"locked.py", "x = 1\n"}}, 2,
                     "programs.0: '{DIR}/locked.py' cannot be read: Permission denied"};
        row.chmod_000 = {"locked.py"};
        add(row);
    }
    {
        bad_case row{"candidate_is_a_broken_symlink", {"evo_config.init_program_path={DIR}/link.py"}, {}, 2,
                     "program {DIR}/link.py is a broken symbolic link (evo_config.init_program_path)"};
        row.symlinks = {{"link.py", "{DIR}/gone.py"}};
        add(row);
    }
    // ---- extra_cmd_args that would replace the contract's own flags ----
    add({"extra_cmd_args_program_path", {"job_config.extra_cmd_args.program_path={DIR}/other.py"}, {}, 2,
         "job_config.extra_cmd_args.program_path: --program_path is passed by the launcher itself (the evaluation "
         "contract); a second one would win and make the evaluator evaluate another program than the job's"});
    add({"extra_cmd_args_results_dir", {"job_config.extra_cmd_args.results_dir={DIR}/elsewhere"}, {}, 2,
         "job_config.extra_cmd_args.results_dir: --results_dir is passed by the launcher itself"});
    add({"extra_cmd_args_argparse_abbreviation", {"job_config.extra_cmd_args.results={DIR}/elsewhere"}, {}, 2,
         "job_config.extra_cmd_args.results: '--results' is an abbreviation that Python's argparse expands to "
         "--results_dir"});
    add({"extra_cmd_args_flag_with_value",
         {"variant=eq"},
         {{"configs/variant/eq.yaml", "job_config:\n  extra_cmd_args:\n    \"program_path=x.py\": true\n"}},
         2,
         "variant/eq.yaml:3: job_config.extra_cmd_args.program_path=x.py: --program_path is passed by the launcher itself"});
    add({"extra_cmd_args_empty_key",
         {"variant=empty"},
         {{"configs/variant/empty.yaml", "job_config:\n  extra_cmd_args:\n    \"\": 1\n"}},
         2,
         "variant/empty.yaml:3: job_config.extra_cmd_args.: an empty flag name would pass '--'"});
    // ---- env_vars names ----
    add({"env_vars_name_with_equals",
         {"variant=envq"},
         {{"configs/variant/envq.yaml", "job_config:\n  env_vars:\n    \"PATH=/evil\": x\n"}},
         2,
         "variant/envq.yaml:3: job_config.env_vars.PATH=/evil: not a valid environment variable name: it contains '=' "
         "(the evaluator would get 'PATH' instead)"});
    add({"env_vars_empty_name",
         {"variant=enve"},
         {{"configs/variant/enve.yaml", "job_config:\n  env_vars:\n    \"\": x\n"}},
         2,
         "job_config.env_vars.: not a valid environment variable name: the name is empty"});
    add({"env_vars_name_with_nul",
         {"variant=envn"},
         {{"configs/variant/envn.yaml", "job_config:\n  env_vars:\n    \"A\\0B\": x\n"}},
         2,
         "job_config.env_vars.A\\x00B: not a valid environment variable name: it contains a NUL byte"});
    add({"env_vars_value_with_nul",
         {"variant=envv"},
         {{"configs/variant/envv.yaml", "job_config:\n  env_vars:\n    A: \"x\\0y\"\n"}},
         2,
         "job_config.env_vars.A: the value contains a NUL byte"});
    // ---- E2B limits and sandbox paths ----
    add({"e2b_timeout_above_a_day", {"cluster=e2b", "job_config.timeout=90000"}, {}, 2,
         "job_config.timeout: 90000 s is above 24 h (86400 s), the longest an E2B sandbox lives (1 h on the Hobby "
         "plan, 24 h on Pro)",
         where::stderr_line, backend::e2b});
    add({"e2b_sandbox_lifetime_above_a_day",
         {"cluster=e2b", "job_config.timeout=86000", "job_config.dependencies=[numpy]"}, {}, 2,
         "job_config.timeout: the sandbox would live 86720 s (job_config.install_timeout 600 s + job_config.timeout "
         "86000 s + 120 s margin), above 24 h (86400 s)",
         where::stderr_line, backend::e2b});
    add({"e2b_install_timeout_above_a_day", {"cluster=e2b", "job_config.install_timeout=25:00:00"}, {}, 2,
         "job_config.install_timeout: 90000 s is above 24 h (86400 s)", where::stderr_line, backend::e2b});
    add({"additional_file_outside_home_and_tmp",
         {"cluster=e2b", "job_config.additional_files={/etc/data.txt: {DIR}/data.txt}"}, {{"data.txt", "x"}}, 2,
         "job_config.additional_files./etc/data.txt: /etc/data.txt is outside /home/user and /tmp",
         where::stderr_line, backend::e2b});
    add({"additional_file_with_dotdot",
         {"cluster=e2b", "job_config.additional_files={../../etc/x: {DIR}/data.txt}"}, {{"data.txt", "x"}}, 2,
         "job_config.additional_files.../../etc/x: '..' is not allowed in a sandbox path",
         where::stderr_line, backend::e2b});
    add({"additional_file_over_the_evaluator",
         {"cluster=e2b", "job_config.additional_files={evaluate.py: {DIR}/data.txt}"}, {{"data.txt", "x"}}, 2,
         "/home/user/evaluate.py is where the launcher uploads the evaluator", where::stderr_line, backend::e2b});
    add({"additional_file_in_the_results_folder",
         {"cluster=e2b", "job_config.additional_files={/home/user/results/metrics.json: {DIR}/data.txt}"},
         {{"data.txt", "x"}}, 2,
         "/home/user/results/metrics.json is in /home/user/results, the evaluator's results folder",
         where::stderr_line, backend::e2b});
    add({"additional_file_over_the_candidate",
         {"cluster=e2b", "job_config.additional_files={good.py: {DIR}/data.txt}"}, {{"data.txt", "x"}}, 2,
         "job_config.additional_files.good.py: /home/user/good.py is where the candidate program",
         where::stderr_line, backend::e2b});
    // ---- unbounded expansion ----
    add({"yaml_billion_laughs", {"variant=laughs"}, {{"configs/variant/laughs.yaml", billion_laughs()}}, 2,
         "variant/laughs.yaml:6: f: the document expands to more than 100000 values (YAML aliases nested in "
         "aliases?); refusing to expand it"});
    add({"interpolation_repeated_in_interpolation", {"variant=grow"}, {{"configs/variant/grow.yaml", growing_strings()}},
         2, "variant/grow.yaml:6: task.e: interpolation expands to more than 100000 values or 16 MiB of text"});
    add({"config_file_is_a_folder", {"variant=folder"}, {{"configs/variant/folder.yaml/x", ""}}, 2,
         "variant 'folder' not found"});
    // ---- results folder ----
    add({"results_dir_is_a_file", {"--results-dir", "{DIR}/plain-file"}, {{"plain-file", "x"}}, 2,
         "cannot create results folder {DIR}/plain-file/run_"});
    // ---- credentials ----
    {
        bad_case row{"e2b_api_key_missing", {"cluster=e2b"}, {}, 2,
                     "E2B_API_KEY is not set (set it in the environment or in a .env file"};
        row.uses = backend::e2b;
        row.with_key = false;
        add(row);
    }
    {
        bad_case row{"e2b_api_key_missing_from_dotenv", {"cluster=e2b"}, {{".env", "# no key here\nOTHER=1\n"}}, 2,
                     "E2B_API_KEY is not set"};
        row.uses = backend::e2b;
        row.with_key = false;
        add(row);
    }
    {
        // A key with white space inside (around it, it is trimmed): a configuration
        // error, not "cannot reach the E2B service" (exit 3, which scripts retry).
        bad_case row{"e2b_api_key_with_space_inside_in_dotenv", {"cluster=e2b"},
                     {{".env", "E2B_API_KEY=\"e2b_0123 4567\"\r\n"}}, 2,
                     "E2B_API_KEY (from .env) contains white space, a control character or a non-ASCII byte inside "
                     "the key (the key is not shown)"};
        row.uses = backend::e2b;
        row.with_key = false;
        add(row);
    }
    {
        bad_case row{"e2b_api_key_with_control_character_in_environment", {"cluster=e2b"}, {}, 2,
                     "E2B_API_KEY (from the environment) contains white space, a control character or a non-ASCII "
                     "byte inside the key (the key is not shown)"};
        row.uses = backend::e2b;
        row.key_override = "e2b_0123\x01" "4567";
        add(row);
    }
    {
        // Found out with one request (a listing) before any sandbox is created.
        bad_case row{"e2b_api_key_rejected_401", {"cluster=e2b", "--json"}, {}, 2,
                     "E2B rejected the API key (E2B_API_KEY): list sandboxes: HTTP 401", where::stderr_line,
                     backend::e2b};
        row.key_override = "e2b_" + std::string(40, '0');
        row.requests = 1;
        add(row);
    }
    {
        bad_case row{"e2b_service_unreachable", {"cluster=e2b", "job_config.max_retries=1"}, {}, 3,
                     "cannot reach the E2B service: list sandboxes: GET http://127.0.0.1:1/v2/sandboxes",
                     where::stderr_line, backend::e2b};
        row.api_url = "http://127.0.0.1:1";
        add(row);
    }
    add({"e2b_unknown_template_404", {"cluster=e2b", "--json", "job_config.template=no-such-template"}, {}, 3,
         "no-such-template", where::job_json, backend::e2b});
    // ---- what the evaluator leaves ----
    add({"metrics_not_json", {"--json", "job_config.eval_program_path=" + data + "/evaluators/bad_correct.py"}, {}, 1,
         "metrics.json", where::job_json});
    add({"correct_json_malformed", {"--json", "job_config.eval_program_path=" + data + "/evaluators/bad_correct.py"},
         {}, 1, "correct.json", where::job_json});
    add({"binary_junk_on_stdout", {"--json", "job_config.eval_program_path={DIR}/junk.py"}, {{"junk.py", junk_py}}, 0,
         "\"outcome\":\"ok\"", where::job_json});
    add({"hostile_result_file_names", {"--json", "job_config.eval_program_path={DIR}/hostile.py"},
         {{"hostile.py", hostile_names_py}}, 0, "\"outcome\":\"ok\"", where::job_json});
    return c;
}

std::string expand(std::string text, const fs::path& dir) {
    const std::string token = "{DIR}";
    for (std::size_t at; (at = text.find(token)) != std::string::npos;) text.replace(at, token.size(), dir.string());
    return text;
}

std::size_t count_lines(const std::string& text) {
    std::size_t n = 0;
    for (char c : text) n += c == '\n';
    return n;
}

class BadInput : public ::testing::TestWithParam<bad_case> {
protected:
    void SetUp() override {
        const fs::path data = GENESIS_TEST_DATA_DIR;
        write_file(configs() / "config.yaml",
                   "defaults:\n  - _self_\n  - cluster@_global_: local\n  - variant@_global_: ok\n\n"
                   "evo_config:\n  job_type: local\n  max_parallel_jobs: 2\n  init_program_path: " +
                       yaml_quote((data / "programs" / "good.py").string()) +
                       "\n  results_dir: results\n\njob_config:\n  eval_program_path: " +
                       yaml_quote((data / "evaluators" / "ok.py").string()) +
                       "\n  extra_cmd_args: {}\n  env_vars: {}\n");
        write_file(configs() / "cluster" / "local.yaml",
                   "job_config:\n  python: " + yaml_quote(GENESIS_TEST_PYTHON) +
                       "\n  time: null\nevo_config:\n  job_type: local\n");
        write_file(configs() / "cluster" / "e2b.yaml",
                   "job_config:\n  template: base\n  timeout: 60\n  create_rate: 100\nevo_config:\n  job_type: e2b\n");
        write_file(configs() / "variant" / "ok.yaml", "job_config: {}\n");
        write_file(configs() / "variant" / "broken.yaml",
                   "job_config:\n  time: 10\n  extra_cmd_args: [unclosed, list\nevo_config:\n  max_parallel_jobs: 1\n");
    }
    fs::path case_dir() const { return dir_ / "case"; }
    fs::path configs() const { return case_dir() / "configs"; }

    temp_dir dir_;
};

TEST_P(BadInput, ClearOneLineErrorAndNothingLaunched) {
    const bad_case& row = GetParam();
    if (!row.chmod_000.empty() && ::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
    const fs::path dir = case_dir();
    for (const auto& [path, text] : row.files) write_file(dir / path, expand(text, dir));
    for (const auto& path : row.chmod_000) fs::permissions(dir / path, fs::perms::none);
    for (const auto& path : row.fifos) {
        fs::create_directories((dir / path).parent_path());
        ASSERT_EQ(::mkfifo((dir / path).c_str(), 0644), 0);
    }
    for (const auto& [link, target] : row.symlinks) {
        fs::create_directories((dir / link).parent_path());
        fs::create_symlink(expand(target, dir), dir / link);
    }

    env_list env{{"E2B_API_KEY", ""}};
#ifdef GENESIS_HAVE_EMULATOR
    std::unique_ptr<genesis_test::emulator_thread> emulator;
    if (row.uses == backend::e2b) {
        if (!genesis_test::bubblewrap_works()) GTEST_SKIP() << "bubblewrap cannot run sandboxes here";
        emulator = std::make_unique<genesis_test::emulator_thread>();
        std::string error;
        ASSERT_TRUE(emulator->start(error)) << error;
        const std::string url = row.api_url.empty() ? emulator->url() : row.api_url;
        env = {{"E2B_API_URL", url}, {"E2B_SANDBOX_URL", url},
               {"E2B_API_KEY", !row.with_key ? std::string() : row.key_override.empty() ? emulator->api_key()
                                                                                         : row.key_override}};
    }
#else
    if (row.uses == backend::e2b) GTEST_SKIP() << "no emulator in this build";
#endif

    std::vector<std::string> args;
    const bool own_config_dir =
        std::find(row.args.begin(), row.args.end(), "--config-dir") != row.args.end();
    if (!own_config_dir) args = {"--config-dir", configs().string()};
    for (const auto& a : row.args) args.push_back(expand(a, dir));

    genesis_test::logged_process p(GENESIS_CLI_PATH, args, dir, dir_ / "logs", env);
    ASSERT_TRUE(p.wait(90s)) << "no exit";
    const std::string out = p.out(), err = p.err();
    const std::string message = expand(row.message, dir);
    EXPECT_EQ(p.exit_code(), row.exit_code) << "stdout:\n" << out << "\nstderr:\n" << err;

    if (row.at == where::stderr_line) {
        EXPECT_EQ(count_lines(err), 1u) << "not one line:\n" << err;
        EXPECT_EQ(err.rfind("genesis_launch: error: ", 0), 0u) << err;
        EXPECT_NE(err.find(message), std::string::npos) << "expected '" << message << "' in:\n" << err;
        EXPECT_TRUE(out.empty()) << out;
        // Nothing launched: not even the results folder exists.
        EXPECT_FALSE(fs::exists(dir / "results")) << "a results folder was created";
    } else {
        // One JSON line per job; the message is in it.
        ASSERT_EQ(count_lines(out), 1u) << out << err;
        boost::system::error_code ec;
        const auto v = json::parse(out, ec);
        ASSERT_FALSE(ec) << "not JSON: " << out;
        EXPECT_NE(out.find(message), std::string::npos) << "expected '" << message << "' in:\n" << out;
        const auto& o = v.as_object();
        // Every result file stays inside the job's folder.
        const std::string results_dir(o.at("results_dir").as_string());
        for (const auto& f : o.at("result_files").as_array())
            EXPECT_EQ(std::string(f.as_string()).rfind(results_dir, 0), 0u) << f;
        // Multi-line human text never leaks into a job line of the summary.
        for (const auto& w : o.at("warnings").as_array())
            EXPECT_EQ(std::string(w.as_string()).find('\n'), std::string::npos) << w;
    }
    EXPECT_FALSE(fs::exists(dir / "outside-target"));
    EXPECT_FALSE(fs::exists(dir_ / "outside-target"));
#ifdef GENESIS_HAVE_EMULATOR
    if (emulator) {
        const auto stats = emulator->stats();
        EXPECT_EQ(stats.at("created").to_number<int>(), 0) << json::serialize(stats);
        EXPECT_EQ(stats.at("live").to_number<int>(), 0);
        if (row.at == where::stderr_line)  // refused before any request (or after the access check)
            EXPECT_EQ(stats.at("requests").at("total").to_number<int>(), row.requests) << json::serialize(stats);
    }
#endif
    for (const auto& path : row.chmod_000) fs::permissions(dir / path, fs::perms::owner_all);
}

INSTANTIATE_TEST_SUITE_P(Catalogue, BadInput, ::testing::ValuesIn(catalogue()),
                         [](const ::testing::TestParamInfo<bad_case>& info) { return info.param.name; });

TEST(BadInputCatalogue, HasAtLeastThirtyCases) { EXPECT_GE(catalogue().size(), 30u); }

// The human summary lists result files: hostile names cannot break its lines or
// send escape sequences to the terminal; an evaluator's stderr tail neither.
TEST(BadInputHumanOutput, HostileResultNamesAndStderrAreEscapedInTheSummary) {
    temp_dir dir;
    const fs::path data = GENESIS_TEST_DATA_DIR;
    write_file(dir / "hostile.py", std::string(hostile_names_py) +
                                       "import sys\nsys.stderr.write('\\x1b[2Jcleared\\rover\\n')\nsys.exit(1)\n");
    write_file(dir / "configs" / "config.yaml",
               "evo_config:\n  job_type: local\n  init_program_path: " +
                   yaml_quote((data / "programs" / "good.py").string()) +
                   "\n  results_dir: results\njob_config:\n  python: " + yaml_quote(GENESIS_TEST_PYTHON) +
                   "\n  eval_program_path: " + yaml_quote((dir / "hostile.py").string()) + "\n");
    genesis_test::logged_process p(GENESIS_CLI_PATH, {"--config-dir", (dir / "configs").string()}, dir.path(),
                                   dir / "logs");
    ASSERT_TRUE(p.wait(60s));
    EXPECT_EQ(p.exit_code(), 1) << p.err();
    const std::string out = p.out();
    EXPECT_NE(out.find("line\\x0abreak.txt"), std::string::npos) << out;
    EXPECT_NE(out.find("\\x1b[31mred"), std::string::npos) << out;
    EXPECT_NE(out.find("\\x1b[2Jcleared\\x0dover"), std::string::npos) << out;
    EXPECT_EQ(out.find('\x1b'), std::string::npos) << "an escape sequence reached the terminal";
    EXPECT_EQ(out.find('\r'), std::string::npos);
    EXPECT_FALSE(fs::exists(dir / "outside-target"));
}

}  // namespace
