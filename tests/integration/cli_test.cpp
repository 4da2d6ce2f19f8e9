// cli_test.cpp - the genesis_launch binary, run as a subprocess against a
// throwaway config folder (and once against the bundled circle-packing example).
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef GENESIS_CLI_PATH
#error "GENESIS_CLI_PATH must name the genesis_launch binary"
#endif

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using genesis_test::eventually;
using genesis_test::processes_mentioning;
using genesis_test::read_file;
using genesis_test::temp_dir;
using genesis_test::write_file;
using genesis_test::yaml_quote;

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

using genesis_test::env_list;

// genesis_launch as a child process; stdout and stderr go to files.
class cli_process : public genesis_test::logged_process {
public:
    cli_process(const std::vector<std::string>& args, const fs::path& cwd, const fs::path& log_dir,
                const env_list& env = {})
        : logged_process(GENESIS_CLI_PATH, args, cwd, log_dir, env) {}
};

struct cli_result {
    bool finished = false;
    int exit_code = -1;
    std::string out, err;
};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    return lines;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// Single-quoted YAML scalar.
std::string python() { return GENESIS_TEST_PYTHON; }

std::vector<boost::json::object> parse_json_lines(const std::string& out) {
    std::vector<boost::json::object> objects;
    for (const auto& line : lines_of(out)) {
        boost::system::error_code ec;
        boost::json::value v = boost::json::parse(line, ec);
        EXPECT_FALSE(ec) << "not JSON: " << line;
        EXPECT_TRUE(v.is_object()) << "not a JSON object: " << line;
        if (!ec && v.is_object()) objects.push_back(v.get_object());
    }
    return objects;
}

void expect_job_schema(const boost::json::object& o) {
    using boost::json::value;
    auto is_string = [](const value& v) { return v.is_string(); };
    auto is_bool = [](const value& v) { return v.is_bool(); };
    auto is_number = [](const value& v) { return v.is_number(); };
    auto is_object = [](const value& v) { return v.is_object(); };
    auto is_array = [](const value& v) { return v.is_array(); };
    auto int_or_null = [](const value& v) { return v.is_int64() || v.is_null(); };
    auto string_or_null = [](const value& v) { return v.is_string() || v.is_null(); };
    auto number_or_null = [](const value& v) { return v.is_number() || v.is_null(); };
    const std::vector<std::pair<const char*, std::function<bool(const value&)>>> schema{
        {"job_id", is_string},          {"program", is_string},          {"outcome", is_string},
        {"correct", is_bool},           {"error", string_or_null},       {"exit_code", int_or_null},
        {"signal", int_or_null},        {"combined_score", is_number},   {"metrics", is_object},
        {"results_dir", is_string},     {"result_files", is_array},      {"timings", is_object},
        {"diagnostic", string_or_null}, {"warnings", is_array},          {"backend", is_string},
        {"sandbox_id", string_or_null}, {"sandbox_seconds", number_or_null}, {"stdout_truncated", is_bool},   {"stderr_truncated", is_bool},
    };
    for (const auto& [key, check] : schema) {
        const value* v = o.if_contains(key);
        EXPECT_TRUE(v && check(*v)) << "bad or missing '" << key << "' in " << boost::json::serialize(o);
    }
    EXPECT_EQ(o.size(), schema.size()) << boost::json::serialize(o);
    if (const value* t = o.if_contains("timings"); t && t->is_object()) {
        for (const char* key : {"queued_s", "create_s", "setup_s", "run_s", "download_s", "cleanup_s", "total_s"}) {
            const value* d = t->get_object().if_contains(key);
            EXPECT_TRUE(d && d->is_number()) << "timings." << key;
        }
    }
}

// ---------------------------------------------------------------------------
// Fixture: a throwaway working directory with its own config folder
// ---------------------------------------------------------------------------

