// The local backend end to end: real Python subprocesses, one per job.
#include "test_support.hpp"

#include <genesis/launch/launch.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/json.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <thread>

namespace gl = genesis::launch;
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace genesis_test;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

namespace {

// Ready once the job prints `line` on stdout (installs spec.on_stdout).
std::future<void> when_printed(gl::job_spec& spec, std::string line) {
    auto seen = std::make_shared<std::promise<void>>();
    auto once = std::make_shared<std::once_flag>();
    auto ready = seen->get_future();
    spec.on_stdout = [seen, once, line = std::move(line)](std::string_view printed) {
        if (printed == line) std::call_once(*once, [&] { seen->set_value(); });
    };
    return ready;
}

class LocalLauncher : public ::testing::Test {
protected:
    void SetUp() override {
        cfg.type = gl::job_type::local;
        cfg.local.python = GENESIS_TEST_PYTHON;
        cfg.max_parallel_jobs = 2;
        cfg.kill_grace = 300ms;
        cfg.results_dir = dir / "results";
        cfg.eval_program_path = evaluator("ok.py");
        thread = std::thread([this] { io.run(); });
    }
    void TearDown() override {
        if (launcher) launcher->shutdown();
        launcher.reset();
        work.reset();
        thread.join();
    }
    gl::JobLauncher& make() {
        launcher = gl::make_launcher(cfg, io.get_executor());
        return *launcher;
    }
    gl::job_result run(gl::job_spec spec) { return make_if_needed().submit(std::move(spec)).result.get(); }
    gl::JobLauncher& make_if_needed() { return launcher ? *launcher : make(); }
    gl::job_spec job(const std::string& eval, const std::string& id = "") {
        gl::job_spec s;
        s.job_id = id;
        s.program_path = program("good.py");
        s.evaluator_path = evaluator(eval);
        return s;
    }

    temp_dir dir;
    gl::launcher_config cfg;
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::thread thread;
    std::unique_ptr<gl::JobLauncher> launcher;
};

pid_t read_pid(const fs::path& p) {
    auto text = read_file(p);
    return text.empty() ? 0 : static_cast<pid_t>(std::stol(text));
}

TEST_F(LocalLauncher, OkRunFollowsTheContract) {
    cfg.extra_cmd_args = {{"flag", true}, {"off", false}, {"n", 3}, {"ratio", 2.0}};
    cfg.env_vars = {{"GENESIS_TEST_VAR", "from-config"}};
    auto spec = job("ok.py", "ok-1");
    spec.extra_args = {{"name", "x y"}, {"n", 4}};
    spec.env = {{"GENESIS_TEST_VAR", "from-job"}};
    std::vector<std::string> lines;
    spec.on_stdout = [&](std::string_view l) { lines.emplace_back(l); };
    auto r = run(std::move(spec));

    EXPECT_EQ(r.job_id, "ok-1");
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    EXPECT_TRUE(r.succeeded());
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_FALSE(r.signal);
    EXPECT_TRUE(r.correct);
    EXPECT_EQ(r.error, "");
    EXPECT_DOUBLE_EQ(r.combined_score, 1.5);
    EXPECT_EQ(r.metrics.at("public").as_object().at("a").as_int64(), 1);
    EXPECT_EQ(r.metrics.at("text_feedback").as_string(), "fine");
    EXPECT_EQ(r.backend, "local");
    EXPECT_EQ(r.results_dir, cfg.results_dir / "ok-1");
    EXPECT_THAT(r.stdout_text, HasSubstr("hello stdout"));
    EXPECT_THAT(r.stderr_text, HasSubstr("hello stderr"));
    EXPECT_EQ(read_file(r.results_dir / "job_log.out"), r.stdout_text);
    EXPECT_EQ(read_file(r.results_dir / "job_log.err"), r.stderr_text);
    EXPECT_THAT(lines, ::testing::Contains("hello stdout"));

    // argv: the contract's flags, then the merged extra args (job wins, false omitted).
    std::string args_line, env_line;
    for (auto& l : lines) {
        if (l.starts_with("ARGS: ")) args_line = l.substr(6);
        if (l.starts_with("ENV: ")) env_line = l.substr(5);
    }
    auto args = boost::json::parse(args_line).as_array();
    std::vector<std::string> argv;
    for (auto& a : args) argv.emplace_back(a.as_string());
    EXPECT_EQ(argv, (std::vector<std::string>{"--program_path", program("good.py").string(), "--results_dir",
                                              r.results_dir.string(), "--flag", "--n", "4", "--ratio", "2.0",
                                              "--name", "x y"}));
    auto env = boost::json::parse(env_line).as_object();
    EXPECT_EQ(env.at("PYTHONUNBUFFERED").as_string(), "1");
    EXPECT_EQ(env.at("PYTHONIOENCODING").as_string(), "utf-8");
    EXPECT_EQ(env.at("GENESIS_TEST_VAR").as_string(), "from-job");

    // Binary files are untouched.
    std::string expected;
    for (int rep = 0; rep < 4; ++rep)
        for (int b = 0; b < 256; ++b) expected.push_back(static_cast<char>(b));
    EXPECT_EQ(read_file(r.results_dir / "extra.bin"), expected);
    EXPECT_EQ(read_file(r.results_dir / "candidate_copy.bin"), read_file(program("good.py")));
    std::vector<std::string> names;
    for (auto& f : r.result_files) names.push_back(f.filename().string());
    EXPECT_THAT(names, ::testing::IsSupersetOf({"metrics.json", "correct.json", "job_log.out", "job_log.err",
                                                "extra.bin"}));
    EXPECT_GT(r.timings.run.count(), 0);
    EXPECT_GE(r.timings.total, r.timings.run);
}

TEST_F(LocalLauncher, NonZeroExitIsCandidateFailed) {
    auto r = run(job("fail.py"));
    EXPECT_EQ(r.result, gl::outcome::candidate_failed);
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_FALSE(r.correct);
    EXPECT_EQ(r.error, "boom");
    EXPECT_THAT(r.diagnostic, HasSubstr("status 3"));
    EXPECT_THAT(r.stderr_text, HasSubstr("RuntimeError: boom"));
}

TEST_F(LocalLauncher, DeathBySignalIsCandidateFailedWithTheSignal) {
    auto r = run(job("crash_signal.py"));
    EXPECT_EQ(r.result, gl::outcome::candidate_failed);
    EXPECT_EQ(r.signal, SIGKILL);
    EXPECT_FALSE(r.exit_code);
    EXPECT_THAT(r.diagnostic, HasSubstr("SIGKILL"));
    EXPECT_FALSE(r.correct);
}

TEST_F(LocalLauncher, TimeoutStopsTheJobAndSaysSo) {
    auto spec = job("sleep.py");
    spec.timeout = 500ms;
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::timeout);
    EXPECT_THAT(r.diagnostic, HasSubstr("time limit"));
    EXPECT_THAT(r.error, HasSubstr("time limit"));
    EXPECT_FALSE(r.correct);
    EXPECT_LT(r.timings.run, 30s);
}

