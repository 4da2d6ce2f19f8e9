// http_client.cpp - see http_client.hpp. All Beast/Asio/OpenSSL-heavy code of
// the client lives in this one translation unit.
#include "e2b/http_client.hpp"
#include "e2b/http_support.hpp"
#include "coro_support.hpp"
#include "e2b/tls_socket.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/asio/write.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/scheme.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <deque>
#include <filesystem>
#include <map>
#include <set>

namespace genesis::launch::detail::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t error_body_limit = 64 * 1024;  // stream(): kept of a non-2xx body

}  // namespace

// ---- connections -----------------------------------------------------------------------

namespace {

// One TCP (+TLS) connection. Owned through shared_ptr by the pool or by the
// request using it; close() may be called from close_all() while in use.
// Where a TLS connection's new sessions go (OpenSSL's new-session callback finds
// it through the SSL object's ex_data): the client that opened it, and the origin.
struct session_sink {
    std::weak_ptr<void> owner;  // the client's state (client::impl)
    void (*keep)(void* owner, const std::string& key, SSL_SESSION* session) = nullptr;
    std::string key;
};

int session_sink_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

struct connection : std::enable_shared_from_this<connection> {
    connection(const asio::any_io_executor& ex, SSL_CTX* tls_ctx) : resolver(ex), stream(ex) {
        if (tls_ctx) {
            secure.emplace(stream.socket(), tls_ctx, &timed_out);
            watchdog.emplace(ex);
        }
    }

    beast::tcp_stream& tcp() { return stream; }

    // The deadline of the next step. Plain connections use the tcp_stream's own
    // timeouts; a TLS connection waits on the socket directly (tls_socket), so a
    // timer cancels the socket and tls_socket reports beast::error::timeout.
    void expires_after(std::chrono::milliseconds limit) {
        if (!secure) {
            stream.expires_after(limit);
            return;
        }
        timed_out = false;
        const auto generation = ++watch_generation;
        watchdog->expires_after(limit);
        watchdog->async_wait([weak = weak_from_this(), generation](error_code ec) {
            if (ec) return;
            auto self = weak.lock();
            if (!self || generation != self->watch_generation) return;  // gone, or re-armed since
            self->timed_out = true;
            error_code ignored;
            self->stream.socket().cancel(ignored);
        });
    }

    void expires_never() {
        if (!secure) {
            stream.expires_never();
            return;
        }
        ++watch_generation;
        watchdog->cancel();
    }

    void close() {
        resolver.cancel();
        if (watchdog) {
            ++watch_generation;
            watchdog->cancel();
        }
        error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.close();
    }

    // The peer has not closed an idle connection, and nothing unexpected is
    // waiting to be read (a non-blocking peek, no I/O).
    bool looks_alive() {
        auto& socket = stream.socket();
        if (!socket.is_open() || buffer.size() != 0) return false;
        if (secure && SSL_has_pending(secure->native_handle())) return false;
        char byte = 0;
        auto n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }

    tcp::resolver resolver;
    beast::tcp_stream stream;             // the TCP connection (plain HTTP: the stream itself)
    session_sink sessions;                // HTTPS: outlives `secure` (declared before it)
    std::optional<tls_socket> secure;     // HTTPS: TLS over stream's socket
    std::optional<asio::steady_timer> watchdog;  // HTTPS: the current step's deadline
    std::uint64_t watch_generation = 0;
    bool timed_out = false;               // the watchdog cancelled the socket
    beast::flat_buffer buffer;  // bytes read past the previous response
    steady::time_point idle_since{};
    bool aborted = false;       // closed by close_all() under a request
    bool resolve_timed_out = false;
};
using connection_ptr = std::shared_ptr<connection>;

// A response body that is not stored: the parser hands each piece to the
// caller's sink as it is parsed (a 2xx stream), or into `error_body` (first
// error_body_limit bytes of any other answer). Set up once the header is read.
struct sink_body {
    struct value_type {
        const std::function<void(std::string_view)>* sink = nullptr;
        std::string* error_body = nullptr;
        const bool* aborted = nullptr;  // close_all() from inside the sink: deliver nothing more
        bool streamed = false;