class CliTest : public ::testing::Test {
protected:
    void SetUp() override {
        const fs::path data = GENESIS_TEST_DATA_DIR;
        write_file(configs() / "config.yaml",
                   "defaults:\n"
                   "  - _self_\n"
                   "  - cluster@_global_: local\n"
                   "  - variant@_global_: ok\n"
                   "\n"
                   "evo_config:\n"
                   "  job_type: local\n"
                   "  max_parallel_jobs: 2\n"
                   "  init_program_path: " +
                       yaml_quote((data / "programs" / "good.py").string()) +
                       "\n"
                       "  results_dir: results\n"
                       "\n"
                       "job_config:\n"
                       "  eval_program_path: " +
                       yaml_quote((data / "evaluators" / "ok.py").string()) +
                       "\n"
                       "  extra_cmd_args: {}\n"
                       "  env_vars: {}\n");
        write_file(configs() / "cluster" / "local.yaml",
                   "job_config:\n"
                   "  python: " +
                       yaml_quote(python()) +
                       "\n"
                       "  time: null\n"
                       "  conda_env: null\n"
                       "evo_config:\n"
                       "  job_type: local\n"
                       "  max_parallel_jobs: 2\n");
        for (const char* name : {"ok", "fail", "sleep"})
            write_file(configs() / "variant" / (std::string(name) + ".yaml"),
                       "job_config:\n  eval_program_path: " +
                           yaml_quote((data / "evaluators" / (std::string(name) + ".py")).string()) + "\n");
        // Line 3 opens a flow sequence that is never closed.
        write_file(configs() / "variant" / "broken.yaml",
                   "job_config:\n"
                   "  time: 10\n"
                   "  extra_cmd_args: [unclosed, list\n"
                   "evo_config:\n"
                   "  max_parallel_jobs: 1\n");
    }

    fs::path root() const { return dir_.path(); }
    fs::path configs() const { return dir_.path() / "configs"; }
    fs::path results() const { return dir_.path() / "results"; }

    cli_result run(const std::vector<std::string>& args, std::chrono::milliseconds limit = 60s,
                   const fs::path& cwd = {}, const env_list& env = {}) {
        cli_process p(args, cwd.empty() ? root() : cwd, root() / "logs", env);
        cli_result r;
        r.finished = p.wait(limit);
        r.exit_code = p.exit_code();
        r.out = p.out();
        r.err = p.err();
        EXPECT_TRUE(r.finished) << "genesis_launch did not finish in time\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
        return r;
    }

    // The first file called `name` under the results folder.
    fs::path find_result_file(const std::string& name) const {
        std::error_code ec;
        if (!fs::exists(results(), ec)) return {};
        for (auto it = fs::recursive_directory_iterator(results(), ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec))
            if (it->path().filename() == name) return it->path();
        return {};
    }

    void expect_interrupt(int signal_number, int expected_exit);

    temp_dir dir_;
};

std::string describe(const cli_result& r) {
    return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// ---------------------------------------------------------------------------
// Single mode
// ---------------------------------------------------------------------------

TEST_F(CliTest, OkEvaluatorExitsZeroAndPrintsSummary) {
    const cli_result r = run({"variant=ok"});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(outcome\s+ok)"))) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(correct\s+true)"))) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(score\s+1\.5\b)"))) << r.out;
    EXPECT_TRUE(contains(r.out, "metrics.json")) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(results/run_\d{8}_\d{6}_[0-9a-f]{4})"))) << r.out;
    // Non-terminal stderr: one line per finished job.
    EXPECT_TRUE(contains(r.err, "[1/1] good ok correct=true score=1.5")) << r.err;
    // <results_dir>/<run-id>/<job_id>
    const fs::path metrics = find_result_file("metrics.json");
    ASSERT_FALSE(metrics.empty());
    EXPECT_EQ(metrics.parent_path().filename(), "good");
    EXPECT_TRUE(std::regex_match(metrics.parent_path().parent_path().filename().string(),
                                 std::regex(R"(run_\d{8}_\d{6}_[0-9a-f]{4})")));
}