TEST_F(LocalLauncher, ConfiguredTimeApplies) {
    cfg.local.time = 400ms;
    auto r = run(job("sleep.py"));
    EXPECT_EQ(r.result, gl::outcome::timeout);
}

TEST_F(LocalLauncher, TimeoutKillsAGrandchildThatIgnoresSigterm) {
    auto spec = job("grandchild.py", "gc");
    spec.timeout = 3s;
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::timeout);
    ASSERT_THAT(r.stdout_text, HasSubstr("spawned")) << "the grandchild was not started within the time limit";
    pid_t grandchild = read_pid(r.results_dir / "grandchild.pid");
    ASSERT_GT(grandchild, 0);
    // Both ignored SIGTERM, so only the SIGKILL after the grace period ended them.
    EXPECT_TRUE(eventually([&] { return !process_running(grandchild); }, 5s));
}

TEST_F(LocalLauncher, LeftoverGrandchildIsKilledAfterANormalExit) {
    auto r = run(job("grandchild_exit.py"));
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    EXPECT_TRUE(r.correct);
    pid_t grandchild = read_pid(r.results_dir / "grandchild.pid");
    ASSERT_GT(grandchild, 0);
    EXPECT_TRUE(eventually([&] { return !process_running(grandchild); }, 5s));
}

TEST_F(LocalLauncher, CancelRunningJob) {
    auto& l = make();
    auto spec = job("sleep.py", "to-cancel");
    auto started_f = when_printed(spec, "started");
    auto h = l.submit(std::move(spec));
    ASSERT_EQ(started_f.wait_for(30s), std::future_status::ready);
    h.cancel();
    auto r = h.result.get();
    EXPECT_EQ(r.result, gl::outcome::cancelled);
    EXPECT_THAT(r.diagnostic, HasSubstr("cancelled"));
    EXPECT_EQ(l.usage().count(gl::outcome::cancelled), 1u);
}

TEST_F(LocalLauncher, CancelQueuedJobNeverStartsIt) {
    cfg.max_parallel_jobs = 1;
    auto& l = make();
    auto first = l.submit(job("sleep.py", "first"));
    auto second = l.submit(job("ok.py", "second"));
    second.cancel();
    auto r2 = second.result.get();
    EXPECT_EQ(r2.result, gl::outcome::cancelled);
    EXPECT_THAT(r2.diagnostic, HasSubstr("before it started"));
    EXPECT_FALSE(fs::exists(r2.results_dir / "job_log.out"));
    l.cancel("first");
    EXPECT_EQ(first.result.get().result, gl::outcome::cancelled);
}

TEST_F(LocalLauncher, CancelAllStopsQueuedAndRunning) {
    cfg.max_parallel_jobs = 1;
    auto& l = make();
    std::vector<gl::job_handle> hs;
    for (int i = 0; i < 3; ++i) hs.push_back(l.submit(job("sleep.py")));
    l.cancel_all();
    for (auto& h : hs) EXPECT_EQ(h.result.get().result, gl::outcome::cancelled);
    auto u = l.usage();
    EXPECT_EQ(u.finished, 3u);
    EXPECT_EQ(u.running, 0u);
    EXPECT_EQ(u.queued, 0u);
}

TEST_F(LocalLauncher, MaxParallelJobsIsNeverExceeded) {
    cfg.max_parallel_jobs = 2;
    auto state = dir / "state";
    fs::create_directories(state);
    auto& l = make();
    std::vector<gl::job_handle> hs;
    for (int i = 0; i < 7; ++i) {
        auto s = job("parallel.py");
        s.extra_args = {{"state_dir", state.string()}};
        hs.push_back(l.submit(std::move(s)));
    }
    for (auto& h : hs) {
        auto r = h.result.get();
        EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic << r.stderr_text;
    }
    int max_seen = std::stoi(read_file(state / "max"));
    EXPECT_GE(max_seen, 1);
    EXPECT_LE(max_seen, 2);
    EXPECT_EQ(std::stoi(read_file(state / "current")), 0);
    EXPECT_EQ(l.usage().count(gl::outcome::ok), 7u);
}

TEST_F(LocalLauncher, MissingResultsAreReportedNotFatal) {
    auto r = run(job("no_results.py"));
    EXPECT_EQ(r.result, gl::outcome::ok);
    EXPECT_FALSE(r.correct);
    EXPECT_THAT(r.error, HasSubstr("correct.json not found"));
    EXPECT_TRUE(r.metrics.empty());
    EXPECT_THAT(r.warnings, ::testing::Contains(HasSubstr("metrics.json not found")));
}

TEST_F(LocalLauncher, MalformedResultsAreReportedNotFatal) {
    auto r = run(job("bad_correct.py"));
    EXPECT_EQ(r.result, gl::outcome::ok);
    EXPECT_FALSE(r.correct);
    EXPECT_THAT(r.error, HasSubstr("correct.json is not valid JSON"));
    EXPECT_THAT(r.warnings, ::testing::Contains(HasSubstr("metrics.json is not valid JSON")));
}

TEST_F(LocalLauncher, LargeOutputIsCappedButLoggedInFull) {
    cfg.output_capture_bytes = 64 * 1024;
    std::size_t line_count = 0;
    auto spec = job("noisy.py");
    spec.on_stdout = [&](std::string_view) { ++line_count; };
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::ok);
    EXPECT_TRUE(r.stdout_truncated);
    EXPECT_LE(r.stdout_text.size(), 64u * 1024 + 100);
    EXPECT_THAT(r.stdout_text, HasSubstr("bytes truncated ...]"));
    EXPECT_TRUE(r.stdout_text.starts_with("line 000000"));
    EXPECT_TRUE(r.stdout_text.ends_with("LAST LINE\n"));
    EXPECT_EQ(fs::file_size(r.results_dir / "job_log.out"), 3000010u);
    EXPECT_EQ(line_count, 30001u);
}

TEST_F(LocalLauncher, SetupFailures) {
    auto missing_program = job("ok.py");
    missing_program.program_path = dir / "nope.py";
    auto r1 = run(std::move(missing_program));
    EXPECT_EQ(r1.result, gl::outcome::setup_failed);
    EXPECT_THAT(r1.diagnostic, HasSubstr("candidate program not found"));

    auto r2 = run(job("does_not_exist.py"));
    EXPECT_EQ(r2.result, gl::outcome::setup_failed);
    EXPECT_THAT(r2.diagnostic, HasSubstr("evaluator not found"));
}

