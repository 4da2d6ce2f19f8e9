// e2b_soak_test.cpp - the E2B backend under every fault at once: a soak of
// GENESIS_SOAK_JOBS jobs (default 1,000) at max_parallel_jobs=100 while the
// emulator injects 429s, 5xx, resets, cut command streams, lost create answers,
// vanishing sandboxes and latency; and a concurrency limit below
// max_parallel_jobs that jobs wait out.
#if __has_include("emulator.hpp")

#include "emulator_fixture.hpp"
#include "test_support.hpp"

#include <genesis/launch/job_launcher.hpp>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <time.h>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace gl = genesis::launch;
namespace json = boost::json;
namespace emu = genesis::e2b_emulator;
using namespace std::chrono_literals;
using genesis_test::e2b_harness;
using genesis_test::write_file;
using genesis_test::env_int;

// Writes metrics.json from its --value argument (and the job id from the
// environment), and correct.json. No imports beyond sys/os: cheap to start.
constexpr const char* trivial_py = R"PY(import os, sys
a = sys.argv[1:]
def arg(name):
    return a[a.index(name) + 1]
out = arg("--results_dir")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "metrics.json"), "w") as f:
    f.write('{"combined_score": %d, "public": {"job": "%s"}}' % (int(arg("--value")), os.environ["SOAK_JOB"]))
with open(os.path.join(out, "correct.json"), "w") as f:
    f.write('{"correct": true, "error": null}')
)PY";

// Sleeps a little so that sandboxes overlap, then succeeds.
constexpr const char* short_sleep_py = R"PY(import os, sys, time
a = sys.argv[1:]
out = a[a.index("--results_dir") + 1]
time.sleep(0.3)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "metrics.json"), "w") as f:
    f.write('{"combined_score": 1}')
with open(os.path.join(out, "correct.json"), "w") as f:
    f.write('{"correct": true, "error": null}')
)PY";

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double process_cpu_seconds(int who) {
    rusage u{};
    ::getrusage(who, &u);
    auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return sec(u.ru_utime) + sec(u.ru_stime);
}

emu::fault_rule chance(std::string endpoint, std::string kind, double probability, int status = 500) {
    emu::fault_rule r;
    r.endpoint = std::move(endpoint);
    r.kind = std::move(kind);
    r.status = status;
    r.count = -1;
    r.probability = probability;
    return r;
}

// Faults that lose a job's sandbox attempt (it runs again on a new sandbox, up
// to 3 sandboxes): a vanish that came true, a cut command stream, a reset of
// the command's request.
bool loses_an_attempt(const emu::fault_event& e, const std::set<std::string>& vanished_ids) {
    if (e.label == "cut_stream") return true;
    if (e.label == "reset" && e.endpoint == "process.start") return true;
    return e.label == "vanish" && vanished_ids.count(e.sandbox_id) > 0;
}

// The launcher's log: "<message> (+<seconds since the log began>)" lines.
class timed_log {
public:
    void add(std::string_view message) {
        const double at = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
        char stamp[32];
        std::snprintf(stamp, sizeof stamp, " (+%.3f s)\n", at);
        std::lock_guard lock(m_);
        text_.append(message).append(stamp);
    }
    std::string text() const {
        std::lock_guard lock(m_);
        return text_;
    }

private:
    const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
    mutable std::mutex m_;
    std::string text_;
};

// The launcher's log lines about one job, each on an indented line of its own.
std::string job_log_lines(const std::string& log, const std::string& id) {
    std::string lines;
    std::size_t at = 0;
    const std::string prefix = "job " + id + ": ";
    while ((at = log.find(prefix, at)) != std::string::npos) {
        const auto end = log.find('\n', at);
        lines += "\n    " + log.substr(at, end - at);
        at = end;
    }
    return lines;
}

// ---- the soak --------------------------------------------------------------------------------

