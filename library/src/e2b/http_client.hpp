// http_client.hpp - a small HTTP/1.1 client (plain or TLS) on Asio coroutines
// for the E2B backend: a keep-alive connection pool per origin, per-phase
// timeouts, unary requests with a string body and streamed responses whose body
// is handed over as it arrives.
//
// Single-threaded use: a client is bound to one executor (the launcher's
// strand); every member is called and every coroutine runs on it.
//
// Secrets: header values (API key, access token) are never put into
// `result::what` or any other text this client produces.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace genesis::launch::detail::http {

// Where requests go: scheme, host, port and a path prefix.
struct origin {
    bool tls = true;
    std::string host;       // name or IP literal, without brackets
    std::string port;       // always set ("80"/"443" by default)
    std::string base_path;  // "" or "/prefix" (no trailing slash); prepended to every target

    // "https://host:port" (+ base_path): for messages. Never contains secrets.
    std::string to_string() const;
    bool operator==(const origin&) const = default;
};

// Parses "http[s]://host[:port][/base/path]" (Boost.URL). Other schemes, user
// info, a query or a fragment are refused: nullopt + `why` (one line).
std::optional<origin> parse_origin(std::string_view url, std::string& why);

struct tls_settings {
    bool verify_peer = true;  // false: no certificate or host-name check at all (tests only)
    std::string ca_file;      // extra trusted CA (PEM), on top of the system roots; "" = none
};

struct timeouts {
    std::chrono::milliseconds connect{10'000};       // resolve + TCP connect
    std::chrono::milliseconds handshake{10'000};     // TLS handshake
    std::chrono::milliseconds write{60'000};         // writing the whole request
    std::chrono::milliseconds read{60'000};          // send(): the whole response; stream(): the header
    std::chrono::milliseconds stream_idle{120'000};  // stream(): longest silence between body bytes
};

struct request {
    boost::beast::http::verb method = boost::beast::http::verb::get;
    std::string target = "/";  // path + query; origin::base_path is prepended by the client
    std::vector<std::pair<std::string, std::string>> headers;  // Host, Content-Length are set by the client
    std::string body;          // sent with Content-Length (none for an empty GET/DELETE/HEAD)
    bool idempotent = false;   // may be resent after a stale pooled connection failed mid-request
                               // (other requests only when nothing was written); retries with
                               // backoff live above this layer (e2b::api)
    std::uint64_t body_limit = 256ull * 1024 * 1024;  // send(): larger responses fail (kind::protocol)
};

struct response {
    unsigned status = 0;
    boost::beast::http::fields headers;
    std::string body;  // empty for stream()

    // Header value or "" (case-insensitive name).
    std::string header(std::string_view name) const;
};

// What went wrong at the transport level (none when a response was received,
// whatever its status).
enum class failure {
    none,
    bad_request,  // the request could not be built (bad origin, bad header)
    resolve,      // DNS
    connect,      // TCP connect refused/unreachable
    tls,          // TLS handshake failed (not a certificate problem)
    tls_verify,   // the peer's certificate was refused (untrusted, expired, wrong host)
    tls_config,   // no usable TLS context (e.g. the CA file could not be loaded)
    write,        // connection failed while sending
    read,         // connection failed while receiving (reset, EOF before the end)
    timeout,      // a phase timeout expired
    protocol,     // malformed HTTP, or the body exceeded body_limit
    cancelled,    // the coroutine was cancelled, or close_all() was called
};
std::string_view to_string(failure f) noexcept;

struct result {
    boost::system::error_code ec;  // set iff kind != none
    failure kind = failure::none;
    std::string what;   // one line, e.g. "connect to http://127.0.0.1:8080 failed: Connection refused"
    bool sent = false;  // the request may have reached the server (some bytes were written)
    response res;       // valid when !ec

    bool ok() const noexcept { return !ec; }
};

// Counters for tests and diagnostics.
struct client_stats {
    std::size_t connects = 0;  // connections established (TCP + TLS) since construction
    std::size_t reused = 0;    // requests that went over a pooled keep-alive connection
    std::size_t stale_retries = 0;  // transparent retries after a stale pooled connection failed
    std::size_t opening_waits = 0;  // new connections that waited for a free opening slot
    std::size_t peak_opening = 0;   // most connections being opened (connect + TLS handshake) at once
    std::size_t tls_resumed = 0;    // TLS handshakes that resumed an earlier connection's session
    std::size_t tls_sessions = 0;   // resumable TLS sessions (tickets) the servers gave
};

class client {
public:
    using executor_type = boost::asio::any_io_executor;

    static constexpr std::size_t default_max_idle_per_origin = 8;
    static constexpr std::chrono::seconds default_idle_lifetime{60};
    // Connections being opened at once (resolve, TCP connect, TLS handshake); the
    // others wait their turn, and their timeouts start when it comes. A TLS
    // handshake costs this thread's CPU: hundreds at once on one busy thread each
    // take hundreds of times longer, time out together and are retried together,
    // while a bounded number each finish in a few of their own lengths.
    static constexpr std::size_t default_max_opening = 32;

    // Never throws. A CA file that cannot be loaded makes every TLS request fail
    // with failure::tls_config and a clear message; tls_error() reports it up front.
    client(executor_type ex, tls_settings tls = {}, timeouts t = {});
    ~client();  // close_all()
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    executor_type get_executor() const;
    const timeouts& get_timeouts() const;
    // "" when the TLS context is usable; otherwise why not (e.g. bad ca_file).
    const std::string& tls_error() const;

    // Sends `req` and reads the whole response (string body, up to body_limit).
    // Reuses a pooled connection to `o` when one is idle; a pooled connection that
    // fails before any response byte arrived is retried once on a fresh one.
    // Honours the awaiting coroutine's (terminal) cancellation: kind::cancelled.
    boost::asio::awaitable<result> send(origin o, request req);

    // Sends `req`, reads the response header, then calls `on_body_bytes` with body
    // bytes as they arrive (chunk framing removed; no other alignment promised)
    // until the body ends. Fails with kind::timeout when no byte arrives for
    // timeouts.stream_idle. For a 2xx status res.body stays empty; the body of
    // any other status is not streamed but returned in res.body (first 64 KiB),
    // so that callers can read the error message.
    // `on_body_bytes` runs on the client's executor and must not call back into
    // the client synchronously.
    boost::asio::awaitable<result> stream(origin o, request req, std::function<void(std::string_view)> on_body_bytes);

    // Closes every pooled connection and aborts every request in flight
    // (they complete with failure::cancelled). The client stays usable.
    // Note: while connections sit idle in the pool, a timer is pending on the
    // executor (it closes them after the idle lifetime); call close_all() when
    // the io_context should run out of work (shutdown).
    void close_all();

    // Closes the idle connections to `o` (e.g. a sandbox's own envd host once the
    // sandbox is gone); requests in flight are not touched.
    void close_idle(const origin& o);

    // Connections open now: idle in the pool + in use by a request.
    std::size_t open_connections() const;
    std::size_t idle_connections() const;
    std::size_t idle_connections(const origin& o) const;  // to `o` only
    client_stats stats() const;

    // Pool tuning (tests): idle connections kept per origin, and how long an idle
    // connection may stay in the pool.
    void set_pool_limits(std::size_t max_idle_per_origin, std::chrono::milliseconds idle_lifetime);
    // Connections opened at once (at least 1; default_max_opening by default).
    void set_opening_limit(std::size_t max_opening);

private:
    struct impl;
    std::shared_ptr<impl> impl_;  // shared with coroutines in flight
};

}  // namespace genesis::launch::detail::http