        void deliver(std::string_view bytes) const {
            if (bytes.empty() || (aborted && *aborted)) return;
            if (streamed) {
                if (sink) (*sink)(bytes);
            } else if (error_body && error_body->size() < error_body_limit) {
                error_body->append(bytes.data(), std::min(bytes.size(), error_body_limit - error_body->size()));
            }
        }
    };

    class reader {
    public:
        template <bool isRequest, class Fields>
        reader(bhttp::header<isRequest, Fields>&, value_type& body) : body_(body) {}
        void init(const boost::optional<std::uint64_t>&, error_code& ec) { ec = {}; }
        template <class ConstBufferSequence>
        std::size_t put(const ConstBufferSequence& buffers, error_code& ec) {
            std::size_t n = 0;
            for (const auto b : beast::buffers_range_ref(buffers)) {
                body_.deliver(std::string_view(static_cast<const char*>(b.data()), b.size()));
                n += b.size();
            }
            ec = {};
            return n;
        }
        void finish(error_code& ec) { ec = {}; }

    private:
        value_type& body_;
    };
};

// The outcome of writing one request and reading its answer on a connection.
struct exchange_outcome {
    result r;
    bool response_started = false;  // a byte of the response arrived
    bool reusable = false;          // the connection may go back to the pool
};

using body_sink = std::function<void(std::string_view)>;

}  // namespace

// ---- the client's state -----------------------------------------------------------------

struct client::impl : std::enable_shared_from_this<impl> {
    impl(executor_type e, tls_settings t, timeouts l) : ex(std::move(e)), tls(std::move(t)), limits(l), sweep_timer(ex) {
        tls_ctx = make_tls_context(tls, tls_error);
        if (tls_ctx) {  // new sessions come to on_new_session; OpenSSL stores none itself
            SSL_CTX_set_session_cache_mode(tls_ctx->native_handle(),
                                           SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
            SSL_CTX_sess_set_new_cb(tls_ctx->native_handle(), &impl::on_new_session);
        }
    }

    ~impl() {
        for (auto& [key, session] : sessions) SSL_SESSION_free(session);
        if (newest) SSL_SESSION_free(newest);
    }

    executor_type ex;
    tls_settings tls;
    timeouts limits;
    std::shared_ptr<ssl::context> tls_ctx;
    std::string tls_error;
    bool system_roots_loaded = false;

    // TLS session resumption: per origin, the newest session a server gave one of
    // our connections (TLS 1.3: a ticket, which arrives just after the handshake);
    // new connections to that origin offer it, which spares both sides the
    // certificate chain, its verification and the signatures (the key exchange is
    // still done: TLS 1.3 resumes with a fresh (EC)DHE). An origin with no session
    // of its own is offered the newest one of any origin when that session's
    // certificate names its host too: E2B's sandbox hosts (49983-<id>.e2b.app)
    // and its API host share one wildcard certificate, so a sandbox's first
    // connection need not be a full handshake. A server that does not take it
    // simply makes a full handshake.
    std::map<std::string, SSL_SESSION*> sessions;  // owned references
    SSL_SESSION* newest = nullptr;                 // owned reference (also in `sessions`)
    static constexpr std::size_t max_sessions = 512;  // origins remembered (sandbox hosts come and go)

    SSL_SESSION* session_for(const std::string& key, const std::string& host, bool ip) const {
        if (auto it = sessions.find(key); it != sessions.end()) return it->second;
        if (!newest) return nullptr;
        X509* peer = SSL_SESSION_get0_peer(newest);
        if (!peer) return nullptr;
        const int named = ip ? X509_check_ip_asc(peer, host.c_str(), 0)
                             : X509_check_host(peer, host.data(), host.size(), 0, nullptr);
        return named == 1 ? newest : nullptr;
    }

    void forget_session(const std::string& key) {
        auto it = sessions.find(key);
        if (it == sessions.end()) return;
        SSL_SESSION_free(it->second);
        sessions.erase(it);
    }

