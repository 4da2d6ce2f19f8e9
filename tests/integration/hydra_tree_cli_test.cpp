// hydra_tree_cli_test.cpp - genesis_launch run from a checkout of an engine's shape
// (tests/data/hydra_trees): its configs/ tree unchanged, evaluated on the local backend
// and on the E2B emulator, compared with the evaluator run by hand; ShinkaEvolve's job
// keys reaching the evaluator.
#if defined(GENESIS_CLI_PATH)

#include "test_support.hpp"
#if __has_include("emulator.hpp") && defined(GENESIS_E2B_EMULATOR_PATH)
#include "emulator_fixture.hpp"
#define GENESIS_HAVE_EMULATOR 1
#endif

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using genesis_test::env_list;
using genesis_test::logged_process;
using genesis_test::read_file;
using genesis_test::temp_dir;
using genesis_test::write_file;
using ::testing::HasSubstr;

struct finished {
    int exit_code = -1;
    std::string out, err;
};

std::string describe(const finished& r) {
    return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

json::object only_json_line(const finished& r) {
    std::istringstream in(r.out);
    std::vector<json::object> objects;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        boost::system::error_code ec;
        auto v = json::parse(line, ec);
        EXPECT_FALSE(ec) << "not JSON: " << line;
        if (!ec && v.is_object()) objects.push_back(v.as_object());
    }
    EXPECT_EQ(objects.size(), 1u) << describe(r);
    return objects.empty() ? json::object{} : objects.front();
}

json::value json_file(const fs::path& path) {
    boost::system::error_code ec;
    auto v = json::parse(read_file(path), ec);
    EXPECT_FALSE(ec) << path;
    return v;
}

class HydraTreeCli : public ::testing::Test {
protected:
    // A copy of the tree: runs write into it, as they would into a checkout.
    void use(const std::string& name) {
        fs::copy(genesis_test::data_dir() / "hydra_trees" / name, root(), fs::copy_options::recursive);
    }
    fs::path root() const { return dir_ / "checkout"; }

    finished run(std::vector<std::string> args, const env_list& env = {}) {
        args.insert(args.begin(), {"--config-dir", "configs"});
        logged_process p(GENESIS_CLI_PATH, args, root(), dir_ / "logs", env);
        finished r;
        EXPECT_TRUE(p.wait(120s)) << "genesis_launch did not finish in time";
        r.exit_code = p.exit_code();
        r.out = p.out();
        r.err = p.err();
        return r;
    }

    // The evaluator by hand: <python> <evaluator> --program_path P --results_dir R.
    json::value by_hand(const std::string& evaluator, const std::string& program, const std::string& name) {
        const fs::path results = dir_ / "by_hand" / name;
        logged_process p(GENESIS_TEST_PYTHON, {evaluator, "--program_path", program, "--results_dir", results.string()},
                         root(), dir_ / "logs");
        EXPECT_TRUE(p.wait(60s));
        EXPECT_EQ(p.exit_code(), 0) << p.err();
        EXPECT_EQ(json_file(results / "correct.json"), json::parse(R"({"correct": true, "error": null})"));
        return json_file(results / "metrics.json");
    }

    static bool python_has(const std::string& module) {
        const std::string cmd = std::string(GENESIS_TEST_PYTHON) + " -c 'import " + module + "' >/dev/null 2>&1";
        return std::system(cmd.c_str()) == 0;
    }

    temp_dir dir_;
};

TEST_F(HydraTreeCli, GenesisStandaloneVariantEqualsTheEvaluatorByHand) {
    use("genesis");
    const auto r = run({"variant=toy_standalone", "job_config.python=" GENESIS_TEST_PYTHON, "--json"});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    const auto job = only_json_line(r);
    EXPECT_EQ(job.at("outcome").as_string(), "ok");
    // Results under evo_config.results_dir = ${output_dir} = results/genesis_toy/<date><time>_standalone.
    const std::string results = std::string(job.at("results_dir").as_string());
    EXPECT_TRUE(std::regex_search(results, std::regex(R"(/results/genesis_toy/\d{4}\.\d{2}\.\d{8}_standalone/run_)")))
        << results;
    EXPECT_EQ(job.at("metrics"), by_hand("examples/toy/evaluate.py", "examples/toy/initial.py", "standalone"));
    EXPECT_EQ(json_file(fs::path(results) / "metrics.json"), job.at("metrics"));
}

TEST_F(HydraTreeCli, GenesisDefaultVariantRunsItsHydraEvaluator) {
    // cluster/local.yaml: eval_program_path: ${distributed_job_config.eval_program_path}, i.e.
    // genesis/eval_hydra.py, which reloads .hydra/config.yaml with OmegaConf.
    if (!python_has("omegaconf")) GTEST_SKIP() << GENESIS_TEST_PYTHON << " has no omegaconf (Debian: python3-omegaconf)";
    use("genesis");
    const auto r = run({"job_config.python=" GENESIS_TEST_PYTHON, "--json"});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    const auto job = only_json_line(r);
    EXPECT_EQ(job.at("outcome").as_string(), "ok") << describe(r);
    EXPECT_EQ(job.at("metrics"), by_hand("examples/toy/evaluate.py", "examples/toy/initial.py", "default"));
    // The run folder holds the composed config, unresolved and without hydra.
    const fs::path saved = fs::path(std::string(job.at("results_dir").as_string())).parent_path() / ".hydra/config.yaml";
    const std::string text = read_file(saved);
    EXPECT_THAT(text, HasSubstr("output_dir: \"${results_dir}/${exp_name}/${run_name}${variant_suffix}\""));
    EXPECT_THAT(text, HasSubstr("program_path: ???"));
    EXPECT_THAT(text, HasSubstr("time: \"00:10:00\""));  // quoted: YAML 1.1 reads 00:10:00 as a number
    EXPECT_EQ(text.find("hydra:"), std::string::npos);
}

