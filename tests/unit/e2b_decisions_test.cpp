// The E2B backend's decisions without any I/O (library/src/e2b/decisions.*): one
// test per row of the outcome table in docs/e2b.md that the backend decides, the
// lost-sandbox budget, the stopped-job reports and the create pacer at real rates
// on a manual clock.
#include "e2b/decisions.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <vector>

namespace {

namespace e2b = genesis::launch::detail::e2b;
using genesis::launch::outcome;
using kind = e2b::api_error::kind;
using action = e2b::create_verdict::action;
using namespace std::chrono_literals;

e2b::api_error error(kind k, unsigned status = 0, std::string message = "E2B said no") {
    e2b::api_error e;
    e.k = k;
    e.status = status;
    e.message = std::move(message);
    return e;
}

e2b::create_verdict create_after(const e2b::api_error& e, bool held = false) {
    return e2b::judge_create_error(e, held, "base", 720s);
}

// ---- create ---------------------------------------------------------------------------------

TEST(E2bCreateDecision, UnknownTemplateOrABadRequestIsTheSetupsFault) {
    auto v = create_after(error(kind::not_found, 404, "template 'nope' not found"));
    EXPECT_EQ(v.act, action::fail);
    EXPECT_EQ(v.result, outcome::setup_failed);
    EXPECT_EQ(v.message, "E2B cannot create a sandbox from template 'base' (job_config.template): template 'nope' not found");
    for (unsigned status : {400u, 404u, 422u}) {
        v = create_after(error(kind::http, status, "bad timeout"));
        EXPECT_EQ(v.act, action::fail) << status;
        EXPECT_EQ(v.result, outcome::setup_failed) << status;
        EXPECT_EQ(v.message, "E2B refused to create a sandbox (template 'base', lifetime 720s): bad timeout");
    }
}

TEST(E2bCreateDecision, ARejectedKeyIsAnInfraErrorThatSaysSo) {
    auto v = create_after(error(kind::unauthorized, 401, "invalid API key"));
    EXPECT_EQ(v.act, action::fail);
    EXPECT_EQ(v.result, outcome::infra_error);
    EXPECT_EQ(v.message, "E2B rejected the API key (E2B_API_KEY): invalid API key");
}

TEST(E2bCreateDecision, TransientFailuresAreRetried) {
    for (const auto& e : {error(kind::http, 500), error(kind::http, 503), error(kind::transport),
                          error(kind::timeout), error(kind::http, 408)}) {
        auto v = create_after(e);
        EXPECT_EQ(v.act, action::retry) << e.status;
        EXPECT_EQ(v.message, "E2B said no");
    }
}

TEST(E2bCreateDecision, PermanentFailuresEndTheJob) {
    for (const auto& e : {error(kind::http, 409), error(kind::protocol), error(kind::tls)}) {
        auto v = create_after(e);
        EXPECT_EQ(v.act, action::fail);
        EXPECT_EQ(v.result, outcome::infra_error);
        EXPECT_EQ(v.message, "could not create a sandbox: E2B said no");
    }
}

TEST(E2bCreateDecision, ALostAnswerIsLookedUpByTagsThenRetried) {
    auto v = create_after(error(kind::maybe_created, 502));
    EXPECT_EQ(v.act, action::look_up_lost);
}

TEST(E2bCreateDecision, AConcurrencyLimitWaitsForOwnSandboxesOnlyWhenThereAreAny) {
    EXPECT_EQ(create_after(error(kind::rate_limited, 429), true).act, action::wait_for_slot);
    EXPECT_EQ(create_after(error(kind::rate_limited, 429), false).act, action::retry);
}

// ---- envd calls -----------------------------------------------------------------------------

TEST(E2bEnvdDecision, AVanishedSandboxIsLostInEveryPhase) {
    for (auto p : {e2b::phase::upload, e2b::phase::install, e2b::phase::run, e2b::phase::download}) {
        auto v = e2b::judge_envd_error(p, error(kind::sandbox_gone, 502, "The sandbox was not found"), "evaluator run");
        EXPECT_TRUE(v.sandbox_lost);
        EXPECT_FALSE(v.connection_broke);
        EXPECT_EQ(v.message, "evaluator run: The sandbox was not found");
    }
}

TEST(E2bEnvdDecision, ABrokenStreamLosesTheAttemptOnlyWhileACommandRuns) {
    for (auto p : {e2b::phase::install, e2b::phase::run}) {
        for (auto k : {kind::transport, kind::protocol}) {
            auto v = e2b::judge_envd_error(p, error(k), "evaluator run");
            EXPECT_TRUE(v.sandbox_lost);
            EXPECT_TRUE(v.connection_broke);
        }
    }
    // An upload or download whose retries were spent is an infra_error.
    for (auto p : {e2b::phase::upload, e2b::phase::download}) {
        auto v = e2b::judge_envd_error(p, error(kind::transport), "upload");
        EXPECT_FALSE(v.sandbox_lost);
        EXPECT_EQ(v.result, outcome::infra_error);
        EXPECT_EQ(v.message, "upload: E2B said no");
    }
}

TEST(E2bEnvdDecision, AnUploadRefusedForWhatItAskedIsTheSetupsFault) {
    auto v = e2b::judge_envd_error(e2b::phase::upload, error(kind::http, 400, "path not allowed"), "upload");
    EXPECT_FALSE(v.sandbox_lost);
    EXPECT_EQ(v.result, outcome::setup_failed);
    // Server trouble, or the same status in another phase, is not.
    for (unsigned status : {408u, 429u, 500u})
        EXPECT_EQ(e2b::judge_envd_error(e2b::phase::upload, error(kind::http, status), "upload").result,
                  outcome::infra_error);
    EXPECT_EQ(e2b::judge_envd_error(e2b::phase::download, error(kind::http, 400), "download").result,
              outcome::infra_error);
}

TEST(E2bEnvdDecision, ARefusedAccessTokenIsAnInfraError) {
    auto v = e2b::judge_envd_error(e2b::phase::run, error(kind::unauthorized, 401, "invalid token"), "evaluator run");
    EXPECT_FALSE(v.sandbox_lost);
    EXPECT_EQ(v.result, outcome::infra_error);
    EXPECT_EQ(v.message, "evaluator run: the sandbox refused its access token: invalid token");
}

// ---- lost sandboxes -------------------------------------------------------------------------

TEST(E2bLostSandbox, UpToThreeSandboxesPerJobThenAnInfraError) {
    auto v = e2b::judge_lost_sandbox(1, true, e2b::phase::run, false, "sbx1", "The sandbox was not found");
    EXPECT_TRUE(v.run_again);
    EXPECT_EQ(v.message, "sandbox sbx1 vanished during the evaluation (The sandbox was not found); retried on a new sandbox");
    EXPECT_TRUE(e2b::judge_lost_sandbox(2, true, e2b::phase::run, true, "sbx2", "reset").run_again);
    v = e2b::judge_lost_sandbox(3, true, e2b::phase::install, true, "sbx3", "reset");
    EXPECT_FALSE(v.run_again);
    EXPECT_EQ(v.message, "the connection to sandbox sbx3 broke during dependency install (reset); no more retries: 3 "
                         "sandboxes were lost mid-job");
}

TEST(E2bLostSandbox, NotRetriedWhenRetryVanishedIsOff) {
    auto v = e2b::judge_lost_sandbox(1, false, e2b::phase::download, false, "sbx1", "gone");
    EXPECT_FALSE(v.run_again);
    EXPECT_EQ(v.message, "sandbox sbx1 vanished during the download of results (gone); not retried "
                         "(job_config.retry_vanished is false)");
}

// ---- stopped jobs ---------------------------------------------------------------------------

TEST(E2bStop, CancelTimeoutAndInstallTimeout) {
    auto v = e2b::judge_stop(e2b::stop_reason::cancel, e2b::phase::upload, "sbx1", 600s, 30s);
    EXPECT_EQ(v.result, outcome::cancelled);
    EXPECT_EQ(v.diagnostic, "cancelled during upload; sandbox sbx1 killed");
    v = e2b::judge_stop(e2b::stop_reason::cancel, e2b::phase::create, "", 600s, 30s);
    EXPECT_EQ(v.diagnostic, "cancelled during sandbox creation");
    v = e2b::judge_stop(e2b::stop_reason::timeout, e2b::phase::install, "sbx1", 600s, 30s);
    EXPECT_EQ(v.result, outcome::setup_failed);
    EXPECT_EQ(v.diagnostic, "dependency install did not finish within job_config.install_timeout (600s); sandbox sbx1 killed");
    v = e2b::judge_stop(e2b::stop_reason::timeout, e2b::phase::run, "sbx1", 600s, 2500ms);
    EXPECT_EQ(v.result, outcome::timeout);
    EXPECT_EQ(v.diagnostic, "time limit of 2.5s exceeded and the sandbox did not report the end of the command; "
                            "sandbox sbx1 killed");
}

// ---- the create pacer on a manual clock -------------------------------------------------------

struct manual_clock {
    using duration = std::chrono::nanoseconds;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<manual_clock>;
    static constexpr bool is_steady = true;
};

TEST(E2bCreatePacer, OnePerSecondByDefault) {
    const manual_clock::time_point t0{};
    e2b::create_pacer<manual_clock> pacer(1.0, t0);
    // Ten jobs asking at once get one slot a second.
    for (int i = 0; i < 10; ++i) EXPECT_EQ(pacer.reserve(t0), t0 + std::chrono::seconds(i));
    // A late ask is served at once, and the next one a second after it.
    const auto late = t0 + 60s;
    EXPECT_EQ(pacer.reserve(late), late);
    EXPECT_EQ(pacer.reserve(late + 100ms), late + 1s);
}

TEST(E2bCreatePacer, FivePerSecond) {
    const manual_clock::time_point t0{};
    e2b::create_pacer<manual_clock> pacer(5.0, t0);
    std::vector<manual_clock::time_point> slots;
    for (int i = 0; i < 50; ++i) slots.push_back(pacer.reserve(t0 + std::chrono::milliseconds(i)));
    EXPECT_EQ(slots.front(), t0);
    EXPECT_EQ(slots[5], t0 + 1s);
    EXPECT_EQ(slots.back(), t0 + std::chrono::milliseconds(49 * 200));
    for (std::size_t i = 1; i < slots.size(); ++i) EXPECT_EQ(slots[i] - slots[i - 1], 200ms);
}

TEST(E2bCreatePacer, AnUnusableRateMeansOnePerSecond) {
    for (double rate : {0.0, -3.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
        e2b::create_pacer<manual_clock> pacer(rate, manual_clock::time_point{});
        EXPECT_EQ(pacer.interval(), 1s) << rate;
    }
}

}  // namespace
