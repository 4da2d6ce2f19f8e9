#include "e2b/retry.hpp"

#include <algorithm>
#include <charconv>

namespace genesis::launch::detail::e2b {

bool is_transient_status(unsigned status) noexcept {
    switch (status) {
        case 408: case 429: case 500: case 502: case 503: case 504: return true;
        default: return false;
    }
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value) noexcept {
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    if (value.empty()) return std::nullopt;
    std::uint64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || end != value.data() + value.size() || seconds > 24 * 3600) return std::nullopt;
    return std::chrono::milliseconds(seconds * 1000);
}

std::optional<std::chrono::milliseconds> retry_state::next_delay(std::optional<std::chrono::milliseconds> retry_after,
                                                                 clock::time_point now) {
    if (attempts_ >= params_.max_attempts) {
        gave_up_ = "the attempts are spent";
        return std::nullopt;
    }
    if (retry_after && *retry_after > params_.max_retry_after) {
        gave_up_ = "the server asked for a longer wait than allowed";
        return std::nullopt;
    }
    // Truncated exponential ceiling: initial * multiplier^(n-1), at most `maximum`.
    ceiling_ = ceiling_.count() == 0
                   ? params_.initial
                   : std::min(params_.maximum, std::chrono::milliseconds(static_cast<std::int64_t>(
                                                   static_cast<double>(ceiling_.count()) * params_.multiplier)));
    // Full jitter spreads many clients that failed together.
    if (!rng_) rng_ = std::make_unique<std::mt19937_64>(seed_ ? *seed_ : std::random_device{}());
    std::uniform_int_distribution<std::int64_t> pick(0, ceiling_.count());
    std::chrono::milliseconds delay(pick(*rng_));
    // The server's word is a lower bound.
    if (retry_after) delay = std::max(delay, *retry_after);
    if (params_.time_budget.count() > 0 && (now - start_) + delay > params_.time_budget) {
        gave_up_ = "the time budget is spent";
        return std::nullopt;
    }
    ++attempts_;
    return delay;
}

}  // namespace genesis::launch::detail::e2b
