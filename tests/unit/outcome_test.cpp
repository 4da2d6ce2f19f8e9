// The contract's rules for how a job ends (library/src/outcome.*), the public
// helpers the CLI and engines share (signal_name, json_text, estimate_cost) and the
// pre-flight check of a run's files.
#include "outcome.hpp"

#include "genesis/launch/cost.hpp"
#include "genesis/launch/job_launcher.hpp"
#include "genesis/launch/json_text.hpp"
#include "test_support.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <cmath>
#include <limits>

#include <sys/stat.h>

namespace launch = genesis::launch;
namespace detail = genesis::launch::detail;
using launch::outcome;
using std::chrono::milliseconds;

TEST(Outcome, SecondsTextIsWholeWhenItCanBe) {
    EXPECT_EQ(detail::seconds_text(milliseconds(5000)), "5s");
    EXPECT_EQ(detail::seconds_text(milliseconds(3600000)), "3600s");
    EXPECT_EQ(detail::seconds_text(milliseconds(500)), "0.5s");
    EXPECT_EQ(detail::seconds_text(milliseconds(1250)), "1.25s");
}

TEST(Outcome, SignalNames) {
    EXPECT_EQ(launch::signal_name(SIGKILL), "SIGKILL");
    EXPECT_EQ(launch::signal_name(SIGXCPU), "SIGXCPU");
    EXPECT_EQ(launch::signal_name(0), "signal 0");
    EXPECT_EQ(launch::signal_name(200), "signal 200");
    EXPECT_EQ(detail::signal_from_go_status("signal: killed"), SIGKILL);
    EXPECT_EQ(detail::signal_from_go_status("signal: segmentation fault (core dumped)"), SIGSEGV);
    EXPECT_EQ(detail::signal_from_go_status("signal: something else"), std::nullopt);
    EXPECT_EQ(detail::signal_from_go_status("exit status 1"), std::nullopt);
}

TEST(Outcome, ExitClassification) {
    launch::job_result r;
    detail::classify_exit(r, {0, std::nullopt, {}});
    EXPECT_EQ(r.result, outcome::ok);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_TRUE(r.diagnostic.empty());

    r = {};
    detail::classify_exit(r, {3, std::nullopt, {}});
    EXPECT_EQ(r.result, outcome::candidate_failed);
    EXPECT_EQ(r.diagnostic, "evaluator exited with status 3");

    r = {};
    detail::classify_exit(r, {std::nullopt, SIGSEGV, {}});
    EXPECT_EQ(r.result, outcome::candidate_failed);
    EXPECT_EQ(r.signal, SIGSEGV);
    EXPECT_FALSE(r.exit_code);
    EXPECT_EQ(r.diagnostic, "evaluator killed by SIGSEGV");

    // A signal the service named in words we do not know: its words are kept.
    r = {};
    detail::classify_exit(r, {std::nullopt, std::nullopt, "signal: stack fault"});
    EXPECT_EQ(r.result, outcome::candidate_failed);
    EXPECT_EQ(r.diagnostic, "evaluator killed by signal: stack fault");
}

TEST(Outcome, ResultsAndTheCorrectJsonRule) {
    genesis_test::temp_dir dir;
    // A failed job that wrote no correct.json: its diagnostic is the error.
    launch::job_result r;
    r.result = outcome::timeout;
    r.diagnostic = "time limit of 5s exceeded";
    detail::record_results(r, dir.path());
    EXPECT_FALSE(r.correct);
    EXPECT_EQ(r.error, "time limit of 5s exceeded");

    // correct.json's own error wins when the evaluator wrote one.
    genesis_test::write_file(dir / "correct.json", R"({"correct": false, "error": "bad shape"})");
    genesis_test::write_file(dir / "metrics.json", R"({"combined_score": 2.5})");
    r = {};
    r.result = outcome::candidate_failed;
    r.diagnostic = "evaluator exited with status 1";
    detail::record_results(r, dir.path());
    EXPECT_EQ(r.error, "bad shape");
    EXPECT_DOUBLE_EQ(r.combined_score, 2.5);
    EXPECT_EQ(r.result_files.size(), 2u);

    // Bytes a backend already holds are used instead of the files.
    r = {};
    r.result = outcome::ok;
    detail::record_results(r, dir.path(), std::string(R"({"combined_score": 7})"),
                           std::string(R"({"correct": true})"));
    EXPECT_TRUE(r.correct);
    EXPECT_TRUE(r.error.empty());
    EXPECT_DOUBLE_EQ(r.combined_score, 7.0);

    // No folder at all (setup failed before it was made): the rule still applies.
    r = {};
    r.result = outcome::setup_failed;
    r.diagnostic = "cannot create results directory";
    detail::record_results(r, dir / "missing");
    EXPECT_EQ(r.error, "cannot create results directory");
    EXPECT_TRUE(r.result_files.empty());
}

