// http_server.hpp - a small HTTP/1.1 server (plain or TLS) on Asio coroutines.
// Keep-alive, chunked request bodies (Beast's parser), whole or streamed
// (chunked) responses, and a way to cut a connection with a TCP reset.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace genesis::e2b_emulator {

namespace asio = boost::asio;
namespace http = boost::beast::http;

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

// How a handler answers. Exactly one of send() or begin_stream()...end_stream().
class response_writer {
public:
    virtual ~response_writer() = default;
    // A complete response (Content-Length is set for you).
    virtual asio::awaitable<void> send(response res) = 0;
    // A chunked response: the header now, then chunks. Each returns false once
    // the client is gone (the handler should stop writing).
    virtual asio::awaitable<bool> begin_stream(http::response_header<> header) = 0;
    virtual asio::awaitable<bool> write_chunk(std::string_view data) = 0;
    virtual asio::awaitable<void> end_stream() = 0;
    // Fault injection: abort the connection with a TCP RST, now.
    virtual void reset_connection() = 0;
    // The peer's address (for logs).
    virtual std::string peer() const = 0;
};

using request_handler = std::function<asio::awaitable<void>(request& req, response_writer& out)>;

struct http_server_options {
    std::string host = "127.0.0.1";
    unsigned short port = 0;                          // 0 = any free port
    std::shared_ptr<asio::ssl::context> tls;          // null = plain HTTP
    std::size_t body_limit = 1024ull * 1024 * 1024;   // request bodies up to 1 GiB
};

class http_server {
public:
    http_server(asio::any_io_executor ex, http_server_options options, request_handler handler);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    // Binds and starts accepting; returns the bound port.
    unsigned short start(boost::system::error_code& ec);
    // Closes the listener and every open connection.
    void stop();
    bool tls() const noexcept;
    std::size_t open_connections() const noexcept;
    std::uint64_t connections_accepted() const noexcept;  // since start()
    std::uint64_t tls_handshakes() const noexcept;        // completed server handshakes since start()
    std::uint64_t tls_resumed() const noexcept;           // of those, the ones that resumed a session

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

// Helpers for building responses.
response make_response(const request& req, http::status status, std::string body,
                       std::string_view content_type = "application/json");

}  // namespace genesis::e2b_emulator