    // OpenSSL's new-session callback (set on the context): a copy is kept, as
    // OpenSSL marks a connection's own session not resumable when the connection
    // is freed without a TLS shutdown, which is how pooled ones end.
    static int on_new_session(SSL* ssl, SSL_SESSION* session) {
        auto* sink = static_cast<session_sink*>(SSL_get_ex_data(ssl, session_sink_index()));
        if (!sink || !sink->keep || !SSL_SESSION_is_resumable(session)) return 0;
        if (auto owner = sink->owner.lock()) sink->keep(owner.get(), sink->key, session);
        return 0;  // the reference stays OpenSSL's
    }
    static void keep_session(void* owner, const std::string& key, SSL_SESSION* session) {
        SSL_SESSION* copy = SSL_SESSION_dup(session);
        if (!copy) return;
        auto& self = *static_cast<impl*>(owner);
        ++self.counters.tls_sessions;
        if (self.sessions.size() >= max_sessions && !self.sessions.contains(key)) {
            for (auto& [k, s] : self.sessions) SSL_SESSION_free(s);
            self.sessions.clear();
        }
        auto& slot = self.sessions[key];
        if (slot) SSL_SESSION_free(slot);
        slot = copy;
        SSL_SESSION_up_ref(copy);
        if (self.newest) SSL_SESSION_free(self.newest);
        self.newest = copy;
    }

    // Before the first TLS connection: the system roots (honours SSL_CERT_FILE /
    // SSL_CERT_DIR), on top of the CA file. Not needed without verification.
    void load_system_roots() {
        if (system_roots_loaded || !tls_ctx) return;
        system_roots_loaded = true;
        if (!tls.verify_peer) return;
        error_code ignored;
        tls_ctx->set_default_verify_paths(ignored);
    }

    std::map<std::string, std::deque<connection_ptr>> idle;  // per origin, oldest first
    std::set<connection_ptr> busy;
    std::size_t max_idle = default_max_idle_per_origin;
    std::chrono::milliseconds idle_lifetime = default_idle_lifetime;
    asio::steady_timer sweep_timer;
    bool sweep_armed = false;
    std::uint64_t sweep_generation = 0;  // invalidates the handlers of cancelled waits
    client_stats counters;

    // ---- pool ----

    connection_ptr take_idle(const std::string& key) {
        auto it = idle.find(key);
        if (it == idle.end()) return nullptr;
        auto& list = it->second;
        const auto now = steady::now();
        while (!list.empty()) {
            auto c = std::move(list.back());  // the most recently used is the least likely stale
            list.pop_back();
            if (now - c->idle_since < idle_lifetime && c->looks_alive()) return c;
            c->close();
        }
        return nullptr;
    }

    void release(const std::string& key, const connection_ptr& c) {
        busy.erase(c);
        if (c->aborted || max_idle == 0) {
            c->close();
            return;
        }
        c->idle_since = steady::now();
        c->buffer.shrink_to_fit();  // empty here (else not reusable): an idle connection holds no read buffer
        auto& list = idle[key];
        list.push_back(c);
        while (list.size() > max_idle) {
            list.front()->close();
            list.pop_front();
        }
        arm_sweep();
    }

    void discard(const connection_ptr& c) {
        busy.erase(c);
        c->close();
    }

    void sweep() {
        const auto now = steady::now();
        for (auto it = idle.begin(); it != idle.end();) {
            auto& list = it->second;
            while (!list.empty() && now - list.front()->idle_since >= idle_lifetime) {
                list.front()->close();
                list.pop_front();
            }
            it = list.empty() ? idle.erase(it) : std::next(it);
        }
        if (idle.empty() && sweep_armed) disarm_sweep();
    }

    // Closes idle connections that outlived idle_lifetime, checking a few times
    // per lifetime while any connection is idle. The timer is pending only while
    // the pool holds something, so it never keeps an idle io_context running
    // after close_all().
    void arm_sweep() {
        if (sweep_armed) return;
        sweep_armed = true;
        const auto generation = ++sweep_generation;
        sweep_timer.expires_after(std::max(idle_lifetime / 4, std::chrono::milliseconds(50)));
        sweep_timer.async_wait([weak = weak_from_this(), generation](error_code ec) {
            auto self = weak.lock();
            if (!self || generation != self->sweep_generation) return;  // gone, or superseded
            self->sweep_armed = false;
            if (ec) return;
            self->sweep();
            if (!self->idle.empty()) self->arm_sweep();
        });
    }

    void disarm_sweep() {
        ++sweep_generation;
        sweep_armed = false;
        sweep_timer.cancel();
    }

    // ---- opening slots (default_max_opening) ----

