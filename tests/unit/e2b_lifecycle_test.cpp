// The E2B lifecycle (lifecycle.cpp, download.cpp, e2b_backend.cpp) driven through
// the sandbox_api seam by a scripted fake: no sockets, no sandboxes, no processes.
// Each test scripts the answers of the service and checks the job's outcome, the
// calls made, and that every sandbox created was killed.
#include "e2b/e2b_backend.hpp"
#include "e2b/sandbox_api.hpp"
#include "launcher_core.hpp"
#include "test_support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <set>

namespace {

namespace asio = boost::asio;
namespace gl = genesis::launch;
namespace detail = genesis::launch::detail;
namespace e2b = genesis::launch::detail::e2b;
using kind = e2b::api_error::kind;
using gl::outcome;
using testing::HasSubstr;
using namespace std::chrono_literals;

e2b::api_error error(kind k, unsigned status = 0, std::string message = "scripted") {
    e2b::api_error e;
    e.k = k;
    e.status = status;
    e.message = std::move(message);
    return e;
}

e2b::run_result exited(int code) {
    e2b::run_result r;
    r.exited = true;
    r.exit_code = code;
    r.status = "exit status " + std::to_string(code);
    return r;
}

// The service, scripted: each call takes the next scripted answer for its kind, or
// the default (a healthy sandbox whose evaluator wrote a score of 1.5).
class fake_api final : public e2b::sandbox_api {
public:
    std::deque<e2b::api_result<e2b::sandbox_handle>> creates;
    std::deque<e2b::api_status> uploads;
    std::deque<e2b::api_result<e2b::run_result>> evaluator_runs;
    std::deque<e2b::api_result<e2b::run_result>> pip_runs;
    std::deque<e2b::api_result<std::vector<e2b::dir_entry>>> listings;
    std::vector<e2b::sandbox_summary> tagged;  // what list() can find (while alive)
    std::string metrics = R"({"combined_score": 1.5})";
    std::string correct = R"({"correct": true, "error": null})";
    std::string evaluator_stdout = "evaluating\n";

    std::vector<std::string> calls;
    std::set<std::string> live;  // created, not yet killed
    int created = 0;