TEST_F(CliTest, FailingEvaluatorExitsOneAndShowsStderrTail) {
    const cli_result r = run({"variant=fail"});
    ASSERT_EQ(r.exit_code, 1) << describe(r);
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(outcome\s+candidate_failed)"))) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(error\s+boom)"))) << r.out;
    EXPECT_TRUE(contains(r.out, "code 3")) << r.out;
    EXPECT_TRUE(contains(r.out, "RuntimeError: boom")) << r.out;
}

TEST_F(CliTest, MissingProgramIsAConfigurationError) {
    const cli_result r = run({"evo_config.init_program_path=" + (root() / "nope.py").string()});
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_TRUE(contains(r.err, "genesis_launch: error:")) << r.err;
    EXPECT_TRUE(contains(r.err, "nope.py")) << r.err;
    EXPECT_FALSE(fs::exists(results()));
}

// ---------------------------------------------------------------------------
// Usage and configuration errors: exit 2, nothing launched
// ---------------------------------------------------------------------------

TEST_F(CliTest, MistypedOverrideKeySuggestsTheRightOne) {
    const cli_result r = run({"job_config.tme=3"});
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_TRUE(contains(r.err, "genesis_launch: error:")) << r.err;
    EXPECT_TRUE(contains(r.err, "tme")) << r.err;
    EXPECT_TRUE(contains(r.err, "did you mean")) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_FALSE(fs::exists(results()));
}

TEST_F(CliTest, UnknownVariantIsAConfigurationError) {
    const cli_result r = run({"variant=does_not_exist"});
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_TRUE(contains(r.err, "genesis_launch: error:")) << r.err;
    EXPECT_TRUE(contains(r.err, "does_not_exist")) << r.err;
    EXPECT_FALSE(fs::exists(results()));
}

TEST_F(CliTest, YamlSyntaxErrorNamesFileAndLine) {
    const cli_result r = run({"variant=broken"});
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_TRUE(contains(r.err, "genesis_launch: error:")) << r.err;
    EXPECT_TRUE(std::regex_search(r.err, std::regex(R"(broken\.yaml:\d+)"))) << r.err;
    EXPECT_FALSE(fs::exists(results()));
}

TEST_F(CliTest, UnknownOptionIsAUsageError) {
    const cli_result r = run({"--no-such-option"});
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_TRUE(contains(r.err, "genesis_launch: error:")) << r.err;
}

// ---------------------------------------------------------------------------
// --json and batch mode
// ---------------------------------------------------------------------------

TEST_F(CliTest, JsonBatchFromListGivesOneObjectPerJob) {
    const fs::path good = genesis_test::program("good.py"), bad = genesis_test::program("bad.py");
    const cli_result r = run({"--json", "programs=[" + good.string() + "," + bad.string() + "]"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);  // ok.py accepts any candidate
    const auto lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), 2u) << r.out;
    const auto objects = parse_json_lines(r.out);
    ASSERT_EQ(objects.size(), 2u);
    std::set<std::string> ids, programs;
    for (const auto& o : objects) {
        expect_job_schema(o);
        ids.insert(std::string(o.at("job_id").as_string()));
        programs.insert(std::string(o.at("program").as_string()));
        EXPECT_EQ(o.at("outcome").as_string(), "ok");
        EXPECT_TRUE(o.at("correct").as_bool());
        EXPECT_DOUBLE_EQ(o.at("combined_score").to_number<double>(), 1.5);
        EXPECT_EQ(o.at("exit_code").to_number<int>(), 0);
        EXPECT_TRUE(o.at("signal").is_null());
        EXPECT_EQ(o.at("backend").as_string(), "local");
        EXPECT_TRUE(o.at("metrics").as_object().contains("public"));
        const fs::path dir(std::string(o.at("results_dir").as_string()));
        EXPECT_EQ(dir.filename().string(), std::string(o.at("job_id").as_string()));
        EXPECT_TRUE(fs::exists(dir / "metrics.json"));
    }
    EXPECT_EQ(ids, (std::set<std::string>{"000_good", "001_bad"}));
    EXPECT_EQ(programs, (std::set<std::string>{good.string(), bad.string()}));
    // The one-line summary goes to stderr.
    EXPECT_TRUE(contains(r.err, "2 jobs")) << r.err;
}