    // A request waiting for its turn to open a connection.
    struct opening_turn {
        explicit opening_turn(executor_type e) : timer(std::move(e), steady::time_point::max()) {}
        asio::steady_timer timer;
        bool granted = false;
    };
    std::size_t opening = 0;  // connections being opened now (slots taken)
    std::size_t max_opening = default_max_opening;
    std::deque<opening_turn*> opening_queue;  // oldest first

    // Held while one connection is being opened; its destructor hands the slot to
    // the oldest waiter (or frees it).
    class opening_slot {
    public:
        explicit opening_slot(impl* owner) : owner_(owner) {}
        ~opening_slot() {
            if (owner_) owner_->release_opening();
        }
        opening_slot(const opening_slot&) = delete;
        opening_slot& operator=(const opening_slot&) = delete;

    private:
        impl* owner_;
    };

    // True once a slot is this request's; false when it was cancelled (or the
    // client closed) while it waited.
    asio::awaitable<bool> acquire_opening() {
        if (opening < max_opening && opening_queue.empty()) {
            take_opening();
            co_return true;
        }
        ++counters.opening_waits;
        opening_turn turn(ex);
        opening_queue.push_back(&turn);
        struct dequeue {  // on every path, throwing included
            impl& owner;
            opening_turn& turn;
            ~dequeue() {
                if (!turn.granted) std::erase(owner.opening_queue, &turn);
            }
        } leave{*this, turn};
        (void)co_await turn.timer.async_wait(use_tuple);
        co_return turn.granted;
    }

    void take_opening() {
        ++opening;
        counters.peak_opening = std::max(counters.peak_opening, opening);
    }

    void release_opening() {
        --opening;
        while (opening < max_opening && !opening_queue.empty()) {
            opening_turn* next = opening_queue.front();
            opening_queue.pop_front();
            next->granted = true;
            take_opening();
            next->timer.cancel();
        }
    }

    void close_all() {
        // Requests waiting to open a connection give up (as cancelled).
        for (auto* turn : std::exchange(opening_queue, {})) turn->timer.cancel();
        disarm_sweep();
        for (auto& [key, list] : idle)
            for (auto& c : list) c->close();
        idle.clear();
        for (const auto& c : busy) {
            c->aborted = true;
            c->close();
        }
    }

    void close_idle(const std::string& key) {
        forget_session(key);  // a sandbox's host: it is gone
        auto it = idle.find(key);
        if (it == idle.end()) return;
        for (auto& c : it->second) c->close();
        idle.erase(it);
        if (idle.empty() && sweep_armed) disarm_sweep();
    }

    std::size_t idle_count() const {
        std::size_t n = 0;
        for (const auto& [key, list] : idle) n += list.size();
        return n;
    }

    // A connection taken for one request: back to the pool with release(), else
    // closed and forgotten when the lease ends (also on exceptions and when the
    // coroutine frame is destroyed early).
    class lease {
    public:
        lease(impl& owner, connection_ptr c) : owner_(owner), c_(std::move(c)) { owner_.busy.insert(c_); }
        ~lease() {
            if (c_) owner_.discard(c_);
        }
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;

        connection& operator*() const { return *c_; }
        connection* operator->() const { return c_.get(); }
        const connection_ptr& get() const { return c_; }
        void release(const std::string& key) { owner_.release(key, std::exchange(c_, nullptr)); }

    private:
        impl& owner_;
        connection_ptr c_;
    };

    // ---- requests ----

