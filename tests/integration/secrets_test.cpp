// secrets_test.cpp - the E2B API key and the envd access tokens never show up in
// anything genesis-launch writes: stdout, stderr, --json, job logs, result files,
// job results, the launcher's log at debug level, exception texts. Jobs run
// against the emulator with faults injected (5xx, 429, connection resets, 401),
// so that the error paths (retries, failures, messages) are exercised too.
#if __has_include("emulator.hpp") && defined(GENESIS_CLI_PATH)

#include "emulator_fixture.hpp"
#include "test_support.hpp"

#include <genesis/launch/launch.hpp>
#include <genesis/launch/sweep.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace gl = genesis::launch;
namespace emu = genesis::e2b_emulator;
using namespace std::chrono_literals;
using genesis_test::emulator_thread;
using genesis_test::env_list;
using genesis_test::read_file;
using genesis_test::temp_dir;
using genesis_test::write_file;
using genesis_test::yaml_quote;

emu::fault_rule fault(std::string endpoint, std::string kind, int status = 500, int count = 1, int skip = 0) {
    emu::fault_rule r;
    r.endpoint = std::move(endpoint);
    r.kind = std::move(kind);
    r.status = status;
    r.count = count;
    r.skip = skip;
    if (status == 429) r.retry_after = 0;
    return r;
}

// Transient faults that the retries absorb, and a 401 from envd that ends a job.
std::vector<emu::fault_rule> the_faults() {
    return {fault("create", "status", 500),       fault("create", "status", 429),
            fault("files.upload", "reset"),       fault("process.start", "status", 503),
            fault("files.download", "status", 401), fault("kill", "status", 502),
            fault("list", "status", 500)};
}

// Every regular file below `root`, concatenated (binary).
std::string all_files_below(const fs::path& root, std::size_t& count) {
    std::string all;
    std::error_code ec;
    if (!fs::exists(root, ec)) return all;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (!it->is_regular_file()) continue;
        all += read_file(it->path());
        all += '\n';
        ++count;
    }
    return all;
}

class Secrets : public ::testing::Test {
protected:
    void SetUp() override {
        if (!genesis_test::bubblewrap_works()) GTEST_SKIP() << "bubblewrap cannot run sandboxes here";
        std::string error;
        ASSERT_TRUE(emulator_.start(error)) << error;
        write_file(dir_ / "programs" / "a.py", "print('a')\n");
        write_file(dir_ / "programs" / "b.py", "print('b')\n");
        write_file(dir_ / "programs" / "c.py", "print('c')\n");
        write_file(dir_ / "programs" / "d.py", "print('d')\n");
        const fs::path ok = fs::path(GENESIS_TEST_DATA_DIR) / "evaluators" / "ok.py";
        write_file(dir_ / "configs" / "config.yaml",
                   "defaults:\n  - _self_\n  - cluster@_global_: e2b\n\n"
                   "evo_config:\n  job_type: e2b\n  max_parallel_jobs: 2\n  init_program_path: " +
                       yaml_quote((dir_ / "programs" / "a.py").string()) +
                       "\n  results_dir: results\n\njob_config:\n  eval_program_path: " + yaml_quote(ok.string()) +
                       "\n");
        write_file(dir_ / "configs" / "cluster" / "e2b.yaml",
                   "job_config:\n  template: base\n  timeout: 60\n  create_rate: 100\n"
                   "evo_config:\n  job_type: e2b\n");
    }

    // The secrets the emulator handed out so far: the key and every access token.
    std::vector<std::string> secrets() {
        std::vector<std::string> s{emulator_.api_key()};
        for (const auto& sb : emulator_.ended())
            if (!sb.access_token.empty()) s.push_back(sb.access_token);
        return s;
    }

    void expect_clean(const std::string& text, const std::string& what) {
        for (const auto& secret : secrets()) {
            ASSERT_FALSE(secret.empty());
            EXPECT_EQ(text.find(secret), std::string::npos) << what << " holds a secret";
            // Not even a long piece of it (a secret cut in a message).
            EXPECT_EQ(text.find(secret.substr(secret.size() / 2)), std::string::npos) << what << " holds part of a secret";
        }
    }

    emulator_thread emulator_;
    temp_dir dir_;
};

TEST_F(Secrets, CliAtVerboseLevelWithFaultsNeverPrintsOrWritesTheKeyOrAccessTokens) {
    emulator_.set_faults(the_faults());
    const env_list env{{"E2B_API_URL", emulator_.url()}, {"E2B_SANDBOX_URL", emulator_.url()},
                       {"E2B_API_KEY", emulator_.api_key()}};
    genesis_test::logged_process p(GENESIS_CLI_PATH,
                                   {"--config-dir", (dir_ / "configs").string(), "--verbose", "--json",
                                    "programs=" + (dir_ / "programs").string()},
                                   dir_.path(), dir_ / "logs", env);
    ASSERT_TRUE(p.wait(120s)) << p.err();
    // The faults fired, the job hit by the 401 failed, the run is over and clean.
    EXPECT_GE(emulator_.stat("faults_injected"), 6);
    EXPECT_EQ(p.exit_code(), 3) << p.err();
    EXPECT_TRUE(emulator_.no_leaks());
    const std::string out = p.out(), err = p.err();
    EXPECT_THAT(err, ::testing::HasSubstr("debug"));  // the most verbose level was on
    std::size_t lines = 0;
    for (char c : out) lines += c == '\n';
    EXPECT_EQ(lines, 4u) << out;
    std::size_t files = 0;
    const std::string results = all_files_below(dir_ / "results", files);
    EXPECT_GE(files, 8u);  // job logs and result files of four jobs
    ASSERT_GE(secrets().size(), 5u) << "every sandbox had an access token";
    expect_clean(out, "stdout (--json)");
    expect_clean(err, "stderr (--verbose)");
    expect_clean(results, "the results folder");

    // The sweep command too, at its most talkative (dry run, JSON).
    genesis_test::logged_process sweep(GENESIS_CLI_PATH,
                                       {"sweep", "--config-dir", (dir_ / "configs").string(), "--all-of-mine",
                                        "--dry-run", "--json"},
                                       dir_.path(), dir_ / "logs", env);
    ASSERT_TRUE(sweep.wait(60s));
    EXPECT_EQ(sweep.exit_code(), 0) << sweep.err();
    expect_clean(sweep.out() + sweep.err(), "sweep output");
}