    asio::awaitable<e2b::api_result<e2b::sandbox_handle>> create(std::string, std::chrono::seconds,
                                                                 std::map<std::string, std::string> metadata,
                                                                 std::map<std::string, std::string>) override {
        calls.push_back("create");
        last_tags = metadata;
        std::optional<e2b::api_error> failure;
        if (!creates.empty()) {
            auto r = std::move(creates.front());
            creates.pop_front();
            if (!r) failure = *r.error;
        }
        // A create whose answer was lost did make its sandbox, tagged as asked.
        if (failure && failure->k != kind::maybe_created) co_return e2b::api_result<e2b::sandbox_handle>::failure(*failure);
        e2b::sandbox_handle sb;
        sb.id = "sbx-" + std::to_string(++created);
        sb.envd_access_token = "token";
        live.insert(sb.id);
        if (failure) {
            tagged.push_back({sb.id, "base", "running", metadata});
            co_return e2b::api_result<e2b::sandbox_handle>::failure(*failure);
        }
        co_return e2b::api_result<e2b::sandbox_handle>::success(sb);
    }
    asio::awaitable<e2b::api_result<bool>> kill(std::string id) override {
        calls.push_back("kill " + id);
        if (hold_kills) co_await held_back();
        co_return e2b::api_result<bool>::success(live.erase(id) > 0);
    }
    asio::awaitable<e2b::api_result<std::vector<e2b::sandbox_summary>>> list(
        std::map<std::string, std::string> metadata) override {
        calls.push_back("list");
        std::vector<e2b::sandbox_summary> out;
        for (const auto& s : tagged) {
            bool match = live.count(s.id) > 0;  // killed sandboxes are not listed
            for (const auto& [k, v] : metadata) match = match && s.metadata.count(k) && s.metadata.at(k) == v;
            if (match) out.push_back(s);
        }
        co_return e2b::api_result<std::vector<e2b::sandbox_summary>>::success(out);
    }
    asio::awaitable<e2b::api_status> upload_files(e2b::sandbox_handle, std::vector<e2b::upload_file> files) override {
        calls.push_back("upload " + std::to_string(files.size()));
        if (!uploads.empty()) {
            auto r = std::move(uploads.front());
            uploads.pop_front();
            co_return r;
        }
        co_return e2b::api_status::success(std::monostate());
    }
    asio::awaitable<e2b::api_result<std::string>> download(e2b::sandbox_handle, std::string path) override {
        calls.push_back("download " + path.substr(path.rfind('/') + 1));
        if (path.ends_with("/metrics.json")) co_return e2b::api_result<std::string>::success(metrics);
        if (path.ends_with("/correct.json")) co_return e2b::api_result<std::string>::success(correct);
        co_return e2b::api_result<std::string>::failure(error(kind::not_found, 404, "no such file"));
    }
    asio::awaitable<e2b::api_result<std::vector<e2b::dir_entry>>> list_dir(e2b::sandbox_handle, std::string path,
                                                                          std::uint32_t) override {
        calls.push_back("list_dir");
        if (hold_listings) {
            co_await held_back();
            co_return e2b::api_result<std::vector<e2b::dir_entry>>::failure(error(kind::cancelled));
        }
        if (!listings.empty()) {
            auto r = std::move(listings.front());
            listings.pop_front();
            co_return r;
        }
        std::vector<e2b::dir_entry> entries;
        for (const char* name : {"metrics.json", "correct.json"}) {
            e2b::dir_entry e;
            e.name = name;
            e.path = path + "/" + name;
            e.type = e2b::file_type::file;
            e.size = 10;
            entries.push_back(e);
        }
        co_return e2b::api_result<std::vector<e2b::dir_entry>>::success(entries);
    }
    asio::awaitable<e2b::api_result<e2b::run_result>> run(e2b::sandbox_handle, std::string command_line, std::string,
                                                          std::map<std::string, std::string>,
                                                          std::optional<std::chrono::milliseconds>,
                                                          std::function<void(std::string_view)> on_stdout,
                                                          std::function<void(std::string_view)>,
                                                          std::function<void(std::uint32_t)> on_start) override {
        const bool pip = command_line.starts_with("pip install");
        calls.push_back(pip ? "pip" : "run");
        if (on_start) on_start(42);
        auto& script = pip ? pip_runs : evaluator_runs;
        if (!script.empty()) {
            auto r = std::move(script.front());
            script.pop_front();
            co_return r;
        }
        if (!pip && on_stdout) on_stdout(evaluator_stdout);
        co_return e2b::api_result<e2b::run_result>::success(exited(0));
    }
    void close() override {}
    void forget(const e2b::sandbox_handle&) override {}
    std::size_t idle_envd_connections(const e2b::sandbox_handle&) const override { return 3; }

    std::map<std::string, std::string> last_tags;

    // A slow service: kills (or listings) are held until release(), or until the
    // caller cancels them.
    bool hold_kills = false;
    bool hold_listings = false;
    std::set<asio::steady_timer*> held;
    asio::awaitable<void> held_back() {
        asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
        held.insert(&t);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        held.erase(&t);
    }
    void release() {
        for (auto* t : held) t->cancel();
    }

    // Calls made for the job, up to its result (shutdown's sweep comes after).
    std::vector<std::string> job_calls;

    int count(std::string_view call) const {
        int n = 0;
        for (const auto& c : job_calls) n += c == call || (c.starts_with(call) && c[call.size()] == ' ');
        return n;
    }
};

class E2bLifecycle : public testing::Test {
protected:
    E2bLifecycle() {
        cfg_.type = gl::job_type::e2b;
        cfg_.e2b.api_key = "e2b_" + std::string(40, '1');
        cfg_.e2b.create_rate = 1e6;  // no pacing in these tests (the pacer has its own)
        cfg_.e2b.max_retries = 3;
        cfg_.eval_program_path = tmp_ / "evaluate.py";
        cfg_.results_dir = tmp_ / "results";
        genesis_test::write_file(tmp_ / "evaluate.py", "print('evaluating')\n");
        genesis_test::write_file(tmp_ / "candidate.py", "x = 1\n");
    }

