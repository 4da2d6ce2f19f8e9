#include "connect_wire.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <array>

namespace genesis::e2b_emulator::wire {
namespace json = boost::json;

std::string envelope(std::string_view payload, std::uint8_t flags) {
    const auto n = static_cast<std::uint32_t>(payload.size());
    std::string out;
    out.reserve(5 + payload.size());
    out += static_cast<char>(flags);
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
    out.append(payload);
    return out;
}

std::optional<std::string> single_message(std::string_view body, std::string& why) {
    if (body.size() < 5) {
        why = body.empty() ? "protocol error: expected exactly one enveloped message"
                           : "protocol error: incomplete envelope";
        return std::nullopt;
    }
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(body[i]); };
    if (byte(0) & 0x01) {
        why = "protocol error: compressed messages are not supported";
        return std::nullopt;
    }
    const std::uint32_t n = (std::uint32_t{byte(1)} << 24) | (std::uint32_t{byte(2)} << 16) |
                            (std::uint32_t{byte(3)} << 8) | std::uint32_t{byte(4)};
    if (body.size() - 5 < n) {
        why = "protocol error: incomplete envelope";
        return std::nullopt;
    }
    if (body.size() - 5 > n) {
        why = "protocol error: expected exactly one enveloped message";
        return std::nullopt;
    }
    return std::string(body.substr(5));
}

std::string end_stream(const std::optional<rpc_error>& error) {
    json::object o;
    if (error) o["error"] = json::object{{"code", error->code}, {"message", error->message}};
    return json::serialize(o);
}

std::string error_body(const rpc_error& error) {
    json::object o;
    o["code"] = error.code;
    o["message"] = error.message;
    return json::serialize(o);
}

int http_status(std::string_view code) {
    struct row {
        std::string_view code;
        int status;
    };
    static constexpr std::array<row, 16> table{{
        {"canceled", 499},         {"unknown", 500},          {"invalid_argument", 400},
        {"deadline_exceeded", 504}, {"not_found", 404},        {"already_exists", 409},
        {"permission_denied", 403}, {"resource_exhausted", 429}, {"failed_precondition", 400},
        {"aborted", 409},          {"out_of_range", 400},     {"unimplemented", 501},
        {"internal", 500},         {"unavailable", 503},      {"data_loss", 500},
        {"unauthenticated", 401},
    }};
    for (const auto& r : table)
        if (r.code == code) return r.status;
    return 500;
}

namespace {
constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Go's url.QueryUnescape: '+' is a space, %XX a byte; a bad escape is an error.
std::optional<std::string> query_unescape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= s.size()) return std::nullopt;
            const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}
}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = (std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << 16) |
                                (std::uint32_t{static_cast<std::uint8_t>(bytes[i + 1])} << 8) |
                                std::uint32_t{static_cast<std::uint8_t>(bytes[i + 2])};
        for (int shift = 18; shift >= 0; shift -= 6) out += alphabet[(v >> shift) & 0x3f];
    }
    const std::size_t rest = bytes.size() - i;
    if (rest > 0) {
        std::uint32_t v = std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << 16;
        if (rest == 2) v |= std::uint32_t{static_cast<std::uint8_t>(bytes[i + 1])} << 8;
        out += alphabet[(v >> 18) & 0x3f];
        out += alphabet[(v >> 12) & 0x3f];
        out += rest == 2 ? alphabet[(v >> 6) & 0x3f] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        const int v = sextet(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

std::optional<std::map<std::string, std::string>> metadata_filter(std::string_view raw_value) {
    // The query string's own escaping, then the server's QueryUnescape of the value.
    auto once = query_unescape(raw_value);
    if (!once) return std::nullopt;
    auto whole = query_unescape(*once);
    if (!whole) return std::nullopt;
    std::map<std::string, std::string> out;
    std::string_view rest = *whole;
    for (;;) {
        const auto amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        if (eq == std::string_view::npos || pair.find('=', eq + 1) != std::string_view::npos) return std::nullopt;
        auto key = query_unescape(pair.substr(0, eq));
        auto value = query_unescape(pair.substr(eq + 1));
        if (!key || !value) return std::nullopt;
        out[std::move(*key)] = std::move(*value);
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return out;
}

}  // namespace genesis::e2b_emulator::wire