    static asio::awaitable<result> run(std::shared_ptr<impl> self, origin o, request spec, body_sink sink);
    asio::awaitable<result> open(connection_ptr c, const origin& o, const std::string& key, const std::string& label);
    template <class Stream>
    asio::awaitable<exchange_outcome> exchange(connection& c, Stream& s, const wire_request& req,
                                               const request& spec, const body_sink& sink, const std::string& label);
    template <class Stream>
    asio::awaitable<exchange_outcome> read_whole(connection& c, Stream& s, const request& spec,
                                                 const std::string& label);
    template <class Stream>
    asio::awaitable<exchange_outcome> read_streamed(connection& c, Stream& s, const body_sink& sink,
                                                    const std::string& label);
};

namespace {

result make_failure(failure kind, error_code ec, std::string what, bool sent = false) {
    result r;
    r.kind = kind;
    r.ec = ec ? ec : asio::error::make_error_code(asio::error::operation_aborted);
    r.what = std::move(what);
    r.sent = sent;
    return r;
}

// Turns an I/O error of `phase` into a result. `phase_kind` is used unless the
// error is a timeout or an HTTP parse error.
result io_failure(failure phase_kind, error_code ec, const std::string& label, std::string_view during,
                  std::chrono::milliseconds limit, bool sent) {
    if (ec == beast::error::timeout)
        return make_failure(failure::timeout, ec, label + ": timed out after " + ms_text(limit) + " " + std::string(during),
                            sent);
    if (ec == bhttp::error::body_limit)
        return make_failure(failure::protocol, ec, label + ": the response body is too large", sent);
    if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
        ec != bhttp::error::end_of_stream)
        return make_failure(failure::protocol, ec, label + ": malformed HTTP response (" + ec.message() + ")", sent);
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof)
        return make_failure(phase_kind, ec, label + ": the server closed the connection " + std::string(during), sent);
    return make_failure(phase_kind, ec, label + ": " + ec.message() + " (" + std::string(during) + ")", sent);
}

bool is_connection_loss(const error_code& ec) {
    return ec == asio::error::eof || ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
           ec == ssl::error::stream_truncated;
}

}  // namespace

asio::awaitable<result> client::impl::open(connection_ptr c, const origin& o, const std::string& key,
                                           const std::string& label) {
    const auto deadline = steady::now() + limits.connect;

    // Resolve, bounded by a timer that cancels the resolver.
    asio::steady_timer guard(ex);
    guard.expires_at(deadline);
    guard.async_wait([c](error_code ec) {
        if (ec) return;
        c->resolve_timed_out = true;
        c->resolver.cancel();
    });
    auto [rec, endpoints] = co_await c->resolver.async_resolve(o.host, o.port, use_tuple);
    guard.cancel();
    if (rec) {
        if (c->resolve_timed_out)
            co_return make_failure(failure::timeout, beast::error::timeout,
                                   label + ": timed out after " + ms_text(limits.connect) + " resolving " + o.host);
        co_return make_failure(failure::resolve, rec, label + ": cannot resolve " + o.host + ": " + rec.message());
    }

    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    c->tcp().expires_after(std::max(remaining, std::chrono::milliseconds(1)));
    auto [cec, endpoint] = co_await c->tcp().async_connect(endpoints, use_tuple);
    if (cec) {
        if (cec == beast::error::timeout)
            co_return make_failure(failure::timeout, cec, label + ": timed out after " + ms_text(limits.connect) +
                                                              " connecting");
        co_return make_failure(failure::connect, cec, label + ": cannot connect: " + cec.message());
    }
    c->tcp().socket().set_option(tcp::no_delay(true), cec);

    if (c->secure) {
        SSL* native = c->secure->native_handle();
        error_code aec;
        if (!c->secure->attach(aec))
            co_return make_failure(failure::tls_config, aec, label + ": cannot set up TLS: " + aec.message());
        const bool ip = is_ip_literal(o.host);
        if (!ip) SSL_set_tlsext_host_name(native, o.host.c_str());  // SNI (never for IP literals)
        if (tls.verify_peer) {  // the certificate must name the host (checked with the chain)
            if (ip)
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), o.host.c_str());
            else
                SSL_set1_host(native, o.host.c_str());
        }
        c->sessions = session_sink{weak_from_this(), &impl::keep_session, key};
        SSL_set_ex_data(native, session_sink_index(), &c->sessions);
        if (SSL_SESSION* offer = session_for(key, o.host, ip)) SSL_set_session(native, offer);
        c->expires_after(limits.handshake);
        auto [hec] = co_await c->secure->async_handshake(use_tuple);
        c->expires_never();
        if (!hec && SSL_session_reused(native)) ++counters.tls_resumed;
        if (hec) {
            forget_session(key);  // offered or not: start afresh
            const long verdict = SSL_get_verify_result(native);
            if (tls.verify_peer && verdict != X509_V_OK)
                co_return make_failure(failure::tls_verify, hec,
                                       "TLS certificate verification failed for " + o.host + ":" + o.port + ": " +
                                           X509_verify_cert_error_string(verdict) +
                                           " (set job_config.ca_file to trust a private CA)");
            if (hec == beast::error::timeout)
                co_return make_failure(failure::timeout, hec, label + ": timed out after " +
                                                                  ms_text(limits.handshake) + " in the TLS handshake");
            co_return make_failure(failure::tls, hec, label + ": TLS handshake failed: " + hec.message());
        }
    }
    c->tcp().expires_never();
    co_return result{};
}