TEST_F(LocalLauncher, MissingInterpreterIsSetupFailed) {
    cfg.local.python = "no-such-python-interpreter";
    auto r = run(job("ok.py"));
    EXPECT_EQ(r.result, gl::outcome::setup_failed);
    EXPECT_THAT(r.diagnostic, HasSubstr("'no-such-python-interpreter' not found on PATH"));
}

TEST_F(LocalLauncher, TheInterpreterIsLookedUpOncePerLauncher) {
    // `py` is found in bin2 for the first job; a `py` put in bin1 (earlier on the
    // same PATH) afterwards is not seen by the same launcher, only by a new one.
    auto bin1 = dir / "bin1", bin2 = dir / "bin2";
    fs::create_directories(bin1);
    auto stand_in = [&](const fs::path& bin, const std::string& name) {
        write_file(bin / "py", "#!/bin/sh\necho " + name + " >> \"$(dirname \"$0\")/../used\"\nexec " +
                                   std::string(GENESIS_TEST_PYTHON) + " \"$@\"\n");
        fs::permissions(bin / "py", fs::perms::owner_all);
    };
    stand_in(bin2, "bin2");
    cfg.local.python = "py";
    cfg.env_vars = {{"PATH", bin1.string() + ":" + bin2.string() + ":" + std::string(std::getenv("PATH"))}};
    EXPECT_EQ(run(job("ok.py")).result, gl::outcome::ok);
    stand_in(bin1, "bin1");
    EXPECT_EQ(run(job("ok.py")).result, gl::outcome::ok);
    EXPECT_EQ(read_file(dir / "used"), "bin2\nbin2\n");

    launcher->shutdown();
    launcher.reset();
    EXPECT_EQ(run(job("ok.py")).result, gl::outcome::ok);
    EXPECT_EQ(read_file(dir / "used"), "bin2\nbin2\nbin1\n");
}

TEST_F(LocalLauncher, CondaEnvRunsTheEvaluatorThroughCondaRun) {
    // A stand-in `conda` on PATH records its arguments and runs the rest.
    auto bin = dir / "bin";
    write_file(bin / "conda",
               "#!/bin/sh\n"
               "printf '%s\\n' \"$@\" > \"$(dirname \"$0\")/conda.args\"\n"
               "shift 4\n"
               "exec \"$@\"\n");
    fs::permissions(bin / "conda", fs::perms::owner_all);
    cfg.local.conda_env = "evo";
    auto spec = job("ok.py");
    spec.env = {{"PATH", bin.string() + ":" + std::string(std::getenv("PATH"))}};
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic << r.stderr_text;
    auto args = read_file(bin / "conda.args");
    EXPECT_TRUE(args.starts_with("run\n-n\nevo\n--no-capture-output\n" + std::string(GENESIS_TEST_PYTHON) + "\n"))
        << args;
}

TEST_F(LocalLauncher, InvalidJobIsRejectedWithAnErrorCode) {
    auto& l = make();
    gl::job_spec empty;
    auto h = l.submit(empty);
    try {
        h.result.get();
        FAIL() << "expected launch_error";
    } catch (const gl::launch_error& e) {
        EXPECT_EQ(e.code(), gl::errc::invalid_job);
        EXPECT_THAT(e.what(), HasSubstr("program_path is empty"));
    }
    EXPECT_EQ(l.usage().rejected, 1u);
}

TEST_F(LocalLauncher, ShutdownCancelsEverythingAndRefusesNewJobs) {
    auto& l = make();
    auto spec = job("grandchild.py");
    auto spawned = when_printed(spec, "spawned");
    auto h = l.submit(std::move(spec));
    ASSERT_EQ(spawned.wait_for(30s), std::future_status::ready);
    l.shutdown();
    // shutdown() returned: the job is over and reported.
    ASSERT_EQ(h.result.wait_for(0s), std::future_status::ready);
    auto r = h.result.get();
    EXPECT_EQ(r.result, gl::outcome::cancelled);
    pid_t grandchild = read_pid(r.results_dir / "grandchild.pid");
    EXPECT_TRUE(eventually([&] { return !process_running(grandchild); }, 5s));

    auto late = l.submit(job("ok.py"));
    try {
        late.result.get();
        FAIL() << "expected launch_error";
    } catch (const gl::launch_error& e) {
        EXPECT_EQ(e.code(), gl::errc::shut_down);
    }
}

TEST_F(LocalLauncher, WorksWithCoroutinesAndCancellationSlots) {
    auto& l = make();
    asio::cancellation_signal cancel;
    std::promise<std::pair<gl::job_result, gl::job_result>> done;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto [ec1, ok] = co_await l.async_submit(job("ok.py"), asio::as_tuple(asio::use_awaitable));
            EXPECT_FALSE(ec1);
            auto spec = job("sleep.py");
            spec.on_stdout = [&](std::string_view line) {
                if (line == "started") cancel.emit(asio::cancellation_type::terminal);
            };
            auto [ec2, cancelled] = co_await l.async_submit(
                std::move(spec), asio::bind_cancellation_slot(cancel.slot(), asio::as_tuple(asio::use_awaitable)));
            EXPECT_FALSE(ec2);
            done.set_value({ok, cancelled});
        },
        asio::detached);
    auto f = done.get_future();
    ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
    auto [ok, cancelled] = f.get();
    EXPECT_EQ(ok.result, gl::outcome::ok);
    EXPECT_EQ(cancelled.result, gl::outcome::cancelled);
}

TEST_F(LocalLauncher, CallbackTokenAndCounters) {
    auto& l = make();
    std::promise<gl::job_result> p;
    l.async_submit(job("ok.py"), [&](boost::system::error_code ec, gl::job_result r) {
        EXPECT_FALSE(ec);
        p.set_value(std::move(r));
    });
    EXPECT_EQ(p.get_future().get().result, gl::outcome::ok);
    auto u = l.usage();
    EXPECT_EQ(u.submitted, 1u);
    EXPECT_EQ(u.finished, 1u);
    EXPECT_EQ(u.count(gl::outcome::ok), 1u);
}

// ---------------------------------------------------------------------------
// Limits and isolation
// ---------------------------------------------------------------------------

// The probe evaluator's report (its metrics.json).
boost::json::object probe_report(const gl::job_result& r) {
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic << "\n" << r.stderr_text;
    return r.metrics;
}

std::vector<std::int64_t> limit_of(const boost::json::object& report, const char* name) {
    std::vector<std::int64_t> out;
    for (const auto& v : report.at("limits").at(name).as_array()) out.push_back(v.as_int64());
    return out;
}

std::int64_t own_limit(int resource, bool hard) {
    rlimit l{};
    ::getrlimit(resource, &l);
    const rlim_t v = hard ? l.rlim_max : l.rlim_cur;
    return v == RLIM_INFINITY ? -1 : static_cast<std::int64_t>(v);
}

