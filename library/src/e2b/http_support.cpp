// http_support.cpp - see http_support.hpp; also origin parsing and the small
// public helpers of http_client.hpp.
#include "e2b/http_support.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/scheme.hpp>

#include <charconv>
#include <filesystem>

namespace genesis::launch::detail::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace ssl = asio::ssl;
using boost::system::error_code;

namespace {

bool method_has_body(bhttp::verb v) {
    return v == bhttp::verb::post || v == bhttp::verb::put || v == bhttp::verb::patch;
}

std::string bracketed(const std::string& host) {
    return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

bool default_port(const origin& o) { return o.port == (o.tls ? "443" : "80"); }

}  // namespace

bool is_ip_literal(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

std::string host_header(const origin& o) {
    return default_port(o) ? bracketed(o.host) : bracketed(o.host) + ":" + o.port;
}

std::string pool_key(const origin& o) { return (o.tls ? "s:" : "p:") + o.host + "|" + o.port; }

bool has_control_break(std::string_view text) {
    return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// ---- origin -----------------------------------------------------------------------

std::string origin::to_string() const {
    std::string out = tls ? "https://" : "http://";
    out += host_header(*this);
    out += base_path;
    return out;
}

std::optional<origin> parse_origin(std::string_view url, std::string& why) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {
        why = "not a valid URL: '" + std::string(url) + "'";
        return std::nullopt;
    }
    const auto& u = *parsed;
    origin o;
    if (u.scheme_id() == boost::urls::scheme::https)
        o.tls = true;
    else if (u.scheme_id() == boost::urls::scheme::http)
        o.tls = false;
    else {
        why = "unsupported URL scheme '" + std::string(u.scheme()) + "' (only http:// and https://)";
        return std::nullopt;
    }
    if (u.has_userinfo() || u.has_query() || u.has_fragment()) {
        why = "a base URL must not contain user info, a query or a fragment";
        return std::nullopt;
    }
    o.host = u.host_address();
    if (o.host.empty()) {
        why = "URL without a host: '" + std::string(url) + "'";
        return std::nullopt;
    }
    o.port = u.has_port() && !u.port().empty() ? std::string(u.port()) : (o.tls ? "443" : "80");
    unsigned port = 0;
    auto [end, ec] = std::from_chars(o.port.data(), o.port.data() + o.port.size(), port);
    if (ec != std::errc{} || end != o.port.data() + o.port.size() || port == 0 || port > 65535) {
        why = "invalid port '" + o.port + "'";
        return std::nullopt;
    }
    o.port = std::to_string(port);
    o.base_path = std::string(u.encoded_path());
    if (!o.base_path.empty() && o.base_path.front() != '/') {  // e.g. "http://h:12ab" (Boost 1.81 reads port 12)
        why = "not a valid base URL: '" + std::string(url) + "'";
        return std::nullopt;
    }
    while (!o.base_path.empty() && o.base_path.back() == '/') o.base_path.pop_back();
    return o;
}

// ---- small public helpers --------------------------------------------------------------

std::string response::header(std::string_view name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : std::string(it->value());
}

std::string_view to_string(failure f) noexcept {
    switch (f) {
    case failure::none: return "none";
    case failure::bad_request: return "bad_request";
    case failure::resolve: return "resolve";
    case failure::connect: return "connect";
    case failure::tls: return "tls";
    case failure::tls_verify: return "tls_verify";
    case failure::tls_config: return "tls_config";
    case failure::write: return "write";
    case failure::read: return "read";
    case failure::timeout: return "timeout";
    case failure::protocol: return "protocol";
    case failure::cancelled: return "cancelled";
    }
    return "unknown";
}

// Moves spec.body into the wire request (which is what a retry resends).
std::optional<wire_request> build_request(const origin& o, request& spec, std::string& why) {
    if (spec.target.empty() || spec.target.front() != '/' || has_control_break(spec.target) ||
        spec.target.find(' ') != std::string::npos) {
        why = "invalid request target";
        return std::nullopt;
    }
    wire_request w;
    std::size_t size = 64 + o.base_path.size() + spec.target.size() + o.host.size();
    for (const auto& [name, value] : spec.headers) size += name.size() + value.size() + 4;
    const bool inline_body = spec.body.size() <= inline_body_limit;
    w.head.reserve(size + (inline_body ? spec.body.size() : 0));
    w.head += bhttp::to_string(spec.method);
    w.head += ' ';
    w.head += o.base_path;
    w.head += spec.target;
    w.head += " HTTP/1.1\r\nHost: ";
    w.head += host_header(o);
    w.head += "\r\n";
    for (const auto& [name, value] : spec.headers) {
        if (name.empty() || has_control_break(name) || has_control_break(value) ||
            name.find_first_of(" :\t") != std::string::npos) {
            why = "invalid header '" + (has_control_break(name) ? std::string("?") : name) + "'";  // never the value
            return std::nullopt;
        }
        w.head += name;
        w.head += ": ";
        w.head += value;
        w.head += "\r\n";
    }
    if (!spec.body.empty() || method_has_body(spec.method)) {
        w.head += "Content-Length: ";
        w.head += std::to_string(spec.body.size());
        w.head += "\r\n";
    }
    w.head += "\r\n";
    if (inline_body)
        w.head += spec.body;
    else
        w.body = std::move(spec.body);
    spec.body.clear();
    return w;
}

// The client's TLS context with the extra CA file loaded (cheap, and a bad file
// is reported up front). The system roots are loaded on the first TLS
// connection (load_system_roots): parsing the whole system store costs tens of
// milliseconds, which a client that only speaks plain HTTP never pays.
std::shared_ptr<ssl::context> make_tls_context(const tls_settings& settings, std::string& error) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    // Idle connections give their record buffers back (many connections stay pooled).
    SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
    error_code ec;
    if (!settings.ca_file.empty()) {
        std::error_code fs_ec;
        if (!std::filesystem::is_regular_file(settings.ca_file, fs_ec)) {
            error = "CA file '" + settings.ca_file + "' does not exist or is not a file";
            return nullptr;
        }
        ctx->load_verify_file(settings.ca_file, ec);
        if (ec) {
            error = "cannot load CA file '" + settings.ca_file + "': " + ec.message();
            return nullptr;
        }
    }
    ctx->set_verify_mode(settings.verify_peer ? ssl::verify_peer : ssl::verify_none);
    return ctx;
}

}  // namespace genesis::launch::detail::http