    detail::backend_factory factory() {
        e2b::backoff_params fast;
        fast.initial = 1ms;
        fast.maximum = 2ms;
        return detail::e2b_backend_factory(
            [this](asio::any_io_executor, const gl::launcher_config&) {
                return std::unique_ptr<e2b::sandbox_api>(new forwarding(api_));
            },
            fast);
    }
    gl::job_spec job() const {
        gl::job_spec job;
        job.program_path = tmp_ / "candidate.py";
        job.job_id = "job-1";
        return job;
    }
    // Runs `io` until `done()` (or 30 s: the bound only stops a hang).
    template <class Done>
    static void run_until(asio::io_context& io, Done done) {
        const auto until = std::chrono::steady_clock::now() + 30s;
        while (!done() && std::chrono::steady_clock::now() < until) {
            if (io.stopped()) io.restart();
            io.run_one_for(50ms);
        }
    }

    // Runs one job to its end against the fake.
    gl::job_result run_one() {
        asio::io_context io;
        detail::launcher_core launcher(cfg_, io.get_executor(), factory());
        auto result = launcher.async_submit(job(), asio::use_future);
        std::future<void> down;
        io.run_for(30s);  // the job ends long before; the bound only stops a hang
        EXPECT_EQ(result.wait_for(0s), std::future_status::ready) << "the job did not end";
        auto r = result.get();
        api_.job_calls = api_.calls;
        down = launcher.async_shutdown(asio::use_future);
        io.restart();
        io.run_for(30s);
        EXPECT_EQ(down.wait_for(0s), std::future_status::ready) << "shutdown did not end";
        // Shutdown's sweep looks for what is left with the run's tag.
        EXPECT_EQ(api_.calls.size(), api_.job_calls.size() + 1);
        EXPECT_EQ(api_.calls.back(), "list");
        EXPECT_TRUE(api_.live.empty()) << "a sandbox was left alive";
        return r;
    }

    // The launcher owns its API; the test keeps the fake to script and inspect it.
    struct forwarding final : e2b::sandbox_api {
        explicit forwarding(fake_api& f) : f(f) {}
        fake_api& f;
        asio::awaitable<e2b::api_result<e2b::sandbox_handle>> create(std::string t, std::chrono::seconds s,
                                                                     std::map<std::string, std::string> m,
                                                                     std::map<std::string, std::string> e) override {
            return f.create(std::move(t), s, std::move(m), std::move(e));
        }
        asio::awaitable<e2b::api_result<bool>> kill(std::string id) override { return f.kill(std::move(id)); }
        asio::awaitable<e2b::api_result<std::vector<e2b::sandbox_summary>>> list(
            std::map<std::string, std::string> m) override {
            return f.list(std::move(m));
        }
        asio::awaitable<e2b::api_status> upload_files(e2b::sandbox_handle sb, std::vector<e2b::upload_file> x) override {
            return f.upload_files(std::move(sb), std::move(x));
        }
        asio::awaitable<e2b::api_result<std::string>> download(e2b::sandbox_handle sb, std::string p) override {
            return f.download(std::move(sb), std::move(p));
        }
        asio::awaitable<e2b::api_result<std::vector<e2b::dir_entry>>> list_dir(e2b::sandbox_handle sb, std::string p,
                                                                              std::uint32_t d) override {
            return f.list_dir(std::move(sb), std::move(p), d);
        }
        asio::awaitable<e2b::api_result<e2b::run_result>> run(e2b::sandbox_handle sb, std::string c, std::string cwd,
                                                              std::map<std::string, std::string> env,
                                                              std::optional<std::chrono::milliseconds> t,
                                                              std::function<void(std::string_view)> o,
                                                              std::function<void(std::string_view)> e,
                                                              std::function<void(std::uint32_t)> s) override {
            return f.run(std::move(sb), std::move(c), std::move(cwd), std::move(env), t, std::move(o), std::move(e),
                         std::move(s));
        }
        void close() override { f.close(); }
        void forget(const e2b::sandbox_handle& sb) override { f.forget(sb); }
        std::size_t idle_envd_connections(const e2b::sandbox_handle& sb) const override {
            return f.idle_envd_connections(sb);
        }
    };