std::vector<std::string> strings_of(const boost::json::value& v) {
    std::vector<std::string> out;
    for (const auto& s : v.as_array()) out.emplace_back(s.as_string());
    return out;
}

TEST_F(LocalLauncher, ConfiguredResourceLimitsReachTheEvaluator) {
    cfg.local.memory_mb = 2048;
    cfg.local.cpu_seconds = 30s;
    cfg.local.max_file_mb = 16;
    cfg.local.max_open_files = 256;
    auto report = probe_report(run(job("probe.py")));
    const std::int64_t mib = 1024 * 1024;
    EXPECT_EQ(limit_of(report, "AS"), (std::vector<std::int64_t>{2048 * mib, 2048 * mib}));
    EXPECT_EQ(limit_of(report, "CPU"), (std::vector<std::int64_t>{30, 31}));
    EXPECT_EQ(limit_of(report, "FSIZE"), (std::vector<std::int64_t>{16 * mib, 16 * mib}));
    EXPECT_EQ(limit_of(report, "NOFILE"), (std::vector<std::int64_t>{256, 256}));
    EXPECT_EQ(limit_of(report, "CORE")[0], 0);
}

TEST_F(LocalLauncher, WithoutLimitsTheEvaluatorInheritsOursExceptCoreDumps) {
    auto report = probe_report(run(job("probe.py")));
    EXPECT_EQ(limit_of(report, "AS"), (std::vector<std::int64_t>{own_limit(RLIMIT_AS, false), own_limit(RLIMIT_AS, true)}));
    EXPECT_EQ(limit_of(report, "NOFILE"),
              (std::vector<std::int64_t>{own_limit(RLIMIT_NOFILE, false), own_limit(RLIMIT_NOFILE, true)}));
    EXPECT_EQ(limit_of(report, "CORE"), (std::vector<std::int64_t>{0, own_limit(RLIMIT_CORE, true)}));
}

TEST_F(LocalLauncher, TheEvaluatorStartsWithNoSignalBlockedOrIgnored) {
    // The engine ignores SIGHUP and its io thread blocks SIGUSR1 and SIGTERM; none of
    // it reaches the evaluator (the launcher also blocks every signal around the start).
    struct sigaction ignore {}, saved_hup{};
    ignore.sa_handler = SIG_IGN;
    ASSERT_EQ(::sigaction(SIGHUP, &ignore, &saved_hup), 0);
    std::promise<void> blocked;
    asio::post(io, [&] {
        sigset_t set;
        ::sigemptyset(&set);
        ::sigaddset(&set, SIGUSR1);
        ::sigaddset(&set, SIGTERM);
        ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
        blocked.set_value();
    });
    blocked.get_future().wait();
    auto report = probe_report(run(job("probe.py")));
    ::sigaction(SIGHUP, &saved_hup, nullptr);
    ASSERT_TRUE(report.at("sigblk").is_int64()) << boost::json::serialize(report);
    EXPECT_EQ(report.at("sigblk").as_int64(), 0);
    const std::int64_t ignored = report.at("sigign").as_int64();
    // (Python ignores SIGPIPE itself at start-up: not checked.)
    for (int sig : {SIGHUP, SIGUSR1, SIGTERM}) EXPECT_EQ(ignored & (std::int64_t{1} << (sig - 1)), 0) << sig;
}

TEST_F(LocalLauncher, CoreDumpsCanBeAllowed) {
    // Raise our own soft core limit so that "inherited" and "disabled" differ.
    rlimit saved{};
    ::getrlimit(RLIMIT_CORE, &saved);
    if (saved.rlim_max == 0) GTEST_SKIP() << "core dumps are disabled by this process's hard limit";
    rlimit raised{saved.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : saved.rlim_max, saved.rlim_max};
    ASSERT_EQ(::setrlimit(RLIMIT_CORE, &raised), 0);
    cfg.local.core_dumps = true;
    auto report = probe_report(run(job("probe.py")));
    ::setrlimit(RLIMIT_CORE, &saved);
    EXPECT_EQ(limit_of(report, "CORE")[0], static_cast<std::int64_t>(raised.rlim_cur));
}

TEST_F(LocalLauncher, MemoryLimitFailsAnOversizedAllocation) {
    cfg.local.memory_mb = 512;
    auto spec = job("hog.py");
    spec.extra_args = {{"mode", "memory"}};
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::candidate_failed) << r.diagnostic;
    EXPECT_THAT(r.stderr_text, HasSubstr("MemoryError"));
    EXPECT_THAT(r.stdout_text, ::testing::Not(HasSubstr("done")));
    EXPECT_THAT(r.warnings, ::testing::Contains(HasSubstr("ran out of memory (job_config.memory_mb = 512)")));
}

TEST_F(LocalLauncher, CpuTimeLimitEndsTheJobAsTimeout) {
    cfg.local.cpu_seconds = 1s;
    auto spec = job("hog.py");
    spec.extra_args = {{"mode", "cpu"}};
    spec.timeout = 120s;  // a backstop far above the CPU limit
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::timeout) << r.diagnostic;
    EXPECT_EQ(r.signal, SIGXCPU);
    EXPECT_THAT(r.diagnostic, HasSubstr("CPU time limit of 1s exceeded"));
    EXPECT_THAT(r.error, HasSubstr("CPU time limit"));
    EXPECT_LT(r.timings.run, 100s);
}

TEST_F(LocalLauncher, FileSizeLimitStopsABigWrite) {
    cfg.local.max_file_mb = 1;
    auto spec = job("hog.py");
    spec.extra_args = {{"mode", "fsize"}};
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::candidate_failed) << r.diagnostic;
    EXPECT_THAT(r.stderr_text, HasSubstr("File too large"));
    EXPECT_LE(fs::file_size(r.results_dir / "big.bin"), 1024u * 1024u);
}

TEST_F(LocalLauncher, LogLimitEndsTheLogFileButNotTheJob) {
    cfg.local.log_limit_mb = 1;
    cfg.output_capture_bytes = 64 * 1024;
    std::size_t line_count = 0;
    auto spec = job("noisy.py");
    spec.on_stdout = [&](std::string_view) { ++line_count; };
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    EXPECT_TRUE(r.correct);
    const std::string log = read_file(r.results_dir / "job_log.out");
    const std::string mark = "\n[... log limit of 1048576 bytes reached; the rest is not logged ...]\n";
    ASSERT_EQ(log.size(), 1024u * 1024u + mark.size());
    EXPECT_TRUE(log.ends_with(mark));
    EXPECT_TRUE(log.starts_with("line 000000"));
    EXPECT_THAT(r.warnings, ::testing::Contains(HasSubstr("job_log.out stopped at job_config.log_limit_mb = 1 MiB")));
    EXPECT_THAT(r.warnings, ::testing::Not(::testing::Contains(HasSubstr("job_log.err"))));
    // The capture and the live lines still see the whole stream.
    EXPECT_TRUE(r.stdout_text.ends_with("LAST LINE\n"));
    EXPECT_EQ(line_count, 30001u);
}

