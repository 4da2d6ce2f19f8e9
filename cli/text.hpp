// text.hpp - the CLI's text helpers: UTF-8 safe fitting and escaping, and how
// numbers, durations, exits and costs are printed. Pure functions on strings.
#pragma once

#include <genesis/launch/job.hpp>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace genesis::cli {

// ---------------------------------------------------------------------------
// Text helpers (UTF-8 aware; display width is approximated by code points)
// ---------------------------------------------------------------------------

// Replaces every ill-formed byte with U+FFFD so the text is valid UTF-8 (JSON output
// must be; evaluator messages may not be).
inline std::string sanitize_utf8(std::string_view s) { return launch::valid_utf8(s); }

// Number of code points of valid UTF-8 text.
inline std::size_t display_width(std::string_view s) {
    std::size_t width = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++width;
    return width;
}

// At most `width` code points; "..." marks a cut.
inline std::string fit(std::string_view s, std::size_t width) {
    if (display_width(s) <= width) return std::string(s);
    const std::size_t keep = width > 3 ? width - 3 : width;
    std::size_t points = 0, end = 0;
    while (end < s.size()) {
        if ((static_cast<unsigned char>(s[end]) & 0xC0) != 0x80) {
            if (points == keep) break;
            ++points;
        }
        ++end;
    }
    std::string out(s.substr(0, end));
    if (width > 3) out += "...";
    return out;
}

// Valid UTF-8 on one line: control characters become spaces, runs of blanks
// collapse, both ends are trimmed.
inline std::string one_line(std::string_view s) {
    const std::string clean = sanitize_utf8(s);
    std::string out;
    out.reserve(clean.size());
    bool pending_space = false;
    for (unsigned char c : clean) {
        if (c < 0x20 || c == 0x7F || c == ' ') {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space) out += ' ';
        pending_space = false;
        out += static_cast<char>(c);
    }
    return out;
}

// Valid UTF-8 that cannot move the cursor or end a line: control characters
// (except tab) are shown as \xNN. For names and text that come from evaluators.
inline std::string printable(std::string_view s) {
    const std::string clean = sanitize_utf8(s);
    std::string out;
    out.reserve(clean.size());
    for (unsigned char c : clean) {
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

inline std::string pad_right(std::string_view s, std::size_t width) {
    std::string out(s);
    const std::size_t w = display_width(s);
    if (w < width) out.append(width - w, ' ');
    return out;
}

// The last `n` lines of `text` (a trailing newline does not start an empty line).
inline std::string last_lines(std::string_view text, std::size_t n) {
    if (n == 0 || text.empty()) return {};
    std::size_t end = text.size();
    if (text.back() == '\n') --end;
    std::size_t start = end, found = 0;
    while (start > 0) {
        if (text[start - 1] == '\n' && ++found == n) break;
        --start;
    }
    return std::string(text.substr(start, end - start));
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

// "%.<significant>g"; "nan"/"inf" for non-finite values.
inline std::string format_score(double value, int significant = 10) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", significant, value);
    return buf;
}

inline double to_seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

// "1.234s" with `decimals` digits after the point.
inline std::string format_seconds(std::chrono::milliseconds d, int decimals = 1) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*fs", decimals, to_seconds(d));
    return buf;
}

// "code 3", "signal 9 (SIGKILL)" or "-".
inline std::string format_exit(const launch::job_result& r) {
    if (r.signal) return "signal " + std::to_string(*r.signal) + " (" + launch::signal_name(*r.signal) + ")";
    if (r.exit_code) return "code " + std::to_string(*r.exit_code);
    return "-";
}

// "$0.0123" (more digits for tiny amounts).
inline std::string format_cost(double usd) {
    char buf[64];
    std::snprintf(buf, sizeof buf, usd != 0 && std::fabs(usd) < 0.01 ? "$%.6f" : "$%.4f", usd);
    return buf;
}

}  // namespace genesis::cli