    genesis_test::temp_dir tmp_;
    gl::launcher_config cfg_;
    fake_api api_;
};

TEST_F(E2bLifecycle, AHealthyJobCreatesUploadsRunsDownloadsAndKills) {
    auto r = run_one();
    EXPECT_EQ(r.result, outcome::ok) << r.diagnostic;
    EXPECT_TRUE(r.correct);
    EXPECT_DOUBLE_EQ(r.combined_score, 1.5);
    EXPECT_EQ(r.sandbox_id, "sbx-1");
    EXPECT_EQ(r.stdout_text, "evaluating\n");
    EXPECT_EQ(api_.count("create"), 1);
    EXPECT_EQ(api_.count("upload"), 1);
    EXPECT_EQ(api_.count("run"), 1);
    EXPECT_EQ(api_.count("kill"), 1);
    EXPECT_EQ(api_.job_calls.back(), "kill sbx-1");
    EXPECT_EQ(api_.last_tags.at("genesis_job"), "job-1");
    EXPECT_EQ(genesis_test::read_file(tmp_ / "results" / "job-1" / "metrics.json"), api_.metrics);
}

TEST_F(E2bLifecycle, CreateErrorsEndTheJobAsTheOutcomeTableSays) {
    struct row {
        e2b::api_error e;
        outcome expected;
        int creates;
        const char* says;
    };
    const row rows[] = {
        {error(kind::unauthorized, 401, "invalid key"), outcome::infra_error, 1, "E2B rejected the API key"},
        {error(kind::not_found, 404, "no template"), outcome::setup_failed, 1, "E2B cannot create a sandbox from template"},
        {error(kind::http, 400, "bad request"), outcome::setup_failed, 1, "E2B refused to create a sandbox"},
        {error(kind::http, 500, "placement failed"), outcome::infra_error, 3, "could not create a sandbox after 3 attempts"},
        {error(kind::http, 503, "unavailable"), outcome::infra_error, 3, "could not create a sandbox after 3 attempts"},
        {error(kind::protocol, 200, "not JSON"), outcome::infra_error, 1, "could not create a sandbox: "},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.says);
        api_ = fake_api{};
        for (int i = 0; i < 5; ++i) api_.creates.push_back(e2b::api_result<e2b::sandbox_handle>::failure(row.e));
        auto r = run_one();
        EXPECT_EQ(r.result, row.expected);
        EXPECT_THAT(r.diagnostic, HasSubstr(row.says));
        EXPECT_EQ(api_.count("create"), row.creates);
        EXPECT_EQ(api_.count("upload"), 0);
        EXPECT_EQ(r.error, r.diagnostic);  // no correct.json: the diagnostic is the error
    }
}

TEST_F(E2bLifecycle, ALostCreateIsFoundByItsTagsKilledAndCreatedAgain) {
    api_.creates.push_back(e2b::api_result<e2b::sandbox_handle>::failure(error(kind::maybe_created, 502)));
    auto r = run_one();
    EXPECT_EQ(r.result, outcome::ok) << r.diagnostic;
    EXPECT_EQ(r.sandbox_id, "sbx-2");
    EXPECT_EQ(api_.count("create"), 2);
    EXPECT_EQ(api_.count("list"), 1);
    EXPECT_EQ(api_.count("kill sbx-1"), 1);  // the lost one, found by its tags
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_THAT(r.warnings[0], HasSubstr("sandbox sbx-1 was created without an answer reaching us; killed it"));
}

TEST_F(E2bLifecycle, ALostSandboxRunsTheJobAgainUpToThreeSandboxes) {
    for (int i = 0; i < 2; ++i)
        api_.evaluator_runs.push_back(
            e2b::api_result<e2b::run_result>::failure(error(kind::sandbox_gone, 502, "The sandbox was not found")));
    auto r = run_one();
    EXPECT_EQ(r.result, outcome::ok) << r.diagnostic;
    EXPECT_EQ(api_.count("create"), 3);
    EXPECT_EQ(api_.count("kill"), 3);
    ASSERT_EQ(r.warnings.size(), 2u);
    EXPECT_THAT(r.warnings[0], HasSubstr("sandbox sbx-1 vanished during the evaluation"));
    EXPECT_THAT(r.warnings[1], HasSubstr("sandbox sbx-2 vanished during the evaluation"));

    api_ = fake_api{};
    for (int i = 0; i < 3; ++i)
        api_.evaluator_runs.push_back(e2b::api_result<e2b::run_result>::failure(error(kind::transport, 0, "reset")));
    r = run_one();
    EXPECT_EQ(r.result, outcome::infra_error);
    EXPECT_THAT(r.diagnostic, HasSubstr("no more retries: 3 sandboxes were lost mid-job"));
    EXPECT_EQ(api_.count("create"), 3);

    api_ = fake_api{};
    cfg_.e2b.retry_vanished = false;
    api_.evaluator_runs.push_back(e2b::api_result<e2b::run_result>::failure(error(kind::sandbox_gone, 502)));
    r = run_one();
    EXPECT_EQ(r.result, outcome::infra_error);
    EXPECT_THAT(r.diagnostic, HasSubstr("not retried (job_config.retry_vanished is false)"));
    EXPECT_EQ(api_.count("create"), 1);
}