TEST_F(HydraTreeCli, ShinkaTreeAndItsJobKeysReachTheEvaluator) {
    use("shinka");
    write_file(root() / "env_probe.py", R"PY(import argparse, json, os
p = argparse.ArgumentParser()
p.add_argument("--program_path"); p.add_argument("--results_dir")
a = p.parse_args()
os.makedirs(a.results_dir, exist_ok=True)
names = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_DYNAMIC", "SHINKA_EVAL_VERBOSE", "FROM_SCRIPT"]
json.dump({"combined_score": 1.0, "public": {n: os.environ.get(n) for n in names}}, open(os.path.join(a.results_dir, "metrics.json"), "w"))
json.dump({"correct": True, "error": None}, open(os.path.join(a.results_dir, "correct.json"), "w"))
)PY");
    // variant toy_tuned: numeric_threads_per_job 2, eval_verbose false, python_executable python3.
    auto r = run({"variant=toy_tuned", "job_config.eval_program_path=env_probe.py", "job_config.env_vars={MKL_NUM_THREADS: '5'}",
                  "--json"});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    auto seen = only_json_line(r).at("metrics").at("public");
    EXPECT_EQ(seen, json::parse(R"({"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "5",
                                    "OMP_DYNAMIC": "FALSE", "SHINKA_EVAL_VERBOSE": "0", "FROM_SCRIPT": null})"));

    // activate_script: sourced in bash, then `python3` from the PATH it leaves.
    write_file(root() / "env" / "bin" / "python3", std::string("#!/bin/sh\nexec ") + GENESIS_TEST_PYTHON + " \"$@\"\n");
    fs::permissions(root() / "env" / "bin" / "python3", fs::perms::owner_all);
    write_file(root() / "env" / "activate", "export FROM_SCRIPT=\"sourced $(basename \"$PWD\")\"\nexport PATH=\"$PWD/env/bin:$PATH\"\n");
    r = run({"variant=toy_tuned", "job_config.eval_program_path=env_probe.py", "+job_config.activate_script=env/activate",
             "--json"});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    seen = only_json_line(r).at("metrics").at("public");
    EXPECT_EQ(seen.at("FROM_SCRIPT"), "sourced checkout");

    // A missing script stops the run before anything is launched.
    r = run({"variant=toy_tuned", "+job_config.activate_script=env/nope"});
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("activation script not found: " + (root() / "env/nope").string() +
                                 " (job_config.activate_script)"));
}

TEST_F(HydraTreeCli, ShinkaDefaultVariantRunsItsHydraEvaluator) {
    if (!python_has("omegaconf")) GTEST_SKIP() << GENESIS_TEST_PYTHON << " has no omegaconf (Debian: python3-omegaconf)";
    use("shinka");
    const auto r = run({"job_config.python=" GENESIS_TEST_PYTHON, "--json"});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    const auto job = only_json_line(r);
    EXPECT_EQ(job.at("outcome").as_string(), "ok");
    EXPECT_EQ(job.at("metrics"), by_hand("examples/toy/evaluate.py", "examples/toy/initial.py", "shinka"));
    EXPECT_THAT(std::string(job.at("results_dir").as_string()), HasSubstr("/results/shinka_toy/"));
}

TEST_F(HydraTreeCli, SlurmClusterIsRefusedBeforeAnythingRuns) {
    use("genesis");
    const auto r = run({"cluster=gcp"});
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("evo_config.job_type: 'slurm_conda' is a Slurm job type"));
    EXPECT_FALSE(fs::exists(root() / "results"));
}

#ifdef GENESIS_HAVE_EMULATOR
TEST_F(HydraTreeCli, GenesisE2bVariantOnTheEmulatorEqualsTheEvaluatorByHand) {
    if (!genesis_test::bubblewrap_works()) GTEST_SKIP() << "bubblewrap cannot run sandboxes here";
    genesis_test::emulator_thread emulator;
    std::string error;
    ASSERT_TRUE(emulator.start(error)) << error;
    use("genesis");
    // The variant unchanged: cluster e2b from its defaults list, numpy installed first.
    const auto r = run({"variant=toy_e2b", "--json", "+job_config.create_rate=50"},
                       {{"E2B_API_URL", emulator.url()}, {"E2B_SANDBOX_URL", emulator.url()},
                        {"E2B_API_KEY", emulator.api_key()}});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    const auto job = only_json_line(r);
    EXPECT_EQ(job.at("outcome").as_string(), "ok");
    EXPECT_EQ(job.at("backend").as_string(), "e2b");
    EXPECT_EQ(job.at("metrics"), by_hand("examples/toy/evaluate.py", "examples/toy/initial.py", "e2b"));
    const std::string log = read_file(fs::path(std::string(job.at("results_dir").as_string())) / "job_log.out");
    EXPECT_THAT(log, HasSubstr("pip install numpy"));
    EXPECT_TRUE(emulator.no_leaks());
    EXPECT_EQ(emulator.stat("created"), 1);
}
#endif

}  // namespace

#endif