TEST_F(CliTest, JsonBatchFromFolderUsesSortedFiles) {
    const fs::path folder = root() / "candidates";
    fs::create_directories(folder);
    fs::copy_file(genesis_test::program("good.py"), folder / "good.py");
    fs::copy_file(genesis_test::program("bad.py"), folder / "bad.py");
    const cli_result r = run({"--json", "programs=" + folder.string()});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    const auto objects = parse_json_lines(r.out);
    ASSERT_EQ(objects.size(), 2u) << r.out;
    std::set<std::string> ids;
    for (const auto& o : objects) {
        expect_job_schema(o);
        ids.insert(std::string(o.at("job_id").as_string()));
    }
    EXPECT_EQ(ids, (std::set<std::string>{"000_bad", "001_good"}));
}

TEST_F(CliTest, JsonReportsAFailedJob) {
    const cli_result r = run({"--json", "variant=fail"});
    EXPECT_EQ(r.exit_code, 1) << describe(r);
    const auto objects = parse_json_lines(r.out);
    ASSERT_EQ(objects.size(), 1u) << r.out;
    const auto& o = objects.front();
    expect_job_schema(o);
    EXPECT_EQ(o.at("job_id").as_string(), "good");
    EXPECT_EQ(o.at("outcome").as_string(), "candidate_failed");
    EXPECT_FALSE(o.at("correct").as_bool());
    EXPECT_EQ(o.at("error").as_string(), "boom");
    EXPECT_EQ(o.at("exit_code").to_number<int>(), 3);
}

TEST_F(CliTest, BatchWithoutJsonPrintsTableAndJobLines) {
    const fs::path good = genesis_test::program("good.py"), bad = genesis_test::program("bad.py");
    const cli_result r = run({"variant=fail", "programs=[" + good.string() + "," + bad.string() + "]"});
    EXPECT_EQ(r.exit_code, 1) << describe(r);
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(job_id\s+outcome\s+correct\s+score\s+time\s+error)"))) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(000_good\s+candidate_failed\s+false)"))) << r.out;
    EXPECT_TRUE(contains(r.out, "2 jobs: candidate_failed 2")) << r.out;
    EXPECT_TRUE(contains(r.out, "best: none")) << r.out;
    EXPECT_TRUE(contains(r.err, "[1/2]")) << r.err;
    EXPECT_TRUE(contains(r.err, "[2/2]")) << r.err;
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

void CliTest::expect_interrupt(int signal_number, int expected_exit) {
    cli_process p({"variant=sleep"}, root(), root() / "logs");
    // The evaluator is running once its log says so.
    const bool started = eventually(
        [&] {
            const fs::path log = find_result_file("job_log.out");
            return !log.empty() && contains(read_file(log), "started");
        },
        30s);
    ASSERT_TRUE(started) << "the sleep evaluator never started\nstderr:\n" << p.err();
    ASSERT_FALSE(processes_mentioning(results().string()).empty()) << "no evaluator process found";

    const auto sent = std::chrono::steady_clock::now();
    ASSERT_EQ(::kill(p.pid(), signal_number), 0);
    ASSERT_TRUE(p.wait(15s)) << "no exit after the signal\nstderr:\n" << p.err();
    const auto took = std::chrono::steady_clock::now() - sent;
    EXPECT_EQ(p.exit_code(), expected_exit) << "stdout:\n" << p.out() << "\nstderr:\n" << p.err();
    EXPECT_LT(took, 10s);
    EXPECT_TRUE(contains(p.err(), "interrupted: cancelling 1 job")) << p.err();
    EXPECT_TRUE(contains(p.out(), "cancelled")) << p.out();
    // The evaluator (its command line holds the results path) is gone.
    EXPECT_TRUE(eventually([&] { return processes_mentioning(results().string()).empty(); }, 5s));
}