TEST(JsonText, NumbersAsPythonWritesThem) {
    EXPECT_EQ(launch::number_text(2.5), "2.5");
    EXPECT_EQ(launch::number_text(10.0), "10.0");
    EXPECT_EQ(launch::number_text(0.1), "0.1");
    EXPECT_EQ(launch::number_text(-0.0), "-0.0");
    EXPECT_EQ(launch::number_text(1e-4), "0.0001");
    EXPECT_EQ(launch::number_text(1e-5), "1e-05");
    EXPECT_EQ(launch::number_text(1e-7), "1e-07");
    EXPECT_EQ(launch::number_text(1.5e-7), "1.5e-07");
    EXPECT_EQ(launch::number_text(1e15), "1000000000000000.0");
    EXPECT_EQ(launch::number_text(1e16), "1e+16");
    EXPECT_EQ(launch::number_text(123456.789), "123456.789");
    EXPECT_EQ(launch::number_text(1.0 / 3), "0.3333333333333333");
    EXPECT_EQ(launch::number_text(1e300), "1e+300");
    EXPECT_EQ(launch::number_text(std::numeric_limits<double>::infinity()), "inf");
    EXPECT_EQ(launch::number_text(std::nan("")), "nan");
}

TEST(JsonText, CompactAndPrettyTextReadBackTheSame) {
    const auto v = boost::json::parse(R"({"a":2.5,"b":[1,10.0,"x\n"],"c":{},"d":[],"e":null,"f":true,"g":-3})");
    EXPECT_EQ(launch::json_text(v), R"({"a":2.5,"b":[1,10.0,"x\n"],"c":{},"d":[],"e":null,"f":true,"g":-3})");
    EXPECT_EQ(launch::json_text_pretty(boost::json::parse(R"({"a":[1,0.5],"b":{}})")),
              "{\n  \"a\": [\n    1,\n    0.5\n  ],\n  \"b\": {}\n}\n");
    EXPECT_EQ(boost::json::parse(launch::json_text_pretty(v)), v);
    boost::json::value nan = std::nan("");
    EXPECT_EQ(launch::json_text(nan), "null");
}

TEST(Cost, EstimateFromTheConfiguredRates) {
    launch::e2b_params p;
    p.cpus = 4;
    p.memory_mb = 2048;
    p.cost_per_cpu_second = 0.00001;
    p.cost_per_gib_second = 0.000002;
    const auto rates = launch::cost_rates(p);
    launch::job_result r;
    r.backend = "e2b";
    r.sandbox_seconds = 100;
    EXPECT_NEAR(launch::estimate_cost(r, rates), 100 * (4 * 0.00001 + 2 * 0.000002), 1e-12);
    r.backend = "local";
    EXPECT_EQ(launch::estimate_cost(r, rates), 0.0);
    // The template's defaults when the configuration names no size.
    const auto defaults = launch::cost_rates(launch::e2b_params{});
    EXPECT_EQ(defaults.cpus, 2);
    EXPECT_EQ(defaults.memory_mb, 512);
}

TEST(CheckInputs, EachMissingOrUnusableFileIsNamedWithItsKey) {
    genesis_test::temp_dir dir;
    genesis_test::write_file(dir / "evaluate.py", "");
    genesis_test::write_file(dir / "p.py", "");
    launch::launcher_config cfg;
    cfg.type = launch::job_type::local;
    cfg.local.python = "/bin/sh";
    cfg.eval_program_path = dir / "evaluate.py";
    EXPECT_EQ(launch::check_inputs(cfg, {dir / "p.py"}), std::nullopt);

    auto problem = launch::check_inputs(cfg, {dir / "missing.py"}, "programs");
    ASSERT_TRUE(problem);
    EXPECT_EQ(*problem, "program not found: " + (dir / "missing.py").string() + " (programs)");

    problem = launch::check_inputs(cfg, {dir.path()});
    ASSERT_TRUE(problem);
    EXPECT_EQ(*problem, "program " + dir.path().string() + " is a folder, not a file (evo_config.init_program_path)");

    cfg.local.python = "no-such-python-interpreter";
    problem = launch::check_inputs(cfg, {dir / "p.py"});
    ASSERT_TRUE(problem);
    EXPECT_EQ(*problem, "python interpreter 'no-such-python-interpreter' not found on PATH (job_config.python)");
    // The jobs' PATH is the configured one.
    genesis_test::write_file(dir / "bin" / "no-such-python-interpreter", "#!/bin/sh\n");
    ::chmod((dir / "bin" / "no-such-python-interpreter").c_str(), 0755);
    cfg.env_vars["PATH"] = (dir / "bin").string();
    EXPECT_EQ(launch::check_inputs(cfg, {dir / "p.py"}), std::nullopt);

    cfg.type = launch::job_type::e2b;
    cfg.e2b.additional_files["data/x.csv"] = (dir / "x.csv").string();
    problem = launch::check_inputs(cfg, {dir / "p.py"});
    ASSERT_TRUE(problem);
    EXPECT_EQ(*problem, "additional file not found: " + (dir / "x.csv").string() + " (job_config.additional_files.data/x.csv)");
}
