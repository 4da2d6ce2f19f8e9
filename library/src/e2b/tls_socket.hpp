// tls_socket.hpp - a TLS client stream over a connected TCP socket, for the HTTP
// client (http_client.cpp, its only user).
//
// Asio's ssl::stream puts a BIO pair between OpenSSL and the socket and keeps
// four record-sized buffers per connection for its whole life (two of its own,
// the two halves of the pair: about 68 KiB), used or not. Hundreds of pooled
// connections sit idle most of the time, so here OpenSSL reads and writes the
// socket itself, through a small BIO that calls recv / send(MSG_NOSIGNAL), and
// the stream waits for readiness in the io_context's reactor when OpenSSL wants
// to read or write. With SSL_MODE_RELEASE_BUFFERS (set on the context) OpenSSL
// holds its record buffers only while a record is in transit: an idle
// connection is the SSL object and the socket. Read-ahead lets one recv bring
// in as much as is there, not a record header and then its body.
//
// Timeouts: async_wait on a socket knows none, so the owner cancels the socket
// when its deadline passes and sets the flag given to the constructor; the
// operation then fails with beast::error::timeout (what beast::tcp_stream
// reports), so callers treat both transports alike.
//
// One operation of each direction at a time, as for any Asio stream. Everything
// runs on the socket's executor (the HTTP client's strand or single thread).
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace genesis::launch::detail::http {

namespace tls_detail {

// The socket and the last system error of a recv / send (errno is gone by the
// time SSL_get_error has been asked).
struct bio_state {
    int fd = -1;
    int last_errno = 0;
    bool eof = false;  // recv returned 0
};

// A BIO on a non-blocking socket that never raises SIGPIPE (OpenSSL's own
// socket BIO writes with write(2)).
BIO_METHOD* socket_bio_method();

}  // namespace tls_detail

class tls_socket {
public:
    using executor_type = boost::asio::any_io_executor;
    using tcp = boost::asio::ip::tcp;
    using error_code = boost::system::error_code;

    // `socket` must outlive this object; `timed_out` is set by the owner before it
    // cancels the socket at a deadline.
    tls_socket(tcp::socket& socket, SSL_CTX* ctx, const bool* timed_out)
        : socket_(socket), timed_out_(timed_out), ssl_(SSL_new(ctx)) {}
    ~tls_socket() {
        if (ssl_) SSL_free(ssl_);  // frees the BIO too; the descriptor is the socket's
    }
    tls_socket(const tls_socket&) = delete;
    tls_socket& operator=(const tls_socket&) = delete;

    SSL* native_handle() const { return ssl_; }
    executor_type get_executor() { return socket_.get_executor(); }

    // Once the socket is connected: OpenSSL reads and writes its descriptor.
    bool attach(error_code& ec) {
        ec = {};
        if (!ssl_) return set_ssl_error(ec), false;
        socket_.non_blocking(true, ec);
        if (ec) return false;
        state_.fd = socket_.native_handle();
        BIO* bio = BIO_new(tls_detail::socket_bio_method());
        if (!bio) return set_ssl_error(ec), false;
        BIO_set_data(bio, &state_);
        BIO_set_init(bio, 1);
        SSL_set_bio(ssl_, bio, bio);
        SSL_set_read_ahead(ssl_, 1);
        SSL_set_connect_state(ssl_);
        return true;
    }

    template <class Token>
    auto async_handshake(Token&& token) {
        return boost::asio::async_compose<Token, void(error_code)>(
            op<handshake_call, false>{this, {}}, token, socket_);
    }

    template <class MutableBufferSequence, class Token>
    auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
        return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
            op<read_call, true>{this, {first_buffer<boost::asio::mutable_buffer>(buffers)}}, token, socket_);
    }

    template <class ConstBufferSequence, class Token>
    auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
        return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
            op<write_call, true>{this, {first_buffer<boost::asio::const_buffer>(buffers)}}, token, socket_);
    }

