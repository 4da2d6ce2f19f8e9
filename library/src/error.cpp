#include "genesis/launch/error.hpp"
#include "genesis/launch/version.hpp"

namespace genesis::launch {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "genesis.launch"; }

    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "success";
            case errc::shut_down: return "the launcher is shut down";
            case errc::invalid_job: return "invalid job";
            case errc::config_error: return "configuration error";
            case errc::backend_unavailable: return "backend not available";
            case errc::spawn_failed: return "could not start the process";
            case errc::io_error: return "file input/output failed";
            case errc::missing_credentials: return "missing credentials";
        }
        return "unknown genesis.launch error";
    }
};

}  // namespace

const boost::system::error_category& launch_category() noexcept {
    static const category instance;
    return instance;
}

std::string diagnostics::to_string() const {
    if (server_message.empty()) return client_message;
    if (client_message.empty()) return "server: " + server_message;
    return client_message + " (server: " + server_message + ")";
}

namespace {
std::string what_text(const boost::system::error_code& ec, const diagnostics& diag) {
    return diag.empty() ? ec.message() : diag.to_string();
}
}  // namespace

launch_error::launch_error(boost::system::error_code ec, diagnostics diag)
    : boost::system::system_error(ec, what_text(ec, diag)), diag_(std::move(diag)) {}

const char* version() noexcept { return GENESIS_LAUNCH_VERSION; }

}  // namespace genesis::launch
