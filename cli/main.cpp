// main.cpp - genesis_launch: evaluate candidate programs the way Genesis /
// ShinkaEvolve does, from the command line.
//
//   genesis_launch [options] [overrides...]
//
// Parses the arguments, loads the configuration, plans the run and hands it to
// the batch runner (batch.cpp). See docs/cli.md.
#include "batch.hpp"
#include "exit_codes.hpp"
#include "report.hpp"
#include "text.hpp"
#include "plan.hpp"
#include "sweep_command.hpp"

#include <genesis/launch/launch.hpp>
#include <genesis/launch/sweep.hpp>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <cerrno>
#include <system_error>

#include <sys/ioctl.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
namespace launch = genesis::launch;
namespace cli = genesis::cli;

struct cli_options {
    std::string config_dir = "configs";
    bool json = false;
    bool quiet = false;
    bool verbose = false;
    bool print_config = false;
    bool key_reference = false;
    std::string results_dir;  // empty: evo_config.results_dir
    std::vector<std::string> overrides;
};

constexpr const char* program_name = "genesis_launch";

void print_error(const std::string& message) {
    std::string line = std::string(program_name) + ": error: " + message + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

int usage_failure(const std::string& message) {
    print_error(message);
    return cli::exit_code::usage_error;
}

int usage_failure(const boost::system::error_code& ec, const launch::diagnostics& diag) {
    return usage_failure(diag.empty() ? ec.message() : diag.to_string());
}

// ---------------------------------------------------------------------------
// Help text
// ---------------------------------------------------------------------------

std::string config_groups_text(const std::string& config_dir) {
    std::map<std::string, std::vector<std::string>> groups;
    try {
        groups = launch::list_config_groups(config_dir);
    } catch (const std::exception&) {
        // Help must work whatever the folder holds.
    }
    std::string text = "Config groups in " + config_dir + ":\n";
    if (groups.empty()) text += "  (none found)\n";
    for (const auto& [group, names] : groups) {
        text += "  " + cli::pad_right(group + ":", 10);
        for (std::size_t i = 0; i < names.size(); ++i) text += (i == 0 ? "" : ", ") + names[i];
        text += "\n";
    }
    return text;
}

std::string help_footer(const std::string& config_dir) {
    std::string text =
        "\n"
        "Overrides (Hydra style; applied after config.yaml and the groups its defaults list chooses):\n"
        "  group=name           pick a config file: variant=circle_packing_example cluster=e2b\n"
        "                       (also group@_global_=name, as Genesis writes it)\n"
        "  key.path=value       set a value, written as YAML: job_config.timeout=600\n"
        "                       job_config.dependencies=[\"numpy\",\"scipy\"]\n"
        "  +key.path=value      add a key that the config does not have: +a.b=1\n"
        "  ++key.path=value     add or replace a key\n"
        "  ~key.path            remove a key\n"
        "  programs=[a.py,b.py] batch mode: evaluate every listed program concurrently\n"
        "  programs=DIR         batch mode: every program file in DIR\n"
        "\n";
    text += config_groups_text(config_dir);
    text +=
        "\n"
        "Exit codes:\n"
        "  0    every job finished ok and correct\n"
        "  1    a job failed: candidate_failed, timeout, or ok but incorrect\n"
        "  2    usage or configuration error, or the E2B key was rejected (nothing was launched)\n"
        "  3    a job hit setup_failed or infra_error (or was rejected), or E2B could not be reached\n"
        "  130  interrupted by SIGINT\n"
        "  143  interrupted by SIGTERM\n"
        "\n"
        "Results go to <results_dir>/run_YYYYmmdd_HHMMSS_XXXX/<job_id>. See docs/cli.md.\n"
        "\n"
        "Leftover E2B sandboxes of a killed run: genesis_launch sweep --help";
    return text;
}

void configure(CLI::App& app, cli_options& options) {
    app.name(program_name);
    app.description(
        "Evaluate candidate programs with a Genesis / ShinkaEvolve evaluator, locally or in E2B sandboxes.\n"
        "Without `programs`, evaluates evo_config.init_program_path once.");
    app.add_option("--config-dir", options.config_dir,
                   "Folder with config.yaml and its config groups (a Genesis or ShinkaEvolve configs/ works unchanged)")
        ->capture_default_str();
    app.add_flag("--json", options.json,
                 "Print one JSON object per job on stdout as it finishes (and nothing else there)");
    app.add_flag("--quiet", options.quiet, "No progress and no summary; errors only");
    app.add_flag("--verbose", options.verbose, "Log the launcher's debug messages to stderr");
    app.add_flag("--print-config", options.print_config, "Print the merged configuration as JSON and exit");
    app.add_flag("--key-reference", options.key_reference,
                 "Print the reference of every key the launcher reads (markdown) and exit");
    app.add_option("--results-dir", options.results_dir, "Results folder (overrides evo_config.results_dir)");
    app.add_option("overrides", options.overrides, "Overrides: group=name, key.path=value, +key=value, ...");
    app.set_version_flag("--version", std::string(launch::version()));
    // Evaluated when help is printed, after --config-dir has been parsed.
    app.footer([&options] { return help_footer(options.config_dir); });
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

// --results-dir wins over the configuration; the printed tree shows it too.
void apply_results_dir(launch::loaded_config& cfg, const std::string& dir) {
    cfg.launcher.results_dir = dir;
    boost::json::value& evo = cfg.tree["evo_config"];
    if (!evo.is_object()) evo = boost::json::object{};
    evo.get_object()["results_dir"] = dir;
}

std::uint16_t random_suffix() {
    std::random_device device;
    return static_cast<std::uint16_t>(device() & 0xFFFFu);
}

std::size_t stdout_columns() {
    if (::isatty(STDOUT_FILENO)) {
        winsize ws{};
        if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    }
    if (const char* columns = std::getenv("COLUMNS")) {
        const long n = std::strtol(columns, nullptr, 10);
        if (n >= 40 && n <= 1000) return static_cast<std::size_t>(n);
    }
    return 120;
}

cli::output_settings make_output_settings(const cli_options& options) {
    cli::output_settings out;
    out.json = options.json;
    out.quiet = options.quiet;
    out.live_progress = !options.json && !options.quiet && ::isatty(STDERR_FILENO);
    out.table_width = stdout_columns();
    out.log_level = options.verbose ? launch::log_level::debug
                    : options.quiet ? launch::log_level::error
                                    : launch::log_level::warning;
    return out;
}

int run(const cli_options& options) {
    launch::load_options load;
    load.config_dir = options.config_dir;
    load.overrides = options.overrides;

    boost::system::error_code ec;
    launch::diagnostics diag;
    launch::loaded_config cfg;
    try {
        cfg = launch::load_config(load, ec, diag);
    } catch (const std::exception& e) {
        return usage_failure(e.what());
    }
    if (ec) return usage_failure(ec, diag);
    if (!options.results_dir.empty()) apply_results_dir(cfg, options.results_dir);
    if (cfg.launcher.type == launch::job_type::e2b && !cfg.launcher.e2b.tls_verify)
        std::fputs("genesis_launch: warning: TLS certificate and host-name verification is OFF "
                   "(job_config.tls_verify=false); use only against a test service\n",
                   stderr);

    if (options.verbose) {
        // What the loader read and what it carried without using (never a secret's value).
        const launch::logger debug = launch::make_stderr_logger(launch::log_level::debug);
        for (const auto& source : cfg.sources) debug.log(launch::log_level::debug, "config: read " + source.string());
        for (const auto& note : cfg.notes) debug.log(launch::log_level::debug, "config: " + note);
        if (!cfg.dotenv_file) debug.log(launch::log_level::debug, "config: no .env file was read");
    }

    if (options.print_config) {
        const std::string text = launch::json_text_pretty(cfg.tree);
        std::fwrite(text.data(), 1, text.size(), stdout);
        return cli::exit_code::success;
    }

    if (cfg.programs.empty() && cfg.launcher.init_program_path.empty())
        return usage_failure("evo_config.init_program_path is built by the engine (a _target_ node); "
                             "give the program to evaluate with programs=FILE or evo_config.init_program_path=FILE");
    cli::run_plan plan = cli::make_plan(cfg, cli::make_run_id(std::chrono::system_clock::now(), random_suffix()));
    std::vector<fs::path> programs;
    programs.reserve(plan.jobs.size());
    for (const auto& job : plan.jobs) programs.push_back(job.program);
    if (auto problem = launch::check_inputs(cfg.launcher, programs, plan.batch ? "programs" : "evo_config.init_program_path"))
        return usage_failure(*problem);

    if (cfg.launcher.type == launch::job_type::e2b) {
        // One request before any sandbox: a rejected key or an unreachable service
        // stops the run here instead of failing every job.
        launch::check_e2b_access(cfg.launcher, ec, diag);
        if (ec == launch::errc::io_error) {
            print_error(diag.to_string());
            return cli::exit_code::infra_error;
        }
        if (ec) return usage_failure(ec, diag);
    }

    boost::asio::io_context io;
    std::unique_ptr<launch::JobLauncher> launcher;
    try {
        launcher = launch::make_launcher(cfg.launcher, io.get_executor(), ec, diag);
    } catch (const std::exception& e) {
        return usage_failure(e.what());
    }
    if (ec) return usage_failure(ec, diag);
    if (!launcher) return usage_failure("the launcher could not be created");

    std::error_code fs_ec;
    fs::create_directories(plan.run_dir, fs_ec);
    if (fs_ec) return usage_failure("cannot create results folder " + plan.run_dir.string() + ": " + fs_ec.message());
    // As Hydra does for a run: evaluators that reload the composed config (Genesis's and
    // ShinkaEvolve's eval_hydra.py look two folders above --results_dir) find it here.
    launch::write_hydra_config(cfg, plan.run_dir, ec, diag);
    if (ec) return usage_failure(ec, diag);

    // Declared after the launcher: destroyed first.
    cli::batch_runner runner(io, *launcher, std::move(plan), make_output_settings(options), cfg.launcher.kill_grace);
    return runner.run();
}

}  // namespace

int main(int argc, char** argv) {
    // `genesis_launch sweep ...` is a command of its own (sweep_command.cpp).
    if (argc > 1 && std::string_view(argv[1]) == "sweep") {
        std::signal(SIGPIPE, SIG_IGN);
        return cli::sweep_main(argc - 1, argv + 1);
    }
    cli_options options;
    CLI::App app;
    configure(app, options);
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {  // --help, --version
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        print_error(std::string(e.what()) + " (run with --help for usage)");
        return cli::exit_code::usage_error;
    }
    if (options.quiet && options.verbose) return usage_failure("--quiet and --verbose exclude each other");
    if (options.key_reference) {
        const std::string text = launch::config_key_reference();
        std::fwrite(text.data(), 1, text.size(), stdout);
        return cli::exit_code::success;
    }

    // A closed stdout (e.g. `| head -1`) must not kill us before the jobs are
    // cleaned up; writes then fail quietly. Evaluators get the default back.
    std::signal(SIGPIPE, SIG_IGN);

    try {
        return run(options);
    } catch (const std::exception& e) {
        print_error(std::string("unexpected failure: ") + e.what());
        return cli::exit_code::infra_error;
    }
}
