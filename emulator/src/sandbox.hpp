// sandbox.hpp - the emulator's sandboxes: state shared by the control plane
// (create, kill, timeout, list) and envd (files, processes).
#pragma once

#include "options.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace genesis::e2b_emulator {

using sys_clock = std::chrono::system_clock;

struct sandbox {
    std::string id;            // "i" + 20 [a-z0-9]
    std::string template_id;   // as resolved
    std::string alias;
    std::string access_token;  // envdAccessToken, sent back as X-Access-Token
    std::map<std::string, std::string> metadata;
    std::map<std::string, std::string> env_vars;  // create-time envVars
    template_spec tmpl;
    bool internet = false;
    sys_clock::time_point started_at;
    sys_clock::time_point end_at;
    std::filesystem::path root;  // private folder; `home()` is bound at /home/user
    std::filesystem::path home() const { return root / "home"; }
    std::unique_ptr<boost::asio::steady_timer> expiry;

    // envd's per-sandbox state (processes); owned by the envd side.
    std::shared_ptr<void> envd_state;
};

struct sandbox_counters {
    std::uint64_t created = 0;
    std::uint64_t killed = 0;
    std::uint64_t expired = 0;
    std::uint64_t vanished = 0;
};

// All sandboxes. Single-threaded: used only from the emulator's io_context thread.
class sandbox_registry {
public:
    sandbox_registry(boost::asio::any_io_executor ex, std::filesystem::path state_dir);
    ~sandbox_registry();

    // Creates the folder tree and arms the expiry timer.
    std::shared_ptr<sandbox> create(const template_spec& tmpl, std::chrono::seconds timeout,
                                    std::map<std::string, std::string> metadata,
                                    std::map<std::string, std::string> env_vars, bool internet);
    // Live sandbox or null (killed, expired or unknown).
    std::shared_ptr<sandbox> find(const std::string& id) const;
    // Ends a sandbox: runs the destroy hook (kills its processes), removes its folder.
    enum class end_reason { killed, expired, vanished, shutdown };
    bool destroy(const std::string& id, end_reason why);
    // New end time = now + timeout (may shorten); re-arms the timer.
    bool set_timeout(const std::string& id, std::chrono::seconds timeout);
    std::vector<std::shared_ptr<sandbox>> list() const;
    std::size_t size() const noexcept { return sandboxes_.size(); }
    const sandbox_counters& counters() const noexcept { return counters_; }
    const std::filesystem::path& state_dir() const noexcept { return state_dir_; }

    // Called before a sandbox's folder is removed (envd kills its processes here).
    std::function<void(sandbox&)> on_destroy;

    void destroy_all();

private:
    void arm(const std::shared_ptr<sandbox>& sb);

    boost::asio::any_io_executor ex_;
    std::filesystem::path state_dir_;
    std::map<std::string, std::shared_ptr<sandbox>> sandboxes_;
    sandbox_counters counters_;
};

// Random identifiers.
std::string random_sandbox_id();                 // "i" + 20 [a-z0-9]
std::string random_hex(std::size_t digits);

}  // namespace genesis::e2b_emulator
