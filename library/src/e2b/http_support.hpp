// http_support.hpp - the socket-free parts of the HTTP client (http_client.cpp):
// origins and Host headers, a request's bytes as they go on the wire, and the
// TLS context with its host-name check. Internal to library/src/e2b.
#pragma once

#include "e2b/http_client.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl.hpp>

#include <openssl/x509_vfy.h>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace genesis::launch::detail::http {

bool is_ip_literal(const std::string& host);
// "host", "[v6]" or "host:port" as the Host header carries it (port only when not the default).
std::string host_header(const origin& o);
// The connection pool's key of an origin (scheme, host, port).
std::string pool_key(const origin& o);
// True when `text` could split a header (CR, LF or NUL).
bool has_control_break(std::string_view text);
// "1500 ms".
std::string ms_text(std::chrono::milliseconds d);

// A request as it goes on the wire: the head (request line and header fields,
// written here rather than by Beast's serializer, which costs several
// allocations per field), then the body. A small body is appended to the head
// so that the request leaves in one write (one TLS record).
struct wire_request {
    std::string head;
    std::string body;

    std::array<boost::asio::const_buffer, 2> buffers() const {
        return {boost::asio::buffer(head), boost::asio::buffer(body)};
    }
    std::size_t size() const { return head.size() + body.size(); }
};

constexpr std::size_t inline_body_limit = 16 * 1024;

// The request's bytes for `o`; moves spec.body into them (which is what a retry
// resends). nullopt and `why` for a target or header that could break the request.
std::optional<wire_request> build_request(const origin& o, request& spec, std::string& why);

// The client's TLS context with the extra CA file loaded; nullptr and `error` when
// the file is unusable.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const tls_settings& settings, std::string& error);

}  // namespace genesis::launch::detail::http