TEST_F(LocalLauncher, EachJobGetsAPrivateTempFolderRemovedAfterwards) {
    auto a = probe_report(run(job("probe.py")));
    auto b = probe_report(run(job("probe.py")));
    for (const auto* report : {&a, &b}) {
        ASSERT_TRUE(report->at("tmpdir").is_string());
        const fs::path tmp = std::string(report->at("tmpdir").as_string());
        EXPECT_EQ(report->at("gettempdir").as_string(), tmp.string());
        EXPECT_EQ(fs::path(std::string(report->at("temp_file").as_string())).parent_path(), tmp);
        EXPECT_THAT(tmp.filename().string(), ::testing::StartsWith("genesis-job-"));
        EXPECT_FALSE(fs::exists(tmp)) << tmp;
    }
    EXPECT_NE(a.at("tmpdir"), b.at("tmpdir"));
}

// TMPDIR of this process set to `value` while it lives (the local backend makes the
// jobs' temp folders there), the old value back afterwards.
class scoped_tmpdir {
public:
    explicit scoped_tmpdir(const std::string& value) {
        if (const char* old = std::getenv("TMPDIR")) old_ = old;
        ::setenv("TMPDIR", value.c_str(), 1);
    }
    ~scoped_tmpdir() {
        if (old_) ::setenv("TMPDIR", old_->c_str(), 1);
        else ::unsetenv("TMPDIR");
    }
    scoped_tmpdir(const scoped_tmpdir&) = delete;
    scoped_tmpdir& operator=(const scoped_tmpdir&) = delete;

private:
    std::optional<std::string> old_;
};

TEST_F(LocalLauncher, AnEmptyTempFolderServesTheNextJobEmptyPrivateAndRenamed) {
    // On tmpfs when there is one: a deleted folder's inode number is never handed out
    // again there, so an equal number means the same folder.
    fs::path base = dir / "tmp";
    if (std::string shm = "/dev/shm/genesis-test-XXXXXX"; ::access("/dev/shm", W_OK) == 0 && ::mkdtemp(shm.data()))
        base = shm;
    fs::create_directories(base);
    struct remove_base {
        fs::path p;
        ~remove_base() {
            std::error_code ignored;
            fs::remove_all(p, ignored);
        }
    } cleanup{base};
    scoped_tmpdir tmpdir(base.string());
    cfg.max_parallel_jobs = 1;
    auto run_probe = [&](const std::string& id, boost::json::object args) {
        auto spec = job("tmp_reuse.py", id);
        spec.extra_args = std::move(args);
        auto r = run(std::move(spec));
        EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic << r.stderr_text;
        return r;
    };
    auto a = run_probe("a", {});
    auto b = run_probe("b", {{"leave", true}});
    auto c = run_probe("c", {{"escape", true}});
    auto d = run_probe("d", {});
    const fs::path tmp_a = std::string(a.metrics.at("tmpdir").as_string());
    const fs::path tmp_b = std::string(b.metrics.at("tmpdir").as_string());
    const fs::path tmp_c = std::string(c.metrics.at("tmpdir").as_string());
    const fs::path tmp_d = std::string(d.metrics.at("tmpdir").as_string());
    for (const auto* r : {&a, &b, &c, &d}) {
        const fs::path tmp = std::string(r->metrics.at("tmpdir").as_string());
        EXPECT_EQ(tmp.parent_path(), base);
        EXPECT_THAT(tmp.filename().string(), ::testing::StartsWith("genesis-job-" + r->job_id + "-"));
        EXPECT_EQ(tmp.filename().string().size(), std::string("genesis-job-a-XXXXXX").size());
        // Every job finds its folder empty and private, whatever the job before left.
        EXPECT_TRUE(r->metrics.at("entries").as_array().empty()) << r->job_id << " " << r->metrics.at("entries");
        EXPECT_EQ(r->metrics.at("mode").as_int64(), 0700) << r->job_id;
        EXPECT_EQ(r->metrics.at("uid").as_int64(), static_cast<std::int64_t>(::geteuid()));
        EXPECT_FALSE(fs::exists(tmp)) << tmp;  // gone from its path with the result
    }
    // a left its folder empty: b got it, under b's name.
    EXPECT_EQ(b.metrics.at("ino"), a.metrics.at("ino"));
    EXPECT_NE(tmp_b, tmp_a);
    // b left a file in it: c got another folder.
    EXPECT_NE(c.metrics.at("ino"), b.metrics.at("ino"));
    // c's folder was empty, but a process of c was still running when c ended (the
    // sweep killed it): d got another folder.
    EXPECT_THAT(c.warnings, ::testing::Contains(HasSubstr("killed 1 process(es)")));
    const pid_t escaped = read_pid(c.results_dir / "escaped.pid");
    EXPECT_TRUE(eventually([&] { return !process_running(escaped); }, 5s));
    EXPECT_NE(d.metrics.at("ino"), c.metrics.at("ino"));
    // Nothing is left in TMPDIR once the launcher is gone: no job folder, no idle one, no trash.
    // (The backend goes with the last of the launcher's handlers on the io thread.)
    launcher->shutdown();
    launcher.reset();
    std::vector<std::string> left;
    EXPECT_TRUE(eventually([&] {
        left.clear();
        for (const auto& e : fs::directory_iterator(base)) left.push_back(e.path().filename().string());
        return left.empty();
    }, 5s)) << ::testing::PrintToString(left);
}

TEST_F(LocalLauncher, ATmpdirSetForTheJobIsKept) {
    auto own = dir / "own-tmp";
    fs::create_directories(own);
    auto spec = job("probe.py");
    spec.env = {{"TMPDIR", own.string()}};
    auto report = probe_report(run(std::move(spec)));
    EXPECT_EQ(report.at("tmpdir").as_string(), own.string());
    EXPECT_TRUE(fs::exists(std::string(report.at("temp_file").as_string())));

    cfg.local.private_tmp = false;
    launcher->shutdown();
    launcher.reset();
    const char* ours = std::getenv("TMPDIR");
    auto plain = probe_report(run(job("probe.py")));
    if (ours) EXPECT_EQ(plain.at("tmpdir").as_string(), ours);
    else EXPECT_TRUE(plain.at("tmpdir").is_null());
}