TEST_F(CliTest, SigintCancelsRunningJobAndExits130) { expect_interrupt(SIGINT, 130); }

TEST_F(CliTest, SigtermCancelsRunningJobAndExits143) { expect_interrupt(SIGTERM, 143); }

// ---------------------------------------------------------------------------
// Help, version, --print-config
// ---------------------------------------------------------------------------

TEST_F(CliTest, HelpListsConfigGroupsAndExitCodes) {
    const cli_result r = run({"--config-dir", configs().string(), "--help"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "--json")) << r.out;
    EXPECT_TRUE(contains(r.out, "Config groups in")) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(cluster:\s+local)"))) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(variant:.*broken.*fail.*ok.*sleep)"))) << r.out;
    EXPECT_TRUE(contains(r.out, "Exit codes")) << r.out;
    EXPECT_TRUE(contains(r.out, "130")) << r.out;
    EXPECT_TRUE(contains(r.out, "143")) << r.out;
    EXPECT_TRUE(contains(r.out, "job_config.timeout=600")) << r.out;
}

TEST_F(CliTest, VersionPrintsTheLibraryVersion) {
    const cli_result r = run({"--version"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\d+\.\d+\.\d+)"))) << r.out;
}

TEST_F(CliTest, PrintConfigWritesNumbersAsYamlAndPythonDo) {
    const cli_result r = run({"--print-config", "+task.lambda=10.0", "+task.ratio=0.1", "+task.tiny=1.5e-7", "+task.count=3"});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "\"lambda\": 10.0")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"ratio\": 0.1")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"tiny\": 1.5e-07")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"count\": 3\n")) << r.out;
}

TEST_F(CliTest, PrintConfigShowsMergedTreeWithOverrides) {
    const cli_result r = run({"--print-config", "variant=fail", "--results-dir", "elsewhere", "+exp_name=hello"});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(r.out, ec);
    ASSERT_FALSE(ec) << r.out;
    ASSERT_TRUE(v.is_object());
    const auto& tree = v.get_object();
    ASSERT_TRUE(tree.contains("job_config"));
    EXPECT_TRUE(contains(boost::json::serialize(tree.at("job_config")), "fail.py")) << r.out;
    EXPECT_EQ(tree.at("evo_config").at("results_dir").as_string(), "elsewhere");
    EXPECT_EQ(tree.at("exp_name").as_string(), "hello");
    EXPECT_FALSE(fs::exists(root() / "elsewhere"));
}

TEST_F(CliTest, PrintConfigNeverShowsTheApiKey) {
    const std::string secret = "e2b_secret_do_not_print_1234567890";
    const cli_result r = run({"--print-config", "cluster=e2b", "variant=circle_packing_example"}, 60s,
                             GENESIS_SOURCE_DIR, {{"E2B_API_KEY", secret}});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_FALSE(contains(r.out, secret));
    EXPECT_FALSE(contains(r.err, secret));
}

// ---------------------------------------------------------------------------
// The bundled example, from the repository root
// ---------------------------------------------------------------------------

TEST_F(CliTest, CirclePackingExampleScoresAboveOnePointFive) {
    const cli_result r = run({"variant=circle_packing_example", "cluster=local", "job_config.python=" + python(),
                              "--json", "--results-dir", results().string()},
                             100s, GENESIS_SOURCE_DIR);
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    const auto objects = parse_json_lines(r.out);
    ASSERT_EQ(objects.size(), 1u) << r.out;
    const auto& o = objects.front();
    expect_job_schema(o);
    EXPECT_EQ(o.at("outcome").as_string(), "ok") << boost::json::serialize(o);
    EXPECT_TRUE(o.at("correct").as_bool()) << boost::json::serialize(o);
    EXPECT_GT(o.at("combined_score").to_number<double>(), 1.5) << boost::json::serialize(o);
    EXPECT_TRUE(std::string(o.at("results_dir").as_string()).starts_with(results().string()));
}

}  // namespace
