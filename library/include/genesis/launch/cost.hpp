// cost.hpp - what an E2B evaluation cost, estimated from its sandbox time.
//
// The CLI's summaries and an engine that budgets evaluations use the same formula:
// sandbox-seconds times the template's size times the per-second rates, which come
// from the configuration (job_config.cost_per_cpu_second, cost_per_gib_second,
// cpus, memory_mb).
#pragma once

#include "genesis/launch/config.hpp"
#include "genesis/launch/job.hpp"

namespace genesis::launch {

// What one sandbox-second costs (USD): the template's vCPUs and memory times E2B's rates.
struct sandbox_cost_rates {
    double per_cpu_second = 0.000014;
    double per_gib_second = 0.0000045;
    int cpus = 2;          // the template's defaults when the configuration names none
    int memory_mb = 512;

    double per_second() const noexcept { return cpus * per_cpu_second + memory_mb / 1024.0 * per_gib_second; }
};

// The rates a configuration implies.
sandbox_cost_rates cost_rates(const e2b_params& p);

// The estimated cost (USD) of a job: its billed sandbox_seconds at `rates`; 0 for a
// job that did not run on E2B.
double estimate_cost(const job_result& r, const sandbox_cost_rates& rates);

}  // namespace genesis::launch