TEST_F(LocalLauncher, OnlyStandardDescriptorsReachTheEvaluator) {
    // A descriptor of ours without FD_CLOEXEC must not leak into the child.
    const int leak = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(leak, 0);
    auto report = probe_report(run(job("probe.py")));
    ::close(leak);
    std::vector<std::string> fds;
    for (const auto& [fd, target] : report.at("fds").as_object()) fds.emplace_back(fd);
    std::sort(fds.begin(), fds.end());
    EXPECT_EQ(fds, (std::vector<std::string>{"0", "1", "2"})) << boost::json::serialize(report.at("fds"));
    EXPECT_EQ(report.at("fds").at("0").as_string(), "/dev/null");
    EXPECT_TRUE(report.at("marker").as_bool());
}

TEST_F(LocalLauncher, AnExecFailureIsStillReportedAsSetupFailed) {
    // The interpreter exists and is executable, but exec fails (its own interpreter is
    // missing): the failure travels back over the launcher's error pipe, which the
    // descriptor cleanup in the child keeps open.
    auto broken = dir / "bin" / "broken-python";
    write_file(broken, "#!/nonexistent/interpreter\n");
    fs::permissions(broken, fs::perms::owner_all);
    cfg.local.python = broken.string();
    auto r = run(job("ok.py"));
    EXPECT_EQ(r.result, gl::outcome::setup_failed) << r.diagnostic;
    EXPECT_THAT(r.diagnostic, HasSubstr("could not start " + broken.string()));
    EXPECT_THAT(r.diagnostic, HasSubstr("No such file or directory"));
}

TEST_F(LocalLauncher, AProcessThatLeftTheGroupIsKilledWhenTheJobEnds) {
    auto r = run(job("escape.py"));
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    const pid_t escaped = read_pid(r.results_dir / "escaped.pid");
    ASSERT_GT(escaped, 0);
    EXPECT_TRUE(eventually([&] { return !process_running(escaped); }, 5s));
    EXPECT_THAT(r.warnings, ::testing::Contains(HasSubstr("killed 1 process(es) of the job that had left its process group")));
    // It held the output pipes; once it was dead they closed, so no reading was abandoned.
    EXPECT_THAT(r.warnings, ::testing::Not(::testing::Contains(HasSubstr("kept its output open"))));
}

TEST_F(LocalLauncher, WithoutKillEscapedAProcessThatLeftTheGroupSurvives) {
    cfg.local.kill_escaped = false;
    auto r = run(job("escape.py"));
    const pid_t escaped = read_pid(r.results_dir / "escaped.pid");
    ASSERT_GT(escaped, 0);
    const bool survived = process_running(escaped);
    if (escaped > 0) ::kill(escaped, SIGKILL);
    EXPECT_TRUE(survived);
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    EXPECT_THAT(r.warnings, ::testing::Contains(HasSubstr("kept its output open")));
}

TEST_F(LocalLauncher, NetworkFalseLeavesOnlyLoopback) {
    cfg.local.network = false;
    auto report = probe_report(run(job("probe.py")));
    EXPECT_EQ(strings_of(report.at("interfaces")), (std::vector<std::string>{"lo"}));
    EXPECT_EQ(report.at("uid").as_int64(), static_cast<std::int64_t>(::getuid()));
    EXPECT_EQ(report.at("gid").as_int64(), static_cast<std::int64_t>(::getgid()));

    // By default the evaluator shares our network namespace.
    cfg.local.network = true;
    launcher->shutdown();
    launcher.reset();
    auto shared = probe_report(run(job("probe.py")));
    std::vector<std::string> ours;
    {
        std::ifstream dev("/proc/self/net/dev");
        std::string line;
        for (int skip = 0; skip < 2 && std::getline(dev, line); ++skip) {}
        while (std::getline(dev, line)) {
            auto name = line.substr(0, line.find(':'));
            name.erase(0, name.find_first_not_of(' '));
            ours.push_back(name);
        }
    }
    EXPECT_EQ(strings_of(shared.at("interfaces")), ours);
}

TEST_F(LocalLauncher, ParentDeathSignalIsSetUnlessDisabled) {
    auto report = probe_report(run(job("probe.py")));
    EXPECT_EQ(report.at("pdeathsig").as_int64(), SIGKILL);
    cfg.local.kill_on_parent_exit = false;
    launcher->shutdown();
    launcher.reset();
    EXPECT_EQ(probe_report(run(job("probe.py"))).at("pdeathsig").as_int64(), 0);
}

// ---- hostile evaluators, bubblewrap isolation, max_processes ----

std::string random_token(const char* prefix) {
    std::random_device rd;
    return prefix + std::to_string(::getpid()) + "-" + std::to_string(rd()) + std::to_string(rd());
}

// kB of a /proc/self/status field (VmRSS, VmHWM).
long status_kb(const std::string& field) {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with(field + ":")) return std::stol(line.substr(field.size() + 1));
    return -1;
}

// A loopback TCP listener (never accepts; a connection still completes in the backlog).
struct loopback_listener {
    int fd = -1;
    int port = 0;
    loopback_listener() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd, 16) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
            port = ntohs(addr.sin_port);
    }
    ~loopback_listener() {
        if (fd >= 0) ::close(fd);
    }
};

bool bwrap_available() { return ::access("/usr/bin/bwrap", X_OK) == 0; }

class LocalIsolation : public LocalLauncher {
protected:
    void SetUp() override {
        if (!bwrap_available()) GTEST_SKIP() << "bubblewrap is not installed";
        LocalLauncher::SetUp();
        cfg.local.isolation = gl::local_isolation::bwrap;
    }
};

TEST_F(LocalIsolation, TheEvaluatorIsConfined) {
    loopback_listener listener;
    ASSERT_GT(listener.port, 0);
    const std::string tmp_name = random_token("genesis-confine-");
    auto spec = job("confine.py");
    spec.extra_args = {{"port", listener.port}, {"tmp_name", tmp_name}};
    auto r = run(std::move(spec));
    ASSERT_EQ(r.result, gl::outcome::ok) << r.diagnostic << r.stderr_text;
    const auto& m = r.metrics;
    // No network: the loopback of the job is not ours.
    EXPECT_THAT(std::string(m.at("connect").as_string()), HasSubstr("ConnectionRefused"));
    const auto& writes = m.at("writes").as_object();
    for (const char* denied : {"cwd", "etc", "candidate", "home"}) {
        // Started in /tmp itself, the job's working folder is its private /tmp.
        if (denied == std::string("cwd") && fs::current_path() == "/tmp") continue;
        const std::string outcome(writes.at(denied).as_string());
        EXPECT_NE(outcome, "ok") << denied;
        // Root could write anywhere without the read-only view.
        if (::geteuid() == 0) EXPECT_THAT(outcome, HasSubstr("Read-only file system")) << denied;
    }
    for (const char* allowed : {"results", "tmpdir", "tmp"})
        EXPECT_EQ(writes.at(allowed).as_string(), "ok") << allowed;
    EXPECT_EQ(m.at("tmpdir").as_string(), "/tmp");
    // The job's /tmp was its own, and is gone.
    EXPECT_FALSE(fs::exists(fs::path("/tmp") / tmp_name));
    EXPECT_FALSE(fs::exists(fs::temp_directory_path() / tmp_name));

    // The same connection succeeds without isolation (the check above can fail).
    cfg.local.isolation = gl::local_isolation::none;
    launcher->shutdown();
    launcher.reset();
    auto control = job("confine.py");
    control.extra_args = {{"port", listener.port}, {"writes", "no"}};
    auto c = run(std::move(control));
    ASSERT_EQ(c.result, gl::outcome::ok) << c.diagnostic << c.stderr_text;
    EXPECT_EQ(c.metrics.at("connect").as_string(), "ok");
}