TEST_F(E2bLifecycle, TheEvaluatorsEndIsClassifiedByTheContract) {
    api_.evaluator_runs.push_back(e2b::api_result<e2b::run_result>::success(exited(3)));
    api_.correct = R"({"correct": false, "error": "wrong answer"})";
    auto r = run_one();
    EXPECT_EQ(r.result, outcome::candidate_failed);
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.diagnostic, "evaluator exited with status 3");
    EXPECT_EQ(r.error, "wrong answer");

    api_ = fake_api{};
    e2b::run_result killed;
    killed.exit_code = -1;
    killed.status = "signal: killed";
    api_.evaluator_runs.push_back(e2b::api_result<e2b::run_result>::success(killed));
    r = run_one();
    EXPECT_EQ(r.result, outcome::candidate_failed);
    EXPECT_EQ(r.signal, SIGKILL);
    EXPECT_EQ(r.diagnostic, "evaluator killed by SIGKILL");

    api_ = fake_api{};
    api_.evaluator_runs.push_back(e2b::api_result<e2b::run_result>::failure(error(kind::timeout, 0, "deadline")));
    r = run_one();
    EXPECT_EQ(r.result, outcome::timeout);
    EXPECT_THAT(r.diagnostic, HasSubstr("exceeded; the evaluator was killed"));
    EXPECT_TRUE(r.correct);  // partial results are still downloaded
}

// The time limit is a promise to the engine: a slow kill is cleanup that goes on
// after the result, and shutdown() waits for it before its sweep.
TEST_F(E2bLifecycle, TheResultDoesNotWaitForASlowKillButShutdownDoes) {
    api_.hold_kills = true;
    asio::io_context io;
    detail::launcher_core launcher(cfg_, io.get_executor(), factory());
    auto result = launcher.async_submit(job(), asio::use_future);
    run_until(io, [&] { return result.wait_for(0s) == std::future_status::ready; });
    ASSERT_EQ(result.wait_for(0s), std::future_status::ready) << "the result waited for the kill";
    auto r = result.get();
    EXPECT_EQ(r.result, outcome::ok) << r.diagnostic;
    EXPECT_EQ(api_.held.size(), 1u) << "the kill is still under way";
    EXPECT_EQ(api_.live.count("sbx-1"), 1u);
    EXPECT_GT(r.sandbox_seconds, 0.0);

    auto down = launcher.async_shutdown(asio::use_future);
    io.restart();
    io.poll();
    EXPECT_NE(down.wait_for(0s), std::future_status::ready) << "shutdown did not wait for the kill";
    EXPECT_EQ(api_.calls.back(), "kill sbx-1") << "the sweep began before the kill ended";
    api_.release();
    run_until(io, [&] { return down.wait_for(0s) == std::future_status::ready; });
    ASSERT_EQ(down.wait_for(0s), std::future_status::ready) << "shutdown did not end";
    EXPECT_TRUE(api_.live.empty());
    EXPECT_EQ(api_.calls.back(), "list");  // the sweep, after the kill
}

