#include "genesis/launch/job.hpp"

#include <array>

namespace genesis::launch {
namespace {
constexpr std::array<std::string_view, outcome_count> outcome_names{
    "ok", "candidate_failed", "timeout", "setup_failed", "infra_error", "cancelled"};
}

std::string_view to_string(outcome o) noexcept {
    auto i = static_cast<std::size_t>(o);
    return i < outcome_names.size() ? outcome_names[i] : std::string_view{"unknown"};
}

std::optional<outcome> outcome_from_string(std::string_view s) noexcept {
    for (std::size_t i = 0; i < outcome_names.size(); ++i)
        if (outcome_names[i] == s) return static_cast<outcome>(i);
    return std::nullopt;
}

}  // namespace genesis::launch
