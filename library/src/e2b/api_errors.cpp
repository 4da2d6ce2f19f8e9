// api_errors.cpp - what an answer of E2B means as an api_error: HTTP statuses,
// Connect error codes and end-of-stream messages, with the server's words quoted
// (cut, on one line, never a secret).
#include "e2b/e2b_api.hpp"
#include "e2b/wire.hpp"

#include "e2b/retry.hpp"

#include <boost/json/parse.hpp>

namespace genesis::launch::detail::e2b {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;
using std::chrono::milliseconds;

// ---- errors ------------------------------------------------------------------------------

bool api_error::transient() const noexcept {
    switch (k) {
    case kind::transport:
    case kind::rate_limited: return true;
    case kind::timeout: return status != 504;
    case kind::http: return is_transient_status(status);
    default: return false;
    }
}

std::string_view to_string(api_error::kind k) noexcept {
    switch (k) {
    case api_error::kind::transport: return "transport";
    case api_error::kind::tls: return "tls";
    case api_error::kind::timeout: return "timeout";
    case api_error::kind::http: return "http";
    case api_error::kind::protocol: return "protocol";
    case api_error::kind::not_found: return "not_found";
    case api_error::kind::sandbox_gone: return "sandbox_gone";
    case api_error::kind::unauthorized: return "unauthorized";
    case api_error::kind::rate_limited: return "rate_limited";
    case api_error::kind::maybe_created: return "maybe_created";
    case api_error::kind::cancelled: return "cancelled";
    }
    return "unknown";
}

std::string quote_server_message(std::string_view text) {
    // One line: control characters become spaces, runs of spaces collapse.
    std::string flat;
    for (char c : text) {
        const bool control = static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        const char out = control ? ' ' : c;
        if (out == ' ' && (flat.empty() || flat.back() == ' ')) continue;
        flat += out;
    }
    while (!flat.empty() && flat.back() == ' ') flat.pop_back();
    bool cut = false;
    if (flat.size() > max_quoted_message) {
        std::size_t end = max_quoted_message;
        while (end > 0 && (static_cast<unsigned char>(flat[end]) & 0xC0) == 0x80) --end;  // UTF-8 boundary
        flat.resize(end);
        cut = true;
    }
    std::string quoted = "\"";
    for (char c : flat) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    if (cut) quoted += "\xE2\x80\xA6";  // …
    quoted += '"';
    return quoted;
}

api_error connect_error_to_api_error(const connect_error& error, std::string_view context) {
    using k = api_error::kind;
    const std::string& code = error.code;
    k kind = k::http;
    if (code == "deadline_exceeded")
        kind = k::timeout;
    else if (code == "unavailable")
        kind = k::transport;
    else if (code == "unauthenticated" || code == "permission_denied")
        kind = k::unauthorized;
    else if (code == "not_found")
        kind = k::not_found;
    else if (code == "resource_exhausted")
        kind = k::rate_limited;
    else if (code == "canceled")
        kind = k::cancelled;
    std::string message = std::string(context) + ": " + code;
    if (!error.message.empty()) message += " " + quote_server_message(error.message);
    return make_error(kind, static_cast<unsigned>(http_status_for_code(code)), std::move(message));
}

std::optional<api_error> end_stream_to_error(const end_stream_message& end, std::string_view context) {
    if (!end.error) return std::nullopt;
    return connect_error_to_api_error(*end.error, context);
}

api_error classify_http_error(plane p, unsigned status, std::string_view body, std::string_view context) {
    using k = api_error::kind;
    if (p == plane::envd)
        if (auto ce = parse_error_body(body)) {
            auto e = connect_error_to_api_error(*ce, context);
            e.status = status;
            return e;
        }
    const std::string message = server_message(body);
    k kind = k::http;
    if (status == 401 || status == 403)
        kind = k::unauthorized;
    else if (status == 404)
        kind = k::not_found;
    else if (status == 429)
        kind = k::rate_limited;
    else if (p == plane::envd && status == 502 && contains_ignoring_case(message, "sandbox was not found"))
        kind = k::sandbox_gone;
    std::string text = std::string(context) + ": HTTP " + std::to_string(status);
    if (!message.empty()) text += " " + quote_server_message(message);
    return make_error(kind, status, std::move(text));
}

}  // namespace genesis::launch::detail::e2b