private:
    template <class Buffer, class Sequence>
    static Buffer first_buffer(const Sequence& buffers) {
        for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
             ++it) {
            Buffer b(*it);
            if (b.size() != 0) return b;
        }
        return Buffer();
    }

    // One OpenSSL call: 1 done, 0 wants to read, -1 wants to write, -2 failed (ec set).
    struct handshake_call {
        int operator()(tls_socket& s, std::size_t&, error_code& ec) const {
            return s.finish(SSL_do_handshake(s.ssl_), ec);
        }
    };
    // SSL_read_ex into a mutable buffer, SSL_write_ex from a const one.
    template <class Buffer>
    struct transfer_call {
        Buffer b;
        int operator()(tls_socket& s, std::size_t& n, error_code& ec) const {
            if (b.size() == 0) return 1;
            int r = 0;
            if constexpr (std::is_same_v<Buffer, boost::asio::mutable_buffer>)
                r = SSL_read_ex(s.ssl_, b.data(), b.size(), &n);
            else
                r = SSL_write_ex(s.ssl_, b.data(), b.size(), &n);
            return s.finish(r, ec);
        }
    };
    using read_call = transfer_call<boost::asio::mutable_buffer>;
    using write_call = transfer_call<boost::asio::const_buffer>;

    // Runs `call` until it is done, waiting for the socket in between. A call that
    // is done at once completes through a post (never inside the initiation).
    template <class Call, bool Sized>
    struct op {
        tls_socket* s;
        Call call;
        std::size_t n = 0;
        bool waited = false;  // an asynchronous step has happened: completing now is not inline
        bool posted = false;  // done at once; this is the post's invocation
        error_code result{};

        template <class Self>
        void operator()(Self& self, error_code wait_ec = {}) {
            if (posted) return done(self, result);
            error_code ec;
            bool finished = true;
            if (waited && wait_ec) {
                ec = (wait_ec == boost::asio::error::operation_aborted && s->timed_out_ && *s->timed_out_)
                         ? error_code(boost::beast::error::timeout)
                         : wait_ec;
            } else if (!s->socket_.is_open() || !s->ssl_) {
                ec = boost::asio::error::bad_descriptor;  // closed under the operation
            } else {
                ERR_clear_error();
                s->state_.last_errno = 0;
                const int r = call(*s, n, ec);
                if (r == 0 || r == -1) {
                    finished = false;
                    waited = true;
                    s->socket_.async_wait(r == 0 ? tcp::socket::wait_read : tcp::socket::wait_write, std::move(self));
                }
            }
            if (!finished) return;
            if (waited) return done(self, ec);
            posted = true;
            result = ec;
            boost::asio::post(s->socket_.get_executor(), std::move(self));
        }

        template <class Self>
        void done(Self& self, error_code ec) {
            if constexpr (Sized) self.complete(ec, ec ? std::size_t{0} : n);
            else self.complete(ec);
        }
    };

    // SSL_* result -> 1 done, 0 / -1 retry when readable / writable, -2 failed.
    int finish(int r, error_code& ec) {
        if (r > 0) return 1;
        const int e = SSL_get_error(ssl_, r);
        switch (e) {
        case SSL_ERROR_WANT_READ: return 0;
        case SSL_ERROR_WANT_WRITE: return -1;
        case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
            ec = boost::asio::error::eof;
            return -2;
        case SSL_ERROR_SYSCALL:
            if (ERR_peek_error() != 0) {
                set_ssl_error(ec);
            } else if (state_.last_errno != 0) {
                ec = error_code(state_.last_errno, boost::system::system_category());
            } else {
                ec = boost::asio::ssl::error::stream_truncated;  // TCP closed without close_notify
            }
            return -2;
        default:
            set_ssl_error(ec);
            return -2;
        }
    }

    void set_ssl_error(error_code& ec) {
        const unsigned long e = ERR_get_error();
        ERR_clear_error();
        if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ec = boost::asio::ssl::error::stream_truncated;
            return;
        }
        ec = e ? error_code(static_cast<int>(e), boost::asio::error::get_ssl_category())
               : error_code(boost::asio::error::no_protocol_option);
    }

    tcp::socket& socket_;
    const bool* timed_out_;
    SSL* ssl_;
    tls_detail::bio_state state_;
};

}  // namespace genesis::launch::detail::http
