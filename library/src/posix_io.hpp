// posix_io.hpp - the one loop that writes a whole buffer to a descriptor.
#pragma once

#include <cerrno>
#include <string_view>

#include <unistd.h>

namespace genesis::launch::detail {

// Writes all of `bytes` to `fd`, again after EINTR and short writes. Returns 0, or
// the errno of the failure (EIO when the descriptor took nothing).
inline int write_all(int fd, std::string_view bytes) noexcept {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) return EIO;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

}  // namespace genesis::launch::detail
