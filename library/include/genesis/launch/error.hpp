// error.hpp - the library's error codes and diagnostics.
//
// Every asynchronous operation reports failure through a boost::system::error_code
// whose category is launch_category(). Human-readable detail travels in a
// `diagnostics` object, which keeps what the library itself says apart from what a
// remote server said (a server's text is untrusted and never interpreted).
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <string>
#include <type_traits>

namespace genesis::launch {

enum class errc {
    ok = 0,
    shut_down,            // the launcher no longer accepts jobs
    invalid_job,          // the job_spec cannot be run (e.g. empty program path)
    config_error,         // configuration could not be loaded or is invalid
    backend_unavailable,  // the configured backend is not built into this library
    spawn_failed,         // a local process could not be started
    io_error,             // reading or writing local files failed
    missing_credentials,  // a backend needs an API key that was not given
};

const boost::system::error_category& launch_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), launch_category()};
}

// Detail that accompanies an error_code. `client_message` is written by this
// library; `server_message` is copied verbatim from a remote peer (if any).
struct diagnostics {
    std::string client_message;
    std::string server_message;

    void clear() {
        client_message.clear();
        server_message.clear();
    }
    bool empty() const noexcept { return client_message.empty() && server_message.empty(); }
    // One line suitable for a terminal: "client message (server: ...)".
    std::string to_string() const;
};

// Thrown by the synchronous facades (load_config, make_launcher, job_handle::get ...)
// only; the asynchronous API never throws for runtime failures.
class launch_error : public boost::system::system_error {
public:
    launch_error(boost::system::error_code ec, diagnostics diag);
    const diagnostics& diag() const noexcept { return diag_; }

private:
    diagnostics diag_;
};

}  // namespace genesis::launch

template <>
struct boost::system::is_error_code_enum<genesis::launch::errc> : std::true_type {};