// Sandboxes whose kill is still under way count against max_parallel_jobs: the next
// job's create waits for them, so no more sandboxes live at once than configured.
TEST_F(E2bLifecycle, ASlowKillHoldsTheNextCreateNotTheResult) {
    cfg_.max_parallel_jobs = 1;
    api_.hold_kills = true;
    asio::io_context io;
    detail::launcher_core launcher(cfg_, io.get_executor(), factory());
    auto first = launcher.async_submit(job(), asio::use_future);
    auto second_spec = job();
    second_spec.job_id = "job-2";
    auto second = launcher.async_submit(second_spec, asio::use_future);
    run_until(io, [&] { return first.wait_for(0s) == std::future_status::ready; });
    ASSERT_EQ(first.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(first.get().result, outcome::ok);
    io.poll();
    auto creates = [&] { return std::count(api_.calls.begin(), api_.calls.end(), "create"); };
    EXPECT_EQ(creates(), 1) << "a second sandbox was created while the first one's kill was under way";
    EXPECT_NE(second.wait_for(0s), std::future_status::ready);
    api_.hold_kills = false;
    api_.release();
    run_until(io, [&] { return second.wait_for(0s) == std::future_status::ready; });
    ASSERT_EQ(second.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(second.get().result, outcome::ok);
    EXPECT_EQ(creates(), 2);
    auto down = launcher.async_shutdown(asio::use_future);
    run_until(io, [&] { return down.wait_for(0s) == std::future_status::ready; });
    EXPECT_TRUE(api_.live.empty());
}

// An evaluator stopped at its limit: what it wrote is fetched within kill_grace + a
// margin or not at all; the outcome stays `timeout` either way.
TEST_F(E2bLifecycle, ATimedOutJobsResultDoesNotWaitForASlowDownload) {
    cfg_.kill_grace = 0ms;
    api_.hold_listings = true;
    api_.evaluator_runs.push_back(e2b::api_result<e2b::run_result>::failure(error(kind::timeout, 0, "deadline")));
    auto r = run_one();
    EXPECT_EQ(r.result, outcome::timeout) << r.diagnostic;
    EXPECT_THAT(r.diagnostic, HasSubstr("exceeded; the evaluator was killed"));
    EXPECT_THAT(r.warnings, testing::Contains(HasSubstr("the results the evaluator wrote before its time limit could "
                                                        "not be fetched within 2s (job_config.kill_grace + 2s)")));
    EXPECT_TRUE(api_.held.empty()) << "the download was not stopped";
    EXPECT_EQ(api_.count("kill sbx-1"), 1);
    EXPECT_EQ(api_.count("create"), 1) << "a timed-out job is not run again";
}

TEST_F(E2bLifecycle, InstallFailuresAndTimeoutsAreSetupFailures) {
    cfg_.e2b.dependencies = {"numpy"};
    cfg_.e2b.install_timeout = 600s;
    api_.pip_runs.push_back(e2b::api_result<e2b::run_result>::failure(error(kind::timeout, 0, "deadline")));
    auto r = run_one();
    EXPECT_EQ(r.result, outcome::setup_failed);
    EXPECT_THAT(r.diagnostic, HasSubstr("did not finish within 600s (job_config.install_timeout)"));
    EXPECT_EQ(api_.count("run"), 0);

    api_ = fake_api{};
    api_.pip_runs.push_back(e2b::api_result<e2b::run_result>::success(exited(1)));
    r = run_one();
    EXPECT_EQ(r.result, outcome::setup_failed);
    EXPECT_THAT(r.diagnostic, HasSubstr("dependency install failed: `pip install numpy` exited with status 1"));
}

TEST_F(E2bLifecycle, UploadAndDownloadErrors) {
    api_.uploads.push_back(e2b::api_status::failure(error(kind::http, 400, "path not allowed")));
    auto r = run_one();
    EXPECT_EQ(r.result, outcome::setup_failed);
    EXPECT_THAT(r.diagnostic, HasSubstr("path not allowed"));
    EXPECT_EQ(api_.count("run"), 0);

    api_ = fake_api{};
    api_.uploads.push_back(e2b::api_status::failure(error(kind::transport, 0, "reset (gave up after 3 attempts)")));
    r = run_one();
    EXPECT_EQ(r.result, outcome::infra_error);

    api_ = fake_api{};
    for (int i = 0; i < 3; ++i)
        api_.listings.push_back(
            e2b::api_result<std::vector<e2b::dir_entry>>::failure(error(kind::unauthorized, 401, "bad token")));
    r = run_one();
    EXPECT_EQ(r.result, outcome::infra_error);
    EXPECT_THAT(r.diagnostic, HasSubstr("the sandbox refused its access token"));
}

}  // namespace
