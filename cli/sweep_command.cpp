// sweep_command.cpp - `genesis_launch sweep [--run-tag TAG | --all-of-mine] [--dry-run]`.
#include "sweep_command.hpp"

#include "exit_codes.hpp"

#include <genesis/launch/config.hpp>
#include <genesis/launch/json_text.hpp>
#include <genesis/launch/sweep.hpp>

#include <CLI/CLI.hpp>
#include <boost/json/serialize.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

namespace genesis::cli {

namespace {

namespace launch = genesis::launch;
namespace fs = std::filesystem;

int fail(int code, const std::string& message) {
    const std::string line = "genesis_launch sweep: error: " + message + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    return code;
}

void out(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

std::string describe(const launch::swept_sandbox& s) {
    std::string text = s.id + "  genesis_run=" + s.run_tag;
    if (!s.job_id.empty()) text += "  genesis_job=" + s.job_id;
    if (!s.template_id.empty()) text += "  template=" + s.template_id;
    return text;
}

boost::json::object to_json(const launch::sweep_report& report, const std::string& run_tag, bool dry_run) {
    boost::json::array sandboxes;
    for (const auto& s : report.sandboxes) {
        boost::json::object o;
        o["sandbox_id"] = s.id;
        o["template"] = s.template_id;
        o["run_tag"] = s.run_tag;
        o["job_id"] = s.job_id;
        o["killed"] = s.killed;
        if (s.error.empty())
            o["error"] = nullptr;
        else
            o["error"] = s.error;
        sandboxes.push_back(std::move(o));
    }
    boost::json::object o;
    if (run_tag.empty())
        o["run_tag"] = nullptr;
    else
        o["run_tag"] = run_tag;
    o["dry_run"] = dry_run;
    o["found"] = report.sandboxes.size();
    o["killed"] = report.killed;
    o["failed"] = report.failed;
    o["sandboxes"] = std::move(sandboxes);
    return o;
}

}  // namespace

int sweep_main(int argc, char** argv) {
    std::string config_dir = "configs";
    std::string run_tag;
    bool all_of_mine = false;
    bool dry_run = false;
    bool json = false;
    std::vector<std::string> overrides;

    CLI::App app;
    app.name("genesis_launch sweep");
    app.description(
        "Kill E2B sandboxes left behind by an earlier genesis_launch (e.g. one killed with SIGKILL).\n"
        "Only sandboxes tagged genesis_run=... (made by genesis-launch) are ever touched.");
    app.add_option("--config-dir", config_dir, "Folder with config.yaml, cluster/ and variant/")
        ->capture_default_str();
    auto* tag_option = app.add_option("--run-tag", run_tag, "Kill the sandboxes tagged genesis_run=TAG");
    auto* all_option = app.add_flag("--all-of-mine", all_of_mine,
                                    "Kill every sandbox of this API key that carries a genesis_run tag");
    tag_option->excludes(all_option);
    app.add_flag("--dry-run", dry_run, "List what would be killed; kill nothing");
    app.add_flag("--json", json, "Print the result as one JSON object on stdout");
    app.add_option("overrides", overrides, "Overrides, as for a run (cluster=e2b is the default)");
    app.footer(
        "Without --run-tag and --all-of-mine, job_config.run_tag of the configuration is used.\n"
        "Credentials and endpoints come from the configuration (E2B_API_KEY, E2B_API_URL, ...).\n"
        "Exit codes: 0 done (also when nothing matched), 2 usage or configuration error (or a rejected key),\n"
        "3 the sandboxes could not be listed or a kill failed.");
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        return fail(exit_code::usage_error, std::string(e.what()) + " (run with --help for usage)");
    }
    if (tag_option->count() != 0 && run_tag.empty()) return fail(exit_code::usage_error, "--run-tag needs a non-empty tag");

    // The E2B settings live in the e2b cluster unless the caller picks another one.
    bool cluster_given = false;
    for (const auto& o : overrides)
        if (o.rfind("cluster=", 0) == 0) cluster_given = true;
    std::error_code fs_ec;
    if (!cluster_given && fs::is_regular_file(fs::path(config_dir) / "cluster" / "e2b.yaml", fs_ec))
        overrides.insert(overrides.begin(), "cluster=e2b");

    launch::load_options load;
    load.config_dir = config_dir;
    load.overrides = overrides;
    boost::system::error_code ec;
    launch::diagnostics diag;
    launch::loaded_config cfg;
    try {
        cfg = launch::load_config(load, ec, diag);
    } catch (const std::exception& e) {
        return fail(exit_code::usage_error, e.what());
    }
    if (ec) return fail(exit_code::usage_error, diag.empty() ? ec.message() : diag.to_string());

    launch::sweep_options options;
    options.dry_run = dry_run;
    if (!run_tag.empty())
        options.run_tag = run_tag;
    else if (!all_of_mine)
        options.run_tag = cfg.launcher.e2b.run_tag;
    if (options.run_tag.empty() && !all_of_mine)
        return fail(exit_code::usage_error,
                    "say which sandboxes to kill: --run-tag TAG, --all-of-mine, or job_config.run_tag in the "
                    "configuration");

    launch::sweep_report report;
    try {
        report = launch::sweep_sandboxes(cfg.launcher, options, ec, diag);
    } catch (const std::exception& e) {
        return fail(exit_code::infra_error, std::string("unexpected failure: ") + e.what());
    }
    if (ec) {
        const bool usage = ec == launch::errc::missing_credentials || ec == launch::errc::config_error;
        return fail(usage ? exit_code::usage_error : exit_code::infra_error,
                    diag.empty() ? ec.message() : diag.to_string());
    }

    if (json) {
        out(launch::json_text(to_json(report, options.run_tag, dry_run)) + "\n");
    } else {
        std::string text;
        for (const auto& s : report.sandboxes) {
            const char* verb = dry_run ? "would kill " : s.killed ? "killed     " : !s.error.empty() ? "FAILED     " : "gone       ";
            text += verb + describe(s);
            if (!s.error.empty()) text += "  (" + s.error + ")";
            text += "\n";
        }
        const std::string what = options.run_tag.empty() ? "tagged by genesis-launch" : "tagged genesis_run=" + options.run_tag;
        const std::size_t n = report.sandboxes.size();
        text += std::to_string(n) + (n == 1 ? " sandbox " : " sandboxes ") + what;
        if (dry_run)
            text += " (dry run: nothing killed)";
        else
            text += ": " + std::to_string(report.killed) + " killed" +
                    (report.failed ? ", " + std::to_string(report.failed) + " failed" : std::string());
        text += "\n";
        out(text);
    }
    return report.failed == 0 ? exit_code::success : exit_code::infra_error;
}

}  // namespace genesis::cli
