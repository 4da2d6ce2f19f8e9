#include "genesis/launch/job.hpp"

#include <boost/json/array.hpp>
#include <boost/json/string.hpp>

#include <array>
#include <cmath>
#include <cstring>

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

namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 when it is not one.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char lead = byte(i);
    if (lead < 0x80) return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
        n = 2;
    } else if (lead == 0xE0) {
        n = 3, lo = 0xA0;
    } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
        n = 3;
    } else if (lead == 0xED) {
        n = 3, hi = 0x9F;  // no surrogates
    } else if (lead == 0xF0) {
        n = 4, lo = 0x90;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
        n = 4;
    } else if (lead == 0xF4) {
        n = 4, hi = 0x8F;
    } else {
        return 0;
    }
    if (i + n > s.size()) return 0;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
    return n;
}

double seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

boost::json::value text_or_null(std::string_view s) {
    if (s.empty()) return nullptr;
    return boost::json::string(valid_utf8(s));
}

template <typename T>
boost::json::value optional_or_null(const std::optional<T>& v) {
    if (!v) return nullptr;
    return *v;
}

}  // namespace

std::string signal_name(int sig) {
    const char* abbrev = sig > 0 ? ::sigabbrev_np(sig) : nullptr;
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

std::string valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence_length(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

boost::json::object to_json(const job_result& r, const std::filesystem::path& program) {
    boost::json::object o;
    o["job_id"] = valid_utf8(r.job_id);
    o["program"] = valid_utf8(program.string());
    o["outcome"] = to_string(r.result);
    o["correct"] = r.correct;
    o["error"] = text_or_null(r.error);
    o["exit_code"] = optional_or_null(r.exit_code);
    o["signal"] = optional_or_null(r.signal);
    if (std::isfinite(r.combined_score)) o["combined_score"] = r.combined_score;
    else o["combined_score"] = nullptr;
    o["metrics"] = r.metrics;
    o["results_dir"] = valid_utf8(r.results_dir.string());
    boost::json::array files;
    for (const auto& f : r.result_files) files.emplace_back(valid_utf8(f.string()));
    o["result_files"] = std::move(files);
    const auto& t = r.timings;
    o["timings"] = boost::json::object{
        {"queued_s", seconds(t.queued)},     {"create_s", seconds(t.create)},   {"setup_s", seconds(t.setup)},
        {"run_s", seconds(t.run)},           {"download_s", seconds(t.download)}, {"cleanup_s", seconds(t.cleanup)},
        {"total_s", seconds(t.total)},
    };
    o["diagnostic"] = text_or_null(r.diagnostic);
    boost::json::array warnings;
    for (const auto& w : r.warnings) warnings.emplace_back(valid_utf8(w));
    o["warnings"] = std::move(warnings);
    o["backend"] = valid_utf8(r.backend);
    o["sandbox_id"] = text_or_null(r.sandbox_id);
    if (r.backend == "e2b") o["sandbox_seconds"] = r.sandbox_seconds;
    else o["sandbox_seconds"] = nullptr;
    o["stdout_truncated"] = r.stdout_truncated;
    o["stderr_truncated"] = r.stderr_truncated;
    return o;
}

}  // namespace genesis::launch
