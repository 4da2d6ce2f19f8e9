// cli_e2b_test.cpp - genesis_launch against the E2B emulator: interruptions
// (SIGINT, SIGTERM) of a batch, a SIGKILLed run's orphans and the sweeps that
// kill them (`genesis_launch sweep`, job_config.sweep_on_start).
#if __has_include("emulator.hpp") && defined(GENESIS_CLI_PATH) && defined(GENESIS_E2B_EMULATOR_PATH)

#include "emulator_fixture.hpp"
#include "test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <signal.h>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using genesis_test::emulator_thread;
using genesis_test::env_list;
using genesis_test::eventually;
using genesis_test::read_file;
using genesis_test::temp_dir;
using genesis_test::write_file;
using genesis_test::yaml_quote;
using ::testing::HasSubstr;
using ::testing::Not;

// Finishes at once for a program without "SLOW" in it; otherwise prints
// "started" and sleeps (until cancelled).
constexpr const char* gate_py = R"PY(import argparse, json, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--program_path", required=True)
p.add_argument("--results_dir", required=True)
a, _ = p.parse_known_args()
os.makedirs(a.results_dir, exist_ok=True)
slow = "SLOW" in open(a.program_path).read()
if slow:
    print("started")
    sys.stdout.flush()
    time.sleep(600)
with open(os.path.join(a.results_dir, "metrics.json"), "w") as f:
    json.dump({"combined_score": 2.0}, f)
with open(os.path.join(a.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
print("done")
)PY";

std::vector<json::object> json_lines(const std::string& text) {
    std::vector<json::object> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        boost::system::error_code ec;
        auto v = json::parse(line, ec);
        EXPECT_FALSE(ec) << "not JSON: " << line;
        if (!ec && v.is_object()) out.push_back(v.as_object());
    }
    return out;
}

std::string str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : std::string(); }