TEST_F(LocalIsolation, LimitsStillApplyInside) {
    cfg.local.memory_mb = 2048;
    cfg.local.max_open_files = 256;
    cfg.local.max_file_mb = 1;
    auto report = probe_report(run(job("probe.py")));
    const std::int64_t mib = 1024 * 1024;
    EXPECT_EQ(limit_of(report, "AS"), (std::vector<std::int64_t>{2048 * mib, 2048 * mib}));
    EXPECT_EQ(limit_of(report, "NOFILE"), (std::vector<std::int64_t>{256, 256}));
    EXPECT_EQ(strings_of(report.at("interfaces")), (std::vector<std::string>{"lo"}));
    EXPECT_EQ(report.at("pdeathsig").as_int64(), SIGKILL);

    auto spec = job("hog.py");
    spec.extra_args = {{"mode", "fsize"}};
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::candidate_failed) << r.diagnostic;
    EXPECT_THAT(r.stderr_text, HasSubstr("File too large"));
    EXPECT_EQ(fs::file_size(r.results_dir / "big.bin"), 1024u * 1024u);
}

TEST_F(LocalIsolation, DeathBySignalIsReportedAsTheSignal) {
    auto r = run(job("crash_signal.py"));
    EXPECT_EQ(r.result, gl::outcome::candidate_failed);
    ASSERT_TRUE(r.signal) << r.diagnostic;
    EXPECT_FALSE(r.exit_code);
    EXPECT_THAT(r.diagnostic, HasSubstr("evaluator killed by SIG"));
}

TEST_F(LocalIsolation, ExitCodesAboveOneHundredTwentyEightStayExitCodes) {
    auto spec = job("fail.py");
    spec.extra_args = {{"exit_code", 130}};  // 128 + SIGINT, but the evaluator's own status
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::candidate_failed);
    EXPECT_EQ(r.exit_code, 130);
    EXPECT_FALSE(r.signal);
}

TEST_F(LocalIsolation, CpuSecondsStillEndTheJobAsTimeout) {
    cfg.local.cpu_seconds = 1s;
    auto spec = job("hog.py");
    spec.extra_args = {{"mode", "cpu"}};
    spec.timeout = 120s;
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::timeout) << r.diagnostic;
    EXPECT_EQ(r.signal, SIGXCPU);
    EXPECT_THAT(r.diagnostic, HasSubstr("CPU time limit of 1s exceeded"));
}

TEST_F(LocalIsolation, ATimeoutStillStopsTheJob) {
    auto spec = job("sleep.py");
    spec.timeout = 500ms;
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::timeout) << r.diagnostic;
    EXPECT_LT(r.timings.run, 10s);
}

TEST_F(LocalIsolation, AStopSendsSigtermToTheEvaluatorItself) {
    cfg.kill_grace = 20s;  // SIGKILL would come far later than the handler's exit
    auto& l = make();
    auto spec = job("term_trap.py");
    auto started_f = when_printed(spec, "started");
    auto h = l.submit(std::move(spec));
    ASSERT_EQ(started_f.wait_for(30s), std::future_status::ready);
    h.cancel();
    auto r = h.result.get();
    EXPECT_EQ(r.result, gl::outcome::cancelled) << r.diagnostic;
    EXPECT_EQ(read_file(r.results_dir / "sigterm"), "SIGTERM");
    EXPECT_LT(r.timings.run, 15s);
}

TEST_F(LocalIsolation, ASandboxThatCannotBeSetUpIsSetupFailed) {
    // bwrap itself needs more descriptors than this to build the sandbox.
    cfg.local.max_open_files = 5;
    auto r = run(job("ok.py"));
    EXPECT_EQ(r.result, gl::outcome::setup_failed) << r.diagnostic;
    EXPECT_THAT(r.diagnostic, HasSubstr("job_config.isolation = bwrap: the sandbox could not be set up: bwrap: "));
    EXPECT_EQ(r.diagnostic.find('\n'), std::string::npos);
}

// A daemon (double fork + setsid) dies with its job in both isolation modes: with
// none through the job's marker, with bwrap through the pid namespace (the marker
// sweep is off there to prove it).
class DaemonEvaluator : public LocalLauncher, public ::testing::WithParamInterface<bool> {};

TEST_P(DaemonEvaluator, NothingOutlivesTheJob) {
    const bool sandboxed = GetParam();
    if (sandboxed && !bwrap_available()) GTEST_SKIP() << "bubblewrap is not installed";
    if (sandboxed) {
        cfg.local.isolation = gl::local_isolation::bwrap;
        cfg.local.kill_escaped = false;
    }
    const std::string token = random_token("genesis-daemon-");
    auto spec = job("daemon.py");
    spec.extra_args = {{"token", token}};
    auto r = run(std::move(spec));
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic << r.stderr_text;
    EXPECT_TRUE(r.correct) << r.stdout_text;  // the daemon did start
    EXPECT_TRUE(eventually([&] { return processes_mentioning(token).empty(); }, 5s));
    for (pid_t pid : processes_mentioning(token)) ::kill(pid, SIGKILL);
}

