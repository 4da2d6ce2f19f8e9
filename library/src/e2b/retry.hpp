// retry.hpp - when and how long to wait before trying a request again: a retry
// budget, truncated exponential backoff with full jitter, Retry-After, and which
// answers are worth retrying at all. Sans-io: the caller sleeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string_view>

namespace genesis::launch::detail::e2b {

struct backoff_params {
    std::chrono::milliseconds initial{250};
    std::chrono::milliseconds maximum{10'000};
    double multiplier = 2.0;
    int max_attempts = 5;                          // including the first
    std::chrono::milliseconds max_retry_after{60'000};  // longer Retry-After = give up
    // All attempts and waits of one request: no wait is started that would end
    // past it (counted from the first attempt). 0 = no limit.
    std::chrono::milliseconds time_budget{120'000};
};

// Transient (worth another attempt) or permanent, from an HTTP status.
// 408, 429, 500, 502, 503, 504 are transient; everything else is permanent.
bool is_transient_status(unsigned status) noexcept;

// Parses a Retry-After header given as a number of seconds ("3"); dates and
// garbage give nullopt.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value) noexcept;

// One request's retry state. Cheap to make: the generator for the jitter is
// seeded (from std::random_device unless a seed is given) only when a first
// delay is asked for, which almost no request does.
class retry_state {
public:
    using clock = std::chrono::steady_clock;

    // `start`: when the first attempt began (now, unless a test says otherwise).
    explicit retry_state(backoff_params p, clock::time_point start = clock::now()) : params_(p), start_(start) {}
    retry_state(backoff_params p, std::uint64_t seed, clock::time_point start = clock::now())
        : params_(p), seed_(seed), start_(start) {}

    // After a failed attempt (at `now`): the delay before the next one, or nullopt
    // when the attempts or the time budget are spent, or the server asked for a
    // longer wait than allowed.
    std::optional<std::chrono::milliseconds> next_delay(std::optional<std::chrono::milliseconds> retry_after = {},
                                                        clock::time_point now = clock::now());
    int attempts() const noexcept { return attempts_; }
    // Time that does not count against the budget (a wait that is not a retry).
    void exclude(clock::duration d) noexcept { start_ += d; }
    // Why next_delay gave up, for the error message: "" while it has not.
    const char* gave_up_because() const noexcept { return gave_up_; }

private:
    backoff_params params_;
    std::optional<std::uint64_t> seed_;
    clock::time_point start_;
    const char* gave_up_ = "";
    // On the heap: a retry_state lives in the coroutine frame of every request in
    // flight, and the generator's state is 2.5 KiB.
    std::unique_ptr<std::mt19937_64> rng_;
    int attempts_ = 1;  // the first attempt has been made when a delay is asked for
    std::chrono::milliseconds ceiling_{0};
};

}  // namespace genesis::launch::detail::e2b