template <class Stream>
asio::awaitable<exchange_outcome> client::impl::exchange(connection& c, Stream& s,
                                                         const wire_request& req, const request& spec,
                                                         const body_sink& sink, const std::string& label) {
    c.expires_after(limits.write);
    auto [wec, written] = co_await asio::async_write(s, req.buffers(), use_tuple);
    if (wec) {
        exchange_outcome out;
        out.r = io_failure(failure::write, wec, label, "while sending the request", limits.write, written > 0);
        co_return out;
    }
    exchange_outcome out;
    if (sink)
        out = co_await read_streamed(c, s, sink, label);
    else
        out = co_await read_whole(c, s, spec, label);
    out.r.sent = true;
    c.expires_never();
    co_return out;
}

template <class Stream>
asio::awaitable<exchange_outcome> client::impl::read_whole(connection& c, Stream& s, const request& spec,
                                                           const std::string& label) {
    exchange_outcome out;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(spec.body_limit);
    if (spec.method == bhttp::verb::head) parser.skip(true);
    c.expires_after(limits.read);
    auto [ec, n] = co_await bhttp::async_read(s, c.buffer, parser, use_tuple);
    out.response_started = parser.got_some() || c.buffer.size() > 0;
    if (ec) {
        out.r = io_failure(failure::read, ec, label, "while reading the response", limits.read, true);
        co_return out;
    }
    auto message = parser.release();
    out.reusable = message.keep_alive() && c.buffer.size() == 0;
    out.r.res.status = message.result_int();
    out.r.res.body = std::move(message.body());
    out.r.res.headers = std::move(static_cast<bhttp::fields&>(message));
    co_return out;
}

template <class Stream>
asio::awaitable<exchange_outcome> client::impl::read_streamed(connection& c, Stream& s, const body_sink& sink,
                                                              const std::string& label) {
    exchange_outcome out;
    bhttp::response_parser<sink_body> parser;
    parser.body_limit(boost::none);
    c.expires_after(limits.read);
    auto [hec, hn] = co_await bhttp::async_read_header(s, c.buffer, parser, use_tuple);
    out.response_started = parser.got_some() || c.buffer.size() > 0;
    if (hec) {
        out.r = io_failure(failure::read, hec, label, "while reading the response header", limits.read, true);
        co_return out;
    }
    out.r.res.status = parser.get().result_int();
    out.r.res.headers = static_cast<const bhttp::fields&>(parser.get());

    // Body bytes as they arrive: one read_some at a time, each bounded by the
    // idle timeout, so a silent stream fails instead of hanging. The parser hands
    // them straight to the sink (no buffer of ours in between). The body of a
    // non-2xx answer is collected instead (an error message, not a stream).
    const unsigned status = out.r.res.status;
    auto& body = parser.get().body();
    body.sink = &sink;
    body.streamed = status >= 200 && status < 300;
    body.error_body = &out.r.res.body;
    body.aborted = &c.aborted;
    while (!parser.is_done()) {
        c.expires_after(limits.stream_idle);
        auto [ec, n] = co_await bhttp::async_read_some(s, c.buffer, parser, use_tuple);
        if (ec) {
            out.r = io_failure(failure::read, ec, label, "while streaming the response body", limits.stream_idle, true);
            co_return out;
        }
        if (c.aborted) {  // close_all() from inside the sink
            out.r = make_failure(failure::cancelled, asio::error::operation_aborted, label + ": cancelled", true);
            co_return out;
        }
    }
    out.reusable = parser.get().keep_alive() && c.buffer.size() == 0;
    co_return out;
}