INSTANTIATE_TEST_SUITE_P(LocalLauncher, DaemonEvaluator, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Bwrap" : "NoIsolation"; });

TEST_F(LocalLauncher, FillingTheDiskStopsAtTheFileLimitAndTheNextJobRuns) {
    cfg.local.max_file_mb = 4;
    auto r = run(job("fill_disk.py"));
    EXPECT_EQ(r.result, gl::outcome::candidate_failed) << r.diagnostic;
    EXPECT_EQ(fs::file_size(r.results_dir / "fill.bin"), 4u * 1024u * 1024u);
    EXPECT_THAT(r.stderr_text, HasSubstr("File too large"));
    EXPECT_THAT(r.stdout_text, HasSubstr("written 4194304"));
    EXPECT_THAT(r.error, HasSubstr("evaluator exited with status 1"));
    auto next = run(job("ok.py"));
    EXPECT_EQ(next.result, gl::outcome::ok) << next.diagnostic;
}

TEST_F(LocalLauncher, OneGibOfStdoutKeepsMemoryBoundedAndIsLoggedInFull) {
    // Peak RSS of this process, reset just before the job (clear_refs 5 = reset VmHWM).
    write_file("/proc/self/clear_refs", "5");
    const long rss_before = status_kb("VmRSS");
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run(job("flood.py"));
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const long peak = status_kb("VmHWM");
    ASSERT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    const fs::path log = r.results_dir / "job_log.out";
    const auto logged = fs::file_size(log);
    fs::remove(log);
    std::printf("[ figures  ] 1 GiB stdout: %.1f s, RSS before %ld kB, peak %ld kB (+%ld kB)\n", seconds, rss_before,
                peak, peak - rss_before);
    EXPECT_EQ(logged, std::uint64_t{1} << 30);
    EXPECT_TRUE(r.stdout_truncated);
    EXPECT_LE(r.stdout_text.size(), cfg.output_capture_bytes + 256);
    EXPECT_LT(peak - rss_before, 64 * 1024) << "kB";
}

TEST_F(LocalLauncher, MaxProcessesCapsTheWholeJobAndLeavesNothing) {
    cfg.local.max_processes = 12;
    cfg.local.kill_escaped = false;  // the cgroup alone must end the children
    auto r = run(job("fork_loop.py"));
    if (r.result == gl::outcome::setup_failed && ::geteuid() != 0) {
        EXPECT_THAT(r.diagnostic, HasSubstr("job_config.max_processes = 12 needs a pids cgroup: "));
        GTEST_SKIP() << r.diagnostic;
    }
    ASSERT_EQ(r.result, gl::outcome::ok) << r.diagnostic << r.stderr_text;
    const auto forked = r.metrics.at("forked").to_number<std::int64_t>();
    EXPECT_GT(forked, 0);
    EXPECT_LT(forked, 12);
    EXPECT_EQ(r.metrics.at("error").as_string(), "EAGAIN");
    std::vector<pid_t> children;
    {
        std::ifstream in(r.results_dir / "children.pids");
        for (pid_t pid; in >> pid;) children.push_back(pid);
    }
    EXPECT_EQ(static_cast<std::int64_t>(children.size()), forked);
    EXPECT_TRUE(eventually([&] {
        return std::none_of(children.begin(), children.end(), [](pid_t p) { return process_running(p); });
    }, 5s));
    for (pid_t pid : children) ::kill(pid, SIGKILL);
    // The job's cgroup is gone.
    std::vector<std::string> left;
    for (const char* root : {"/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
        std::error_code ec;
        for (const auto& e : fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec))
            if (e.path().filename().string().starts_with("genesis-launch-" + std::to_string(::getpid()) + "-"))
                left.push_back(e.path().string());
    }
    EXPECT_THAT(left, ::testing::IsEmpty());
}

TEST_F(LocalLauncher, MaxProcessesAlsoHoldsUnderBwrap) {
    if (!bwrap_available()) GTEST_SKIP() << "bubblewrap is not installed";
    cfg.local.isolation = gl::local_isolation::bwrap;
    cfg.local.max_processes = 12;
    auto r = run(job("fork_loop.py"));
    if (r.result == gl::outcome::setup_failed && ::geteuid() != 0) GTEST_SKIP() << r.diagnostic;
    ASSERT_EQ(r.result, gl::outcome::ok) << r.diagnostic << r.stderr_text;
    // bwrap and the namespace's init count too.
    EXPECT_LT(r.metrics.at("forked").to_number<std::int64_t>(), 10);
    EXPECT_EQ(r.metrics.at("error").as_string(), "EAGAIN");
}

#ifdef GENESIS_CLI_PATH
// A killed engine (here the CLI, SIGKILLed) does not leave its evaluator running.
class KilledLauncherProcess : public ::testing::TestWithParam<bool> {};

TEST_P(KilledLauncherProcess, EvaluatorFollowsOnlyWithKillOnParentExit) {
    const bool kill_on_parent_exit = GetParam();
    temp_dir dir;
    const fs::path results = dir / "results";
    logged_process cli(GENESIS_CLI_PATH,
                       {"--config-dir", (fs::path(GENESIS_SOURCE_DIR) / "configs").string(), "cluster=local",
                        "job_config.python=" + std::string(GENESIS_TEST_PYTHON),
                        "job_config.eval_program_path=" + evaluator("sleep_pid.py").string(),
                        "evo_config.init_program_path=" + program("good.py").string(),
                        "evo_config.results_dir=" + results.string(),
                        "job_config.kill_on_parent_exit=" + std::string(kill_on_parent_exit ? "true" : "false")},
                       dir.path(), dir / "logs", {{"TMPDIR", (dir / "tmp").string()}});
    fs::create_directories(dir / "tmp");
    fs::path pid_file;
    ASSERT_TRUE(eventually(
        [&] {
            std::error_code ec;
            for (auto it = fs::recursive_directory_iterator(results, ec); !ec && it != fs::recursive_directory_iterator();
                 it.increment(ec))
                if (it->path().filename() == "evaluator.pid") pid_file = it->path();
            return !pid_file.empty();
        },
        30s))
        << cli.err();
    const pid_t evaluator_pid = read_pid(pid_file);
    ASSERT_GT(evaluator_pid, 0);
    ASSERT_EQ(::kill(cli.pid(), SIGKILL), 0);
    // Reaped: the parent-death signal, if any, was sent while the CLI exited.
    ASSERT_TRUE(cli.wait(10s));
    if (kill_on_parent_exit) {
        EXPECT_TRUE(eventually([&] { return !process_running(evaluator_pid); }, 5s));
    } else {
        const bool orphan_running = process_running(evaluator_pid);
        ::kill(evaluator_pid, SIGKILL);
        EXPECT_TRUE(orphan_running);
    }
}

INSTANTIATE_TEST_SUITE_P(LocalLauncher, KilledLauncherProcess, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "KillOnParentExit" : "Inherited"; });
#endif

TEST(LocalLauncherFactory, RejectsBadParallelism) {
    asio::io_context io;
    gl::launcher_config cfg;
    cfg.max_parallel_jobs = 0;
    boost::system::error_code ec;
    gl::diagnostics diag;
    auto l = gl::make_launcher(cfg, io.get_executor(), ec, diag);
    EXPECT_FALSE(l);
    EXPECT_EQ(ec, gl::errc::config_error);
    EXPECT_THAT(diag.client_message, HasSubstr("max_parallel_jobs"));
}

}  // namespace
