// make_launcher.cpp - the composition root: the one file that knows every
// backend. It validates a configuration, picks the backend for its job_type and
// hands it to the backend-independent launcher_core; check_inputs() is the
// pre-flight check of a run's files that the CLI and engines call before submitting.
#include "genesis/launch/job_launcher.hpp"

#include "config/schema.hpp"
#include "e2b/e2b_backend.hpp"
#include "launcher_core.hpp"
#include "local/local_backend.hpp"

#include <cerrno>
#include <cstdlib>
#include <system_error>

#include <unistd.h>

namespace genesis::launch {
namespace fs = std::filesystem;

std::unique_ptr<JobLauncher> make_launcher(const launcher_config& cfg, JobLauncher::executor_type executor,
                                           boost::system::error_code& ec, diagnostics& diag) {
    ec = {};
    diag.clear();
    validate(cfg, ec, diag);
    if (ec) return nullptr;
    switch (cfg.type) {
        case job_type::local:
            return std::make_unique<detail::launcher_core>(cfg, std::move(executor), detail::make_local_backend);
        case job_type::e2b: {
            if (cfg.e2b.api_key.empty()) {
                ec = make_error_code(errc::missing_credentials);
                diag.client_message =
                    "E2B_API_KEY is not set (set it in the environment or in a .env file in the working directory or a parent)";
                return nullptr;
            }
            if (auto why = detail::check_e2b_config(cfg)) {
                ec = make_error_code(errc::config_error);
                diag.client_message = std::move(*why);
                return nullptr;
            }
            return std::make_unique<detail::launcher_core>(cfg, std::move(executor), detail::make_e2b_backend);
        }
    }
    ec = make_error_code(errc::config_error);
    diag.client_message = "unknown job type";
    return nullptr;
}

std::unique_ptr<JobLauncher> make_launcher(const launcher_config& cfg, JobLauncher::executor_type executor) {
    boost::system::error_code ec;
    diagnostics diag;
    auto l = make_launcher(cfg, std::move(executor), ec, diag);
    if (ec) throw launch_error(ec, std::move(diag));
    return l;
}

namespace {

// Why `path` cannot serve as an input file (nullopt: it can).
std::optional<std::string> input_problem(const fs::path& path) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
        std::error_code link_ec;
        if (fs::is_symlink(fs::symlink_status(path, link_ec))) return std::string("is a broken symbolic link");
        return std::string("not found");
    }
    if (fs::is_directory(status)) return std::string("is a folder, not a file");
    // A named pipe, socket or device: reported, never opened (a pipe would block).
    if (auto problem = config::program_file_problem(path)) return problem;
    return std::nullopt;
}

std::string describe(std::string_view what, const fs::path& path, const std::string& problem, std::string_view key) {
    std::string text(what);
    text += problem == "not found" ? " not found: " + path.string() : " " + path.string() + " " + problem;
    return text + " (" + std::string(key) + ")";
}

}  // namespace

std::optional<std::string> check_inputs(const launcher_config& cfg, const std::vector<fs::path>& programs,
                                        std::string_view programs_key) {
    if (auto problem = input_problem(cfg.eval_program_path))
        return describe("evaluator", cfg.eval_program_path, *problem, "job_config.eval_program_path");
    for (const auto& program : programs)
        if (auto problem = input_problem(program)) return describe("program", program, *problem, programs_key);
    if (cfg.type == job_type::local) {
        // The jobs' PATH: the configured one, else the launcher's own.
        const char* inherited = std::getenv("PATH");
        const auto configured = cfg.env_vars.find("PATH");
        const std::string path_env = configured != cfg.env_vars.end() ? configured->second : inherited ? inherited : "";
        auto found = [&](const std::string& name) { return !detail::find_executable(name, path_env).empty(); };
        const std::string& python = cfg.local.python;
        if (const auto& script = cfg.local.activate_script) {
            // The interpreter comes from the PATH the script leaves: only the script is checked.
            if (auto problem = input_problem(*script))
                return describe("activation script", *script, *problem, "job_config.activate_script");
            if (!found("bash")) return std::string("job_config.activate_script is set but 'bash' was not found on PATH");
        } else if (cfg.local.conda_env) {
            if (!found("conda")) return std::string("job_config.conda_env is set but 'conda' was not found on PATH");
        } else if (!found(python)) {
            return "python interpreter '" + python + "' not found" +
                   (python.find('/') == std::string::npos ? " on PATH" : "") + " (job_config.python)";
        }
    }
    if (cfg.type == job_type::e2b) {
        for (const auto& [sandbox_path, local] : cfg.e2b.additional_files) {
            if (auto problem = input_problem(local))
                return describe("additional file", local, *problem, "job_config.additional_files." + sandbox_path);
            // A candidate goes to /home/user/<its file name>: an upload to the same path would replace it.
            const std::string target = config::check_sandbox_path(sandbox_path).target;
            for (const auto& program : programs)
                if (!target.empty() && target == "/home/user/" + program.filename().string())
                    return "job_config.additional_files." + sandbox_path + ": " + target +
                           " is where the candidate program " + program.string() +
                           " goes in the sandbox; upload the file elsewhere";
        }
    }
    return std::nullopt;
}

void check_inputs(const launcher_config& cfg, const job_spec& job, boost::system::error_code& ec, diagnostics& diag) {
    ec.clear();
    diag.clear();
    if (auto problem = config::job_spec_problem(cfg, job)) {
        ec = make_error_code(errc::invalid_job);
        diag.client_message = std::move(*problem);
    }
}

}  // namespace genesis::launch
