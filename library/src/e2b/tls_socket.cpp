// tls_socket.cpp - the socket BIO of tls_socket.hpp.
#include "e2b/tls_socket.hpp"

#include <sys/socket.h>


namespace genesis::launch::detail::http::tls_detail {

namespace {

bio_state* state_of(BIO* b) { return static_cast<bio_state*>(BIO_get_data(b)); }

bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

int bio_read(BIO* b, char* out, size_t len, size_t* read) {
    *read = 0;
    BIO_clear_retry_flags(b);
    auto* st = state_of(b);
    if (!st || st->fd < 0) return 0;
    const ssize_t n = ::recv(st->fd, out, len, 0);
    if (n > 0) {
        *read = static_cast<size_t>(n);
        return 1;
    }
    if (n < 0) {
        st->last_errno = errno;
        if (would_block(errno)) BIO_set_retry_read(b);
    } else {
        st->eof = true;
    }
    return 0;
}

int bio_write(BIO* b, const char* in, size_t len, size_t* written) {
    *written = 0;
    BIO_clear_retry_flags(b);
    auto* st = state_of(b);
    if (!st || st->fd < 0) return 0;
    const ssize_t n = ::send(st->fd, in, len, MSG_NOSIGNAL);
    if (n >= 0) {
        *written = static_cast<size_t>(n);
        return 1;
    }
    st->last_errno = errno;
    if (would_block(errno)) BIO_set_retry_write(b);
    return 0;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
    switch (cmd) {
    case BIO_CTRL_FLUSH:  // nothing is buffered here
        return 1;
    case BIO_CTRL_EOF: {
        auto* st = state_of(b);
        return st && st->eof ? 1 : 0;
    }
    case BIO_C_GET_FD: {
        auto* st = state_of(b);
        return st ? st->fd : -1;
    }
    default:
        return 0;
    }
}

int bio_create(BIO* b) {
    BIO_set_init(b, 0);
    BIO_set_data(b, nullptr);
    return 1;
}

int bio_destroy(BIO*) { return 1; }  // the state and the descriptor belong to tls_socket

}  // namespace

BIO_METHOD* socket_bio_method() {
    static BIO_METHOD* method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "genesis-launch socket");
        if (!m) return m;
        BIO_meth_set_read_ex(m, bio_read);
        BIO_meth_set_write_ex(m, bio_write);
        BIO_meth_set_ctrl(m, bio_ctrl);
        BIO_meth_set_create(m, bio_create);
        BIO_meth_set_destroy(m, bio_destroy);
        return m;
    }();
    return method;
}

}  // namespace genesis::launch::detail::http::tls_detail