asio::awaitable<result> client::impl::run(std::shared_ptr<impl> self, origin o, request spec, body_sink sink) {
    // One coroutine (frame) per request for this layer: hundreds are in flight.
    // With Asio's default throw_if_cancelled, an async operation started after
    // the coroutine was cancelled throws; callers get a result either way.
    const std::string label = std::string(bhttp::to_string(spec.method)) + " " + o.to_string() +
                              spec.target.substr(0, spec.target.find('?'));
    try {
        std::string why;
        auto req = build_request(o, spec, why);
        if (!req) co_return make_failure(failure::bad_request, asio::error::invalid_argument, label + ": " + why);
        if (o.tls && !self->tls_ctx)
            co_return make_failure(failure::tls_config, asio::error::no_protocol_option, label + ": " + self->tls_error);

        if (o.tls) self->load_system_roots();
        const std::string key = pool_key(o);
        for (int attempt = 0;; ++attempt) {
            auto pooled = self->take_idle(key);
            const bool reused = pooled != nullptr;
            lease c(*self, reused ? std::move(pooled)
                                  : std::make_shared<connection>(self->ex, o.tls ? self->tls_ctx->native_handle() : nullptr));
            if (reused) {
                ++self->counters.reused;
            } else {
                if (!co_await self->acquire_opening())
                    co_return make_failure(failure::cancelled, asio::error::operation_aborted, label + ": cancelled");
                result opened;
                {
                    impl::opening_slot slot(self.get());
                    opened = co_await self->open(c.get(), o, key, label);
                }
                if (!opened.ok()) {
                    if (c->aborted || co_await coroutine_cancelled())
                        co_return make_failure(failure::cancelled, asio::error::operation_aborted, label + ": cancelled");
                    co_return opened;
                }
                ++self->counters.connects;
            }

            exchange_outcome out;
            if (c->secure)
                out = co_await self->exchange(*c, *c->secure, *req, spec, sink, label);
            else
                out = co_await self->exchange(*c, c->stream, *req, spec, sink, label);
            if (out.r.ok()) {
                if (out.reusable) c.release(key);
                co_return out.r;
            }
            if (c->aborted || co_await coroutine_cancelled())
                co_return make_failure(failure::cancelled, asio::error::operation_aborted, label + ": cancelled",
                                       out.r.sent);
            // A pooled connection the server had already closed: one more try on a
            // fresh connection, unless a non-idempotent request may have been read.
            const bool stale = reused && attempt == 0 && !out.response_started && is_connection_loss(out.r.ec);
            if (stale && (spec.idempotent || !out.r.sent)) {
                ++self->counters.stale_retries;
                continue;
            }
            co_return out.r;
        }
    } catch (const boost::system::system_error& e) {
        co_return make_failure(failure::cancelled, e.code(), label + ": cancelled");
    }
}

// ---- client -----------------------------------------------------------------------------

client::client(executor_type ex, tls_settings tls, timeouts t)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(tls), t)) {}

client::~client() { impl_->close_all(); }

client::executor_type client::get_executor() const { return impl_->ex; }
const timeouts& client::get_timeouts() const { return impl_->limits; }
const std::string& client::tls_error() const { return impl_->tls_error; }

asio::awaitable<result> client::send(origin o, request req) {
    return impl::run(impl_, std::move(o), std::move(req), nullptr);
}

asio::awaitable<result> client::stream(origin o, request req, std::function<void(std::string_view)> on_body_bytes) {
    if (!on_body_bytes) on_body_bytes = [](std::string_view) {};
    return impl::run(impl_, std::move(o), std::move(req), std::move(on_body_bytes));
}

void client::close_all() { impl_->close_all(); }
void client::close_idle(const origin& o) { impl_->close_idle(pool_key(o)); }
std::size_t client::open_connections() const { return impl_->busy.size() + impl_->idle_count(); }
std::size_t client::idle_connections() const { return impl_->idle_count(); }
std::size_t client::idle_connections(const origin& o) const {
    auto it = impl_->idle.find(pool_key(o));
    return it == impl_->idle.end() ? 0 : it->second.size();
}
client_stats client::stats() const { return impl_->counters; }

void client::set_opening_limit(std::size_t max_opening) {
    impl_->max_opening = std::max<std::size_t>(max_opening, 1);
}

void client::set_pool_limits(std::size_t max_idle_per_origin, std::chrono::milliseconds idle_lifetime) {
    impl_->max_idle = max_idle_per_origin;
    impl_->idle_lifetime = idle_lifetime;
    impl_->sweep();
}

}  // namespace genesis::launch::detail::http