TEST(E2bSoak, EveryFaultAtOnceEveryJobClassifiedInTimeNothingLeaked) {
    const int jobs = env_int("GENESIS_SOAK_JOBS", 1000);
    const int seed = env_int("GENESIS_SOAK_SEED", 20261126);
    constexpr int parallel = 100;
    constexpr auto job_timeout = 30s;  // each job's evaluation limit (job_config.timeout)
    // What the backend promises for jobs that end on their own (docs/e2b.md): within their
    // sandbox's lifetime, timeout + 120 s, whose margin covers creates, uploads and the
    // download under the service's refusals and faults (their retries have a 120 s budget).
    // The worst figure is printed.
    constexpr auto allowed_overrun = 120s;

    emu::emulator_options options;
    options.seed = static_cast<std::uint64_t>(seed);
    options.latency = 20ms;
    auto rate_limit = chance("*", "status", 0.10, 429);
    rate_limit.retry_after = 1;
    auto vanish = chance("create", "vanish", 0.01);
    vanish.after_ms = 150;  // mid-job: during the upload, the run or the download
    auto cut = chance("process.start", "cut_stream", 0.02);
    cut.after_events = 1;  // after the start event: the command runs, its stream is cut
    options.faults = {rate_limit,
                      chance("*", "status", 0.02, 500),
                      chance("*", "status", 0.015, 502),
                      chance("*", "status", 0.015, 503),
                      chance("*", "reset", 0.02),
                      cut,
                      chance("create", "lose_response", 0.01),
                      vanish};
    e2b_harness h(options);
    std::string error;
    if (!h.start(error)) GTEST_SKIP() << error;
    write_file(h.dir() / "trivial.py", trivial_py);

    auto cfg = h.config();
    cfg.max_parallel_jobs = parallel;
    cfg.eval_program_path = h.dir() / "trivial.py";
    cfg.e2b.timeout = std::chrono::duration_cast<std::chrono::seconds>(job_timeout);
    cfg.e2b.max_retries = 10;  // per request: ten transient failures in a row stay very unlikely at ~20%
    // GENESIS_SOAK_DEBUG=1 logs each job's phases: a hang report then shows where the jobs stopped.
    const bool debug = env_int("GENESIS_SOAK_DEBUG", 0) != 0;
    auto& l = h.make(cfg);
    // Shared with the logger, which the harness's launcher outlives this frame with.
    auto launcher_log = std::make_shared<timed_log>();
    l.set_logger(gl::logger{debug ? gl::log_level::debug : gl::log_level::info,
                            [launcher_log](gl::log_level, std::string_view message) { launcher_log->add(message); }});

    auto launcher_cpu = [&h] {
        std::promise<double> p;
        auto f = p.get_future();
        asio::post(h.io(), [&p] { p.set_value(thread_cpu_seconds()); });
        return f.get();
    };
    const double cpu0 = launcher_cpu();
    const double self0 = process_cpu_seconds(RUSAGE_SELF);
    const double children0 = process_cpu_seconds(RUSAGE_CHILDREN);
    const auto t0 = std::chrono::steady_clock::now();

    std::mutex m;
    std::map<std::string, gl::job_result> results;
    std::map<std::string, boost::system::error_code> codes;
    genesis_test::batch_progress progress(jobs);
    for (int i = 0; i < jobs; ++i) {
        const std::string id = "soak-" + std::to_string(i);
        auto s = h.spec(id);
        s.extra_args["value"] = i;
        s.env["SOAK_JOB"] = id;
        l.async_submit(std::move(s), [&, id](boost::system::error_code ec, gl::job_result r) {
            {
                std::lock_guard lock(m);
                codes[id] = ec;
                results[id] = std::move(r);
            }
            progress.one_done();
        });
    }
    // No hang: jobs keep finishing. Not a speed guess: a machine of any speed passes as
    // long as no stretch longer than any one job may take (its lifetime) goes by without
    // one finishing.
    if (!progress.wait(std::chrono::duration_cast<std::chrono::seconds>(job_timeout + allowed_overrun))) {
        // Where the unfinished jobs are: their log lines and the faults they met.
        std::set<std::string> done;
        {
            std::lock_guard lock(m);
            for (const auto& [id, r] : results) done.insert(id);
        }
        const auto lines = launcher_log->text();
        const auto faults = h.emulator().on_thread([](emu::emulator& x) { return x.state().fault_log; });
        std::string report;
        int shown = 0;
        for (int i = 0; i < jobs && shown < 5; ++i) {
            const std::string id = "soak-" + std::to_string(i);
            if (done.count(id)) continue;
            ++shown;
            report += "\n" + id + ":";
            for (const auto& f : faults)
                if (f.job == id) report += " " + f.label + "@" + f.endpoint;
            report += job_log_lines(lines, id);
        }
        ADD_FAILURE() << progress.remaining() << " jobs hang; the first of them:" << report;
        l.shutdown();  // ends them (their handlers use this frame's locals)
        return;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = launcher_cpu() - cpu0;
    l.shutdown();
    const double self_cpu = process_cpu_seconds(RUSAGE_SELF) - self0;
    const double children_cpu = process_cpu_seconds(RUSAGE_CHILDREN) - children0;

    auto& e = h.emulator();
    const auto stats = e.stats();
    const auto log = e.on_thread([](emu::emulator& x) { return x.state().fault_log; });
    const auto vanished_ids = e.on_thread([](emu::emulator& x) { return x.state().vanished_ids; });
    std::map<std::string, std::vector<const emu::fault_event*>> by_job;
    for (const auto& f : log)
        if (!f.job.empty()) by_job[f.job].push_back(&f);

    std::map<std::string, int> outcomes;
    long long worst_overrun_ms = 0;
    long long slowest_ms = 0;
    std::string slowest_job;
    int unlucky = 0;  // infra_error after losing 3 sandboxes: the documented budget
    int hit = 0;      // jobs that met at least one fault
    std::map<int, int> lost_sandboxes;  // sandboxes lost mid-job -> jobs
    std::vector<std::string> problems;  // the first 10
    int problem_count = 0;
    auto problem = [&](std::string text) {
        if (++problem_count <= 10) problems.push_back(std::move(text));
    };
    ASSERT_EQ(results.size(), static_cast<std::size_t>(jobs));
    for (int i = 0; i < jobs; ++i) {
        const std::string id = "soak-" + std::to_string(i);
        const auto& r = results[id];
        ++outcomes[std::string(gl::to_string(r.result))];
        if (codes[id]) problem(id + ": completion error " + codes[id].message());
        // Its deadline: job_timeout after it left the queue.
        const auto active = r.timings.total - r.timings.queued;
        const auto over = std::chrono::duration_cast<std::chrono::milliseconds>(active - job_timeout).count();
        worst_overrun_ms = std::max(worst_overrun_ms, static_cast<long long>(over));
        if (active.count() > slowest_ms) {
            slowest_ms = active.count();
            slowest_job = id;
        }
        if (active > job_timeout + allowed_overrun) {
            const auto& t = r.timings;
            problem(id + " ended " + std::to_string(over) + " ms past its deadline (ms: create " +
                    std::to_string(t.create.count()) + ", setup " + std::to_string(t.setup.count()) + ", run " +
                    std::to_string(t.run.count()) + ", download " + std::to_string(t.download.count()) +
                    ", cleanup " + std::to_string(t.cleanup.count()) + ")");
        }

        int lost = 0;
        std::string seen;
        for (const auto* f : by_job[id]) {
            lost += loses_an_attempt(*f, vanished_ids) ? 1 : 0;
            seen += " " + f->label + "@" + f->endpoint;
        }
        hit += by_job[id].empty() ? 0 : 1;
        if (lost > 0) ++lost_sandboxes[lost];
        if (r.result == gl::outcome::ok) {
            // Right metrics: this job's own, not another's.
            const auto* pub = r.metrics.if_contains("public");
            const auto* job = pub && pub->is_object() ? pub->as_object().if_contains("job") : nullptr;
            if (!r.correct || r.combined_score != i || !job || !job->is_string() || job->as_string() != id)
                problem(id + ": ok but wrong results: " + json::serialize(r.metrics) + " " + r.error);
        } else if (r.result == gl::outcome::infra_error && lost >= 3) {
            ++unlucky;  // every fault retryable, but more sandboxes lost than the budget allows
        } else {
            // Never a candidate outcome for an infra fault; infra_error only past the budget.
            problem(id + ": " + std::string(gl::to_string(r.result)) + " (" + r.diagnostic + ") after faults:" + seen);
        }
    }

    const auto live = stats.at("live").to_number<std::int64_t>();
    const auto created = stats.at("created").to_number<std::int64_t>();
    const auto killed = stats.at("killed").to_number<std::int64_t>();
    const auto expired = stats.at("expired").to_number<std::int64_t>();
    const auto vanished = stats.at("vanished").to_number<std::int64_t>();
    const auto leaked = created - killed - expired - vanished;

    std::string faults_text;
    std::int64_t faults_total = 0;
    for (const auto& [kind, n] : stats.at("faults_by_kind").as_object()) {
        faults_text += " " + std::string(kind) + "=" + std::to_string(n.to_number<std::int64_t>());
        faults_total += n.to_number<std::int64_t>();
    }
    std::string outcomes_text;
    for (const auto& [name, n] : outcomes) outcomes_text += " " + name + "=" + std::to_string(n);
    std::printf("[ soak     ] jobs run: %d (max_parallel_jobs=%d, seed %d)\n", jobs, parallel, seed);
    std::printf("[ soak     ] faults injected: %lld of %lld requests:%s (sandboxes that really vanished: %lld)\n",
                static_cast<long long>(faults_total),
                static_cast<long long>(stats.at("requests").at("total").to_number<std::int64_t>()),
                faults_text.c_str(), static_cast<long long>(vanished));
    std::string lost_text;
    for (const auto& [n, count] : lost_sandboxes) lost_text += " " + std::to_string(n) + "x:" + std::to_string(count);
    std::printf("[ soak     ] jobs that met a fault: %d; jobs that lost sandboxes mid-job (times:jobs):%s\n", hit,
                lost_text.empty() ? " none" : lost_text.c_str());
    std::printf("[ soak     ] outcomes:%s (infra_error after 3 lost sandboxes: %d)\n", outcomes_text.c_str(), unlucky);
    std::printf("[ soak     ] leaks: %lld (created %lld = killed %lld + expired %lld + vanished %lld; live after "
                "shutdown %lld)\n",
                static_cast<long long>(leaked), static_cast<long long>(created), static_cast<long long>(killed),
                static_cast<long long>(expired), static_cast<long long>(vanished), static_cast<long long>(live));
    std::printf("[ soak     ] longest time past its deadline: %lld ms (deadline %llds after leaving the queue; "
                "slowest job %s took %.1f s)\n",
                std::max(0LL, worst_overrun_ms), static_cast<long long>(job_timeout.count()), slowest_job.c_str(),
                static_cast<double>(slowest_ms) / 1000.0);
    {
        const auto& t = results[slowest_job].timings;
        std::printf("[ soak     ] slowest job's phases (ms): queued %lld, create %lld, setup %lld, run %lld, download "
                    "%lld, cleanup %lld%s\n",
                    static_cast<long long>(t.queued.count()), static_cast<long long>(t.create.count()),
                    static_cast<long long>(t.setup.count()), static_cast<long long>(t.run.count()),
                    static_cast<long long>(t.download.count()), static_cast<long long>(t.cleanup.count()),
                    debug ? job_log_lines(launcher_log->text(), slowest_job).c_str() : "");
    }
    std::printf("[ soak     ] wall %.1f s; CPU: launcher thread %.1f s, test process %.1f s (launcher + emulator), "
                "reaped child processes %.1f s\n",
                wall,
                cpu, self_cpu, children_cpu);

    EXPECT_EQ(problem_count, 0) << "problems (the first 10 follow)";
    for (const auto& p : problems) ADD_FAILURE() << p;
    EXPECT_EQ(live, 0);
    EXPECT_EQ(leaked, 0) << json::serialize(stats);
    // The soak did inject every kind it was asked for.
    for (const char* kind : {"status_429", "status_500", "status_502", "status_503", "reset", "cut_stream",
                             "lose_response", "vanish"})
        EXPECT_TRUE(stats.at("faults_by_kind").as_object().contains(kind)) << kind << " never injected";
    EXPECT_EQ(outcomes["ok"] + unlucky, jobs);
}

// ---- concurrency limit -------------------------------------------------------------------------

TEST(E2bSoak, AConcurrencyLimitBelowMaxParallelJobsMakesJobsWaitNotFail) {
    constexpr int cap = 3;
    constexpr int jobs = 24;
    emu::emulator_options options;
    options.max_concurrent_sandboxes = cap;
    e2b_harness h(options);
    std::string error;
    if (!h.start(error)) GTEST_SKIP() << error;
    write_file(h.dir() / "short_sleep.py", short_sleep_py);

    auto cfg = h.config();
    cfg.max_parallel_jobs = 12;  // four times the limit
    cfg.eval_program_path = h.dir() / "short_sleep.py";
    cfg.e2b.max_retries = 2;  // a small budget: waiting for a free slot must not spend it
    auto& l = h.make(cfg);

    std::vector<gl::job_handle> handles;
    for (int i = 0; i < jobs; ++i) handles.push_back(l.submit(h.spec("capped-" + std::to_string(i))));
    int ok = 0;
    for (auto& handle : handles) {
        ASSERT_EQ(handle.result.wait_for(120s), std::future_status::ready) << handle.id() << " hangs";
        auto r = handle.result.get();
        EXPECT_EQ(r.result, gl::outcome::ok) << r.job_id << ": " << r.diagnostic;
        ok += r.succeeded() ? 1 : 0;
    }
    l.shutdown();
    auto& e = h.emulator();
    EXPECT_EQ(ok, jobs);
    EXPECT_EQ(e.peak_live(), static_cast<std::size_t>(cap));  // the limit was reached, never passed
    EXPECT_GT(e.requests("create"), jobs);                    // some creates were refused and repeated
    EXPECT_EQ(e.stat("created"), jobs);
    EXPECT_TRUE(e.no_leaks());
}

}  // namespace

#endif