// GET <url>/_emulator/stats with curl (the emulator program runs in another process).
std::optional<json::object> program_stats(const std::string& url) {
    const std::string cmd = "curl -sS --max-time 10 '" + url + "/_emulator/stats'";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return std::nullopt;
    std::string out;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
    boost::system::error_code ec;
    auto v = json::parse(out, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return v.as_object();
}

std::int64_t num(const json::object& o, const char* key) { return o.at(key).to_number<std::int64_t>(); }

class CliE2b : public ::testing::Test {
protected:
    static void SetUpTestSuite() { usable_ = genesis_test::bubblewrap_works(); }

    void SetUp() override {
        if (!usable_) GTEST_SKIP() << "bubblewrap cannot run sandboxes here";
        write_file(dir_ / "gate.py", gate_py);
        write_file(dir_ / "programs" / "fast.py", "print('fast')\n");
        write_file(dir_ / "programs" / "slow1.py", "# SLOW\n");
        write_file(dir_ / "programs" / "slow2.py", "# SLOW\n");
        write_file(configs() / "config.yaml",
                   "defaults:\n  - _self_\n  - cluster@_global_: e2b\n\n"
                   "evo_config:\n  job_type: e2b\n  max_parallel_jobs: 3\n  init_program_path: " +
                       yaml_quote((dir_ / "programs" / "fast.py").string()) +
                       "\n  results_dir: results\n\njob_config:\n  eval_program_path: " +
                       yaml_quote((dir_ / "gate.py").string()) + "\n");
        write_file(configs() / "cluster" / "e2b.yaml",
                   "job_config:\n  template: base\n  timeout: 120\n  create_rate: 50\n"
                   "evo_config:\n  job_type: e2b\n");
    }

    fs::path configs() const { return dir_ / "configs"; }
    fs::path results() const { return dir_ / "results"; }

    std::vector<std::string> args(std::vector<std::string> extra) const {
        std::vector<std::string> a{"--config-dir", configs().string()};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    static env_list env_for(const std::string& url, const std::string& key) {
        return {{"E2B_API_URL", url}, {"E2B_SANDBOX_URL", url}, {"E2B_API_KEY", key}};
    }

    struct done {
        int exit_code = -1;
        std::string out, err;
    };
    // A run or a sweep; a sweep has nothing to wait for once its requests are answered.
    done run(const std::vector<std::string>& a, const env_list& env) {
        genesis_test::logged_process p(GENESIS_CLI_PATH, a, dir_.path(), dir_ / "logs", env);
        done d;
        const bool is_sweep = !a.empty() && a.front() == "sweep";
        EXPECT_TRUE(p.wait(is_sweep ? 20s : 90s)) << "genesis_launch did not finish in time";
        d.exit_code = p.exit_code();
        d.out = p.out();
        d.err = p.err();
        return d;
    }

    void expect_interrupt(int signal_number, int expected_exit);

    static inline bool usable_ = false;
    temp_dir dir_;
};

// A batch of three: one finishes, two hang; the signal comes while the two run.
void CliE2b::expect_interrupt(int signal_number, int expected_exit) {
    emulator_thread emulator;
    std::string error;
    ASSERT_TRUE(emulator.start(error)) << error;
    genesis_test::logged_process p(GENESIS_CLI_PATH,
                                   args({"--json", "programs=" + (dir_ / "programs").string()}), dir_.path(),
                                   dir_ / "logs", env_for(emulator.url(), emulator.api_key()));
    // The fast job has reported, and both slow evaluators have been started in their sandboxes.
    const bool ready = eventually(
        [&] {
            return p.out().find("000_fast") != std::string::npos && emulator.stat("live") == 2 &&
                   emulator.requests("process.start") >= 3;
        },
        60s);
    ASSERT_TRUE(ready) << "stdout:\n" << p.out() << "\nstderr:\n" << p.err() << "\n"
                       << json::serialize(emulator.stats());

    const auto sent = std::chrono::steady_clock::now();
    ASSERT_EQ(::kill(p.pid(), signal_number), 0);
    ASSERT_TRUE(p.wait(20s)) << p.err();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent);
    RecordProperty("exit_after_signal_ms", static_cast<int>(took.count()));
    std::printf("[ measure  ] %s: exit %d after %lld ms\n", strsignal(signal_number), p.exit_code(),
                static_cast<long long>(took.count()));
    EXPECT_EQ(p.exit_code(), expected_exit) << p.err();
    EXPECT_LT(took, 5s);
    // Zero live sandboxes once the CLI has exited: every sandbox was killed.
    EXPECT_EQ(emulator.stat("live"), 0);
    EXPECT_TRUE(emulator.no_leaks());
    EXPECT_EQ(emulator.stat("created"), 3);

    // Partial results: the finished job in --json and on disk, the other two cancelled.
    const auto lines = json_lines(p.out());
    ASSERT_EQ(lines.size(), 3u) << p.out();
    std::map<std::string, json::object> by_id;
    for (const auto& o : lines) by_id[str(o.at("job_id"))] = o;
    ASSERT_TRUE(by_id.count("000_fast")) << p.out();
    const auto& fast = by_id["000_fast"];
    EXPECT_EQ(str(fast.at("outcome")), "ok");
    EXPECT_EQ(fast.at("correct"), true);
    EXPECT_TRUE(fs::is_regular_file(fs::path(str(fast.at("results_dir"))) / "metrics.json"));
    EXPECT_TRUE(fs::is_regular_file(fs::path(str(fast.at("results_dir"))) / "correct.json"));
    for (const char* id : {"001_slow1", "002_slow2"}) {
        ASSERT_TRUE(by_id.count(id)) << p.out();
        EXPECT_EQ(str(by_id[id].at("outcome")), "cancelled") << json::serialize(by_id[id]);
    }
    EXPECT_THAT(p.err(), HasSubstr("interrupted: cancelling 2 jobs"));
}

TEST_F(CliE2b, SigintMidBatchExits130WithinFiveSecondsKeepsFinishedResultsAndLeavesNoSandbox) {
    expect_interrupt(SIGINT, 130);
}

TEST_F(CliE2b, SigtermMidBatchExits143WithinFiveSecondsKeepsFinishedResultsAndLeavesNoSandbox) {
    expect_interrupt(SIGTERM, 143);
}

// The emulator program; a batch SIGKILLed mid-run leaves its sandboxes alive;
// `genesis_launch sweep --run-tag` (after a dry run that kills nothing) kills them all.
TEST_F(CliE2b, SweepCommandKillsTheOrphansOfASigkilledRun) {
    if (std::system("curl --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no curl";
    genesis_test::emulator_process emulator(GENESIS_E2B_EMULATOR_PATH, {"--port", "0"});
    ASSERT_TRUE(emulator.ready());
    const std::string url = emulator.field("api_url");
    const env_list env = env_for(url, emulator.field("api_key"));
    const std::string tag = "orphans-" + std::to_string(::getpid());

    {
        genesis_test::logged_process p(
            GENESIS_CLI_PATH,
            args({"--json", "programs=[" + (dir_ / "programs" / "slow1.py").string() + "," +
                                (dir_ / "programs" / "slow2.py").string() + "]",
                  "job_config.run_tag=" + tag}),
            dir_.path(), dir_ / "logs", env);
        const bool running = eventually(
            [&] {
                auto s = program_stats(url);
                if (!s) return false;
                const auto& by = s->at("requests").at("by_endpoint").as_object();
                const auto* starts = by.if_contains("process.start");
                return num(*s, "live") == 2 && starts && starts->to_number<std::int64_t>() >= 2;
            },
            60s);
        ASSERT_TRUE(running) << p.err();
        ASSERT_EQ(::kill(p.pid(), SIGKILL), 0);
        ASSERT_TRUE(p.wait(10s));
        EXPECT_EQ(p.exit_code(), -1);  // killed by a signal
    }
    auto stats = program_stats(url);
    ASSERT_TRUE(stats);
    EXPECT_EQ(num(*stats, "live"), 2) << "the orphans are alive after SIGKILL";

    // A dry run lists both and kills nothing.
    auto dry = run({"sweep", "--config-dir", configs().string(), "--run-tag", tag, "--dry-run"}, env);
    EXPECT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_EQ(std::count(dry.out.begin(), dry.out.end(), '\n'), 3) << dry.out;
    EXPECT_THAT(dry.out, HasSubstr("would kill "));
    EXPECT_THAT(dry.out, HasSubstr("2 sandboxes tagged genesis_run=" + tag + " (dry run: nothing killed)"));
    EXPECT_EQ(num(*program_stats(url), "live"), 2);

    auto swept = run({"sweep", "--config-dir", configs().string(), "--run-tag", tag, "--json"}, env);
    EXPECT_EQ(swept.exit_code, 0) << swept.err;
    const auto report = json::parse(swept.out).as_object();
    EXPECT_EQ(num(report, "found"), 2);
    EXPECT_EQ(num(report, "killed"), 2);
    EXPECT_EQ(num(report, "failed"), 0);
    for (const auto& s : report.at("sandboxes").as_array()) {
        EXPECT_EQ(str(s.at("run_tag")), tag);
        EXPECT_THAT(str(s.at("job_id")), HasSubstr("_slow"));
    }
    EXPECT_THAT(swept.out + swept.err, Not(HasSubstr(emulator.field("api_key"))));
    stats = program_stats(url);
    ASSERT_TRUE(stats);
    EXPECT_EQ(num(*stats, "live"), 0);
    EXPECT_EQ(num(*stats, "killed"), 2);

    // Nothing left: a second sweep finds nothing and still succeeds.
    auto again = run({"sweep", "--config-dir", configs().string(), "--run-tag", tag}, env);
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_THAT(again.out, HasSubstr("0 sandboxes tagged genesis_run=" + tag + ": 0 killed"));
    EXPECT_EQ(emulator.stop(), 0);
}

// The next run with job_config.sweep_on_start and the same run tag kills the orphans first.
TEST_F(CliE2b, SweepOnStartKillsOrphansOfTheSameRunTag) {
    emulator_thread emulator;
    std::string error;
    ASSERT_TRUE(emulator.start(error)) << error;
    std::map<std::string, std::string> ours{{"genesis_run", "again"}, {"genesis_job", "000_x"}};
    std::map<std::string, std::string> other{{"genesis_run", "someone-else"}};
    const std::string a = emulator.plant_sandbox(ours, 600s);
    const std::string b = emulator.plant_sandbox(ours, 600s);
    const std::string c = emulator.plant_sandbox(other, 600s);

    auto r = run(args({"--json", "job_config.run_tag=again", "job_config.sweep_on_start=true"}),
                 env_for(emulator.url(), emulator.api_key()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("start-up sweep: killed 2 leftover sandbox(es) tagged genesis_run=again"));
    std::set<std::string> ended;
    for (const auto& e : emulator.ended()) ended.insert(e.id);
    EXPECT_TRUE(ended.count(a));
    EXPECT_TRUE(ended.count(b));
    EXPECT_FALSE(ended.count(c)) << "a sandbox of another run tag was killed";
    EXPECT_EQ(emulator.stat("live"), 1);
}

// --all-of-mine kills every sandbox with a genesis_run tag and nothing else;
// without a tag, a sweep is refused before anything is listed.
TEST_F(CliE2b, SweepAllOfMineSparesSandboxesNotMadeByGenesisLaunch) {
    emulator_thread emulator;
    std::string error;
    ASSERT_TRUE(emulator.start(error)) << error;
    const env_list env = env_for(emulator.url(), emulator.api_key());
    std::map<std::string, std::string> run_x{{"genesis_run", "x"}, {"genesis_job", "a"}};
    std::map<std::string, std::string> run_y{{"genesis_run", "y"}};
    std::map<std::string, std::string> foreign{{"owner", "notebook"}};
    const std::string x = emulator.plant_sandbox(run_x, 600s);
    const std::string y = emulator.plant_sandbox(run_y, 600s);
    const std::string f = emulator.plant_sandbox(foreign, 600s);

    auto refused = run({"sweep", "--config-dir", configs().string()}, env);
    EXPECT_EQ(refused.exit_code, 2);
    EXPECT_THAT(refused.err, HasSubstr("say which sandboxes to kill: --run-tag TAG, --all-of-mine"));
    auto both = run({"sweep", "--config-dir", configs().string(), "--run-tag", "x", "--all-of-mine"}, env);
    EXPECT_EQ(both.exit_code, 2);
    EXPECT_THAT(both.err, HasSubstr("excludes"));
    EXPECT_EQ(emulator.requests("list"), 0);
    EXPECT_EQ(emulator.stat("live"), 3);

    auto swept = run({"sweep", "--config-dir", configs().string(), "--all-of-mine"}, env);
    EXPECT_EQ(swept.exit_code, 0) << swept.err;
    EXPECT_THAT(swept.out, HasSubstr("killed     " + x + "  genesis_run=x  genesis_job=a"));
    EXPECT_THAT(swept.out, HasSubstr("killed     " + y + "  genesis_run=y"));
    EXPECT_THAT(swept.out, HasSubstr("2 sandboxes tagged by genesis-launch: 2 killed"));
    EXPECT_THAT(swept.out, Not(HasSubstr(f)));
    EXPECT_EQ(emulator.stat("live"), 1);

    // A rejected key: a clear error, exit 2 (as for a run), the key not echoed.
    const std::string wrong = "e2b_" + std::string(40, '7');
    auto denied = run({"sweep", "--config-dir", configs().string(), "--all-of-mine"},
                      env_for(emulator.url(), wrong));
    EXPECT_EQ(denied.exit_code, 2);
    EXPECT_THAT(denied.err, HasSubstr("genesis_launch sweep: error: E2B rejected the API key (E2B_API_KEY): list sandboxes: HTTP 401"));
    EXPECT_THAT(denied.err + denied.out, Not(HasSubstr(wrong)));
}

}  // namespace

#endif
