#include "genesis/launch/cost.hpp"

namespace genesis::launch {

sandbox_cost_rates cost_rates(const e2b_params& p) {
    sandbox_cost_rates r;
    r.per_cpu_second = p.cost_per_cpu_second;
    r.per_gib_second = p.cost_per_gib_second;
    r.cpus = p.cpus.value_or(r.cpus);
    r.memory_mb = p.memory_mb.value_or(r.memory_mb);
    return r;
}

double estimate_cost(const job_result& r, const sandbox_cost_rates& rates) {
    return r.backend == "e2b" ? r.sandbox_seconds * rates.per_second() : 0.0;
}

}  // namespace genesis::launch
