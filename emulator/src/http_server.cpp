#include "http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <map>

namespace genesis::e2b_emulator {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

response make_response(const request& req, http::status status, std::string body, std::string_view content_type) {
    response res{status, req.version()};
    if (!content_type.empty()) res.set(http::field::content_type, content_type);
    res.body() = std::move(body);
    return res;
}

namespace {

struct session_base {
    virtual ~session_base() = default;
    virtual void close() = 0;
};

// TLS handshakes completed, and those that resumed a session.
struct tls_counts {
    std::uint64_t handshakes = 0;
    std::uint64_t resumed = 0;
};

template <class Stream>
class session final : public session_base, public response_writer {
public:
    session(Stream stream, std::size_t body_limit, request_handler& handler, tls_counts& tls)
        : stream_(std::move(stream)), body_limit_(body_limit), handler_(handler), tls_(tls) {}

    asio::awaitable<void> run() {
        if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
            lowest().expires_after(std::chrono::seconds(30));
            auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, use_tuple);
            if (ec) co_return;
            ++tls_.handshakes;
            if (SSL_session_reused(stream_.native_handle())) ++tls_.resumed;
        }
        for (;;) {
            lowest().expires_never();
            http::request_parser<http::string_body> parser;
            parser.body_limit(body_limit_);
            auto [ec, n] = co_await http::async_read(stream_, buffer_, parser, use_tuple);
            if (ec) {
                if (ec == http::error::body_limit && !broken_) {
                    request dummy;
                    co_await send(make_response(dummy, http::status::payload_too_large,
                                                R"({"code":413,"message":"request body too large"})"));
                }
                break;
            }
            request req = parser.release();
            keep_alive_ = req.keep_alive();
            responded_ = false;
            streaming_ = false;
            co_await handler_(req, *this);
            if (broken_) break;
            if (streaming_ && !stream_ended_) co_await end_stream();
            if (!responded_)
                co_await send(make_response(req, http::status::internal_server_error,
                                            R"({"code":500,"message":"no response"})"));
            if (broken_ || !keep_alive_) break;
        }
        if (!broken_) {
            error_code ignored;
            lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        }
    }

    asio::awaitable<void> send(response res) override {
        if (broken_ || responded_) co_return;
        responded_ = true;
        res.keep_alive(keep_alive_);
        res.prepare_payload();
        auto [ec, n] = co_await http::async_write(stream_, res, use_tuple);
        if (ec) broken_ = true;
    }

    asio::awaitable<bool> begin_stream(http::response_header<> header) override {
        if (broken_ || responded_) co_return false;
        responded_ = streaming_ = true;
        stream_ended_ = false;
        head_ = http::response<http::empty_body>(std::move(header));
        head_.keep_alive(keep_alive_);
        head_.chunked(true);
        http::response_serializer<http::empty_body> sr{head_};
        auto [ec, n] = co_await http::async_write_header(stream_, sr, use_tuple);
        if (ec) broken_ = true;
        co_return !broken_;
    }

    asio::awaitable<bool> write_chunk(std::string_view data) override {
        if (broken_ || !streaming_ || stream_ended_) co_return false;
        if (data.empty()) co_return true;
        auto [ec, n] = co_await asio::async_write(stream_, http::make_chunk(asio::buffer(data.data(), data.size())),
                                                  use_tuple);
        if (ec) broken_ = true;
        co_return !broken_;
    }

    asio::awaitable<void> end_stream() override {
        if (broken_ || !streaming_ || stream_ended_) co_return;
        stream_ended_ = true;
        auto [ec, n] = co_await asio::async_write(stream_, http::make_chunk_last(), use_tuple);
        if (ec) broken_ = true;
    }

    void reset_connection() override {
        broken_ = true;
        error_code ignored;
        auto& sock = lowest().socket();
        sock.set_option(asio::socket_base::linger(true, 0), ignored);
        sock.close(ignored);
    }

    std::string peer() const override {
        error_code ec;
        auto ep = const_cast<session*>(this)->lowest().socket().remote_endpoint(ec);
        return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
    }

    void close() override {
        broken_ = true;
        error_code ignored;
        lowest().socket().close(ignored);
    }

private:
    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

    Stream stream_;
    std::size_t body_limit_;
    request_handler& handler_;
    tls_counts& tls_;
    beast::flat_buffer buffer_;
    http::response<http::empty_body> head_;
    bool keep_alive_ = true;
    bool responded_ = false;
    bool streaming_ = false;
    bool stream_ended_ = false;
    bool broken_ = false;
};

}  // namespace

struct http_server::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor e, http_server_options o, request_handler h)
        : ex(std::move(e)), options(std::move(o)), handler(std::move(h)), acceptor(ex) {}

    asio::any_io_executor ex;
    http_server_options options;
    request_handler handler;
    tcp::acceptor acceptor;
    std::map<std::uint64_t, std::shared_ptr<session_base>> sessions;
    std::uint64_t next_id = 0;
    std::uint64_t connections_accepted = 0;
    tls_counts tls;  // completed handshakes (sessions hold a reference; they keep `impl` alive)
    bool stopped = false;

    template <class Stream>
    void launch(Stream stream) {
        ++connections_accepted;
        auto s = std::make_shared<session<Stream>>(std::move(stream), options.body_limit, handler, tls);
        auto id = next_id++;
        sessions.emplace(id, s);
        asio::co_spawn(ex, s->run(), [self = shared_from_this(), s, id](std::exception_ptr) {
            self->sessions.erase(id);
        });
    }

    asio::awaitable<void> accept_loop() {
        auto self = shared_from_this();
        while (!stopped) {
            auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
            if (ec) {
                if (stopped || ec == asio::error::operation_aborted) co_return;
                continue;
            }
            error_code ignored;
            sock.set_option(tcp::no_delay(true), ignored);
            if (options.tls)
                launch(asio::ssl::stream<beast::tcp_stream>(beast::tcp_stream(std::move(sock)), *options.tls));
            else
                launch(beast::tcp_stream(std::move(sock)));
        }
    }
};

http_server::http_server(asio::any_io_executor ex, http_server_options options, request_handler handler)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(options), std::move(handler))) {}

http_server::~http_server() { stop(); }

unsigned short http_server::start(error_code& ec) {
    auto address = asio::ip::make_address(impl_->options.host, ec);
    if (ec) return 0;
    tcp::endpoint ep{address, impl_->options.port};
    impl_->acceptor.open(ep.protocol(), ec);
    if (ec) return 0;
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    impl_->acceptor.bind(ep, ec);
    if (ec) return 0;
    impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return 0;
    auto port = impl_->acceptor.local_endpoint(ec).port();
    asio::co_spawn(impl_->ex, impl_->accept_loop(), asio::detached);
    return port;
}

void http_server::stop() {
    if (!impl_ || impl_->stopped) return;
    impl_->stopped = true;
    error_code ignored;
    impl_->acceptor.close(ignored);
    auto sessions = impl_->sessions;
    for (auto& [id, s] : sessions) s->close();
}

bool http_server::tls() const noexcept { return static_cast<bool>(impl_->options.tls); }
std::size_t http_server::open_connections() const noexcept { return impl_->sessions.size(); }
std::uint64_t http_server::connections_accepted() const noexcept { return impl_->connections_accepted; }
std::uint64_t http_server::tls_handshakes() const noexcept { return impl_->tls.handshakes; }
std::uint64_t http_server::tls_resumed() const noexcept { return impl_->tls.resumed; }

}  // namespace genesis::e2b_emulator
