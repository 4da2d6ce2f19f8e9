// decisions.hpp - what the E2B backend decides, without any I/O: what an error
// of the API means for a job (fail it, retry, look for a lost sandbox, wait for
// a free slot, run the job again on a new sandbox), what a stopped job reports,
// and when the next create may be sent. The lifecycle coroutines (lifecycle.cpp)
// only carry these decisions out; tests/unit/e2b_decisions_test.cpp checks each
// row of the outcome table in docs/e2b.md against them.
#pragma once

#include "e2b/e2b_api.hpp"
#include "genesis/launch/job.hpp"

#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

namespace genesis::launch::detail::e2b {

enum class phase { prepare, create, upload, install, run, download };
enum class stop_reason { none, cancel, timeout };

// "sandbox creation", "upload", "the evaluation", ...
std::string_view phase_name(phase p);

// Sandboxes one job may use when they are lost mid-job (vanished, or the
// evaluator's connection broke); retry_vanished: false means 1.
inline constexpr int max_sandbox_attempts = 3;

// What a failed create means.
struct create_verdict {
    enum class action {
        fail,            // the job ends with `result`
        retry,           // another create after a backoff, within max_retries
        look_up_lost,    // the request may have made a sandbox: find it by its tags and kill it, then retry
        wait_for_slot,   // a concurrency limit while this launcher holds sandboxes: wait, budget untouched
    };
    action act = action::fail;
    outcome result = outcome::infra_error;  // for fail
    std::string message;                    // the diagnostic (fail), else the problem retried after
};
// `held`: this launcher has sandboxes (or creates in flight) that will free a slot.
create_verdict judge_create_error(const api_error& e, bool held, std::string_view template_id,
                                  std::chrono::seconds lifetime);

// What an envd call's error means for the job, during `current`.
struct envd_verdict {
    bool sandbox_lost = false;      // the attempt is lost: the job may run again on a new sandbox
    bool connection_broke = false;  // lost because the command's stream broke (the sandbox may live)
    outcome result = outcome::infra_error;  // when not lost
    std::string message;            // the diagnostic, or why the sandbox counts as lost
};
envd_verdict judge_envd_error(phase current, const api_error& e, std::string_view what);

// After a lost sandbox: whether the job runs again on a new one, and the warning
// or diagnostic that says so.
struct lost_verdict {
    bool run_again = false;
    std::string message;  // the warning (run_again) or the infra_error diagnostic
};
lost_verdict judge_lost_sandbox(int attempts_made, bool retry_vanished, phase current, bool connection_broke,
                                std::string_view sandbox_id, std::string_view why);

// A job stopped by cancel() or a deadline: its outcome and diagnostic.
struct stop_verdict {
    outcome result = outcome::cancelled;
    std::string diagnostic;
};
stop_verdict judge_stop(stop_reason why, phase current, std::string_view sandbox_id,
                        std::chrono::milliseconds install_timeout, std::chrono::milliseconds eval_limit);

// One create per 1/rate seconds for the whole launcher: reserve() hands out the
// next free send time (never earlier than `now`) and books it.
template <class Clock>
class create_pacer {
public:
    using time_point = typename Clock::time_point;
    using duration = typename Clock::duration;

    // A rate that is not a positive finite number means 1 per second.
    create_pacer(double rate_per_second, time_point start) : next_(start) {
        const double rate = rate_per_second > 0 && std::isfinite(rate_per_second) ? rate_per_second : 1.0;
        interval_ = std::chrono::duration_cast<duration>(std::chrono::duration<double>(1.0 / rate));
    }
    time_point reserve(time_point now) {
        const time_point slot = now > next_ ? now : next_;
        next_ = slot + interval_;
        return slot;
    }
    duration interval() const noexcept { return interval_; }

private:
    duration interval_{};
    time_point next_;
};

}  // namespace genesis::launch::detail::e2b
