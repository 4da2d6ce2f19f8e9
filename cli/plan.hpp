// plan.hpp - what one invocation of genesis_launch will run: the run id, the
// jobs with their ids and results folders, and the record each job leaves.
// Pure functions; no I/O.
#pragma once

#include <genesis/launch/config.hpp>
#include <genesis/launch/cost.hpp>
#include <genesis/launch/job.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

namespace genesis::cli {

namespace fs = std::filesystem;

struct planned_job {
    std::string job_id;
    fs::path program;
    fs::path results_dir;  // <results_dir>/<run-id>/<job_id>
};

struct run_plan {
    std::string run_id;
    fs::path run_dir;   // <results_dir>/<run-id>
    bool batch = false; // `programs=...` was given
    std::vector<planned_job> jobs;
    launch::sandbox_cost_rates cost_rates;  // for the summaries' cost estimates
};

// A finished job as the CLI reports it.
struct job_record {
    std::size_t index = 0;  // position in run_plan::jobs
    planned_job job;
    launch::job_result result;
    bool rejected = false;  // the launcher refused the job (async_submit completed with an error)
};

// run_YYYYmmdd_HHMMSS_<4 hex>, local time.
inline std::string make_run_id(std::chrono::system_clock::time_point now, std::uint16_t suffix) {
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm local{};
    localtime_r(&t, &local);
    char buf[64];
    std::snprintf(buf, sizeof buf, "run_%04d%02d%02d_%02d%02d%02d_%04x", local.tm_year + 1900, local.tm_mon + 1,
                  local.tm_mday, local.tm_hour, local.tm_min, local.tm_sec, static_cast<unsigned>(suffix));
    return buf;
}

// The job id of the index-th program of a batch: "<index:03>_<stem>".
inline std::string batch_job_id(std::size_t index, const fs::path& program) {
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "%03zu_", index);
    std::string stem = program.stem().string();
    return prefix + (stem.empty() ? std::string("program") : stem);
}

// The job id of the single program in single mode: its stem.
inline std::string single_job_id(const fs::path& program) {
    std::string stem = program.stem().string();
    return stem.empty() ? std::string("program") : stem;
}

// Single mode evaluates evo_config.init_program_path; batch mode every entry of
// loaded_config.programs.
inline run_plan make_plan(const launch::loaded_config& cfg, std::string run_id) {
    run_plan plan;
    plan.cost_rates = launch::cost_rates(cfg.launcher.e2b);
    plan.run_id = std::move(run_id);
    plan.run_dir = cfg.launcher.results_dir / plan.run_id;
    plan.batch = !cfg.programs.empty();
    if (plan.batch) {
        plan.jobs.reserve(cfg.programs.size());
        for (std::size_t i = 0; i < cfg.programs.size(); ++i) {
            std::string id = batch_job_id(i, cfg.programs[i]);
            fs::path dir = plan.run_dir / id;
            plan.jobs.push_back({std::move(id), cfg.programs[i], std::move(dir)});
        }
    } else {
        const fs::path& program = cfg.launcher.init_program_path;
        std::string id = single_job_id(program);
        fs::path dir = plan.run_dir / id;
        plan.jobs.push_back({std::move(id), program, std::move(dir)});
    }
    return plan;
}

}  // namespace genesis::cli