TEST_F(Secrets, RejectedKeyIsNotEchoedAnywhere) {
    const std::string wrong = "e2b_" + std::string(40, 'f');
    const env_list env{{"E2B_API_URL", emulator_.url()}, {"E2B_SANDBOX_URL", emulator_.url()},
                       {"E2B_API_KEY", wrong}};
    genesis_test::logged_process p(GENESIS_CLI_PATH,
                                   {"--config-dir", (dir_ / "configs").string(), "--verbose", "--json"},
                                   dir_.path(), dir_ / "logs", env);
    ASSERT_TRUE(p.wait(60s));
    EXPECT_EQ(p.exit_code(), 2) << p.err();
    EXPECT_THAT(p.err(), ::testing::HasSubstr("E2B rejected the API key (E2B_API_KEY)"));
    EXPECT_EQ(emulator_.stat("created"), 0);
    std::size_t files = 0;
    const std::string everything = p.out() + p.err() + all_files_below(dir_ / "results", files);
    EXPECT_EQ(everything.find(wrong), std::string::npos);
    EXPECT_EQ(everything.find(wrong.substr(20)), std::string::npos);
    expect_clean(everything, "output");
}

// Through the library: the launcher's logger at debug level, every field of the
// job results, the result files, and the text of exceptions the facades throw.
TEST_F(Secrets, LibraryLoggerResultsAndExceptionsNeverHoldSecrets) {
    emulator_.set_faults(the_faults());
    gl::launcher_config cfg;
    cfg.type = gl::job_type::e2b;
    cfg.max_parallel_jobs = 2;
    cfg.eval_program_path = fs::path(GENESIS_TEST_DATA_DIR) / "evaluators" / "ok.py";
    cfg.results_dir = dir_ / "lib-results";
    cfg.e2b.api_url = emulator_.url();
    cfg.e2b.sandbox_url = emulator_.url();
    cfg.e2b.api_key = emulator_.api_key();
    cfg.e2b.create_rate = 100;
    cfg.e2b.timeout = 60s;

    boost::asio::io_context io;
    auto guard = boost::asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    std::mutex mutex;
    std::string log;
    std::string everything;
    {
        auto launcher = gl::make_launcher(cfg, io.get_executor());
        launcher->set_logger(gl::logger{gl::log_level::debug, [&](gl::log_level level, std::string_view m) {
                                            std::lock_guard lock(mutex);
                                            log += std::string(gl::to_string(level)) + ": " + std::string(m) + "\n";
                                        }});
        std::vector<gl::job_handle> handles;
        for (const char* name : {"a", "b", "c", "d"}) {
            gl::job_spec s;
            s.job_id = name;
            s.program_path = dir_ / "programs" / (std::string(name) + ".py");
            s.results_dir = dir_ / "lib-results" / name;
            handles.push_back(launcher->submit(std::move(s)));
        }
        int failed = 0;
        for (auto& h : handles) {
            ASSERT_EQ(h.result.wait_for(120s), std::future_status::ready);
            try {
                gl::job_result r = h.result.get();
                if (!r.succeeded()) ++failed;
                everything += r.diagnostic + "\n" + r.error + "\n" + r.stdout_text + "\n" + r.stderr_text + "\n" +
                              json::serialize(r.metrics) + "\n" + r.sandbox_id + "\n";
                for (const auto& w : r.warnings) everything += w + "\n";
            } catch (const std::exception& e) {
                everything += e.what();
            }
        }
        EXPECT_GE(failed, 1);  // the 401
        launcher->shutdown();
    }
    guard.reset();
    runner.join();
    EXPECT_TRUE(emulator_.no_leaks());
    EXPECT_GE(emulator_.stat("faults_injected"), 6);

    // Exceptions of the sync facades: a make_launcher that fails, a sweep that is refused.
    {
        gl::launcher_config bad = cfg;
        bad.e2b.api_url = "ftp://nowhere";
        try {
            (void)gl::make_launcher(bad, io.get_executor());
            ADD_FAILURE() << "make_launcher accepted an ftp:// URL";
        } catch (const gl::launch_error& e) {
            everything += std::string(e.what()) + "\n" + e.diag().to_string() + "\n";
        }
        emulator_.set_faults({fault("list", "status", 401, -1)});
        boost::system::error_code ec;
        gl::diagnostics diag;
        (void)gl::sweep_sandboxes(cfg, {}, ec, diag);
        EXPECT_TRUE(ec);
        everything += diag.to_string() + "\n";
    }
    std::size_t files = 0;
    everything += all_files_below(dir_ / "lib-results", files);
    EXPECT_GE(files, 8u);
    std::lock_guard lock(mutex);
    EXPECT_THAT(log, ::testing::HasSubstr("debug: "));
    ASSERT_GE(secrets().size(), 5u);
    expect_clean(log, "the launcher's log");
    expect_clean(everything, "job results, result files, exceptions");
}

}  // namespace

#endif
