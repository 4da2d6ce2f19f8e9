// Fuzz target: Hydra-style command-line overrides. Each input line is one
// override: parsed with parse_override, then applied to a small config tree with
// apply_override. config_failure is the documented way to reject an override;
// anything else escaping (or a crash) is a finding.
#include "config/overrides.hpp"
#include "fuzz_check.hpp"

#include <boost/json/serialize.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace cfg = genesis::launch::config;

namespace {

bool is_group(std::string_view name) { return name == "cluster" || name == "variant" || name == "evaluation"; }

std::vector<std::string> schema_children(const std::vector<std::string>& parent) {
    if (parent.size() == 2 && parent[0] == "job_config" && parent[1] == "env_vars") return {"*"};
    if (parent.size() == 1 && parent[0] == "job_config") return {"time", "mem", "env_vars", "dependencies"};
    return {};
}

cfg::node base_tree() {
    return cfg::parse_yaml_value(
        "{job_config: {time: '01:00:00', mem: 4G, env_vars: {A: b}, dependencies: [numpy, x]},"
        " evaluate_function: {extra_args: {n: 3, fast: true, w: 0.5}}, max_jobs: 8, tags: [a, b, c]}",
        cfg::source::from_file("fuzz.yaml", 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = genesis_fuzz::as_text(data, size);
    auto tree = base_tree();
    std::size_t start = 0;
    while (start <= input.size()) {
        auto end = input.find('\n', start);
        if (end == std::string_view::npos) end = input.size();
        const auto line = input.substr(start, end - start);
        start = end + 1;
        try {
            const auto spec = cfg::parse_override(line, is_group);
            if (spec.op != cfg::override_op::select_group && spec.op != cfg::override_op::remove_group)
                cfg::apply_override(tree, spec, schema_children);
        } catch (const cfg::config_failure& e) {
            genesis_fuzz::check(std::string_view(e.what()).find("command line override") != std::string_view::npos,
                                "config_failure without the override in its message");
        }
    }
    (void)boost::json::serialize(cfg::to_json(tree));
    return 0;
}
