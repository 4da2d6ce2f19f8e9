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
    explicit retry_state(backoff_params p) : params_(p) {}
    retry_state(backoff_params p, std::uint64_t seed) : params_(p), seed_(seed) {}

    // After a failed attempt: the delay before the next one, or nullopt when the
    // budget is spent (or the server asked for a longer wait than allowed).
    std::optional<std::chrono::milliseconds> next_delay(std::optional<std::chrono::milliseconds> retry_after = {});
    int attempts() const noexcept { return attempts_; }

private:
    backoff_params params_;
    std::optional<std::uint64_t> seed_;
    // On the heap: a retry_state lives in the coroutine frame of every request in
    // flight, and the generator's state is 2.5 KiB.
    std::unique_ptr<std::mt19937_64> rng_;
    int attempts_ = 1;  // the first attempt has been made when a delay is asked for
    std::chrono::milliseconds ceiling_{0};
};

}  // namespace genesis::launch::detail::e2b
