// sandbox_api.hpp - what the E2B lifecycle needs of the service: the seam between
// the lifecycle coroutines (lifecycle.cpp, download.cpp, e2b_backend.cpp) and the
// API client (e2b_api.hpp). The client implements it over HTTP; the unit tests
// implement it with a scripted fake (tests/unit/e2b_lifecycle_test.cpp), so every
// path of a job can be driven in milliseconds without sockets or sandboxes.
#pragma once

#include "e2b/e2b_api.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace genesis::launch::detail::e2b {

class sandbox_api {
public:
    virtual ~sandbox_api() = default;

    // Control plane. create makes one request per call (its caller owns the retries).
    virtual boost::asio::awaitable<api_result<sandbox_handle>> create(std::string template_id,
                                                                      std::chrono::seconds timeout,
                                                                      std::map<std::string, std::string> metadata,
                                                                      std::map<std::string, std::string> env_vars) = 0;
    // true = killed, false = it did not exist.
    virtual boost::asio::awaitable<api_result<bool>> kill(std::string sandbox_id) = 0;
    virtual boost::asio::awaitable<api_result<std::vector<sandbox_summary>>> list(
        std::map<std::string, std::string> metadata) = 0;

    // envd.
    virtual boost::asio::awaitable<api_status> upload_files(sandbox_handle sb, std::vector<upload_file> files) = 0;
    virtual boost::asio::awaitable<api_result<std::string>> download(sandbox_handle sb, std::string sandbox_path) = 0;
    virtual boost::asio::awaitable<api_result<std::vector<dir_entry>>> list_dir(sandbox_handle sb, std::string path,
                                                                                std::uint32_t depth) = 0;
    // `/bin/bash -l -c <command_line>`; a non-zero exit is not an error (run_result).
    // on_start is called when the command starts: its time limit counts from there.
    virtual boost::asio::awaitable<api_result<run_result>> run(sandbox_handle sb, std::string command_line,
                                                               std::string cwd, std::map<std::string, std::string> envs,
                                                               std::optional<std::chrono::milliseconds> timeout,
                                                               std::function<void(std::string_view)> on_stdout,
                                                               std::function<void(std::string_view)> on_stderr,
                                                               std::function<void(std::uint32_t)> on_start) = 0;

    // Aborts every call in flight (they fail with kind::cancelled); the API stays usable.
    virtual void close() = 0;
    // The sandbox is gone: its connections may go.
    virtual void forget(const sandbox_handle& sb) = 0;
    // Requests to the sandbox's envd that can be sent at once without a new connection.
    virtual std::size_t idle_envd_connections(const sandbox_handle& sb) const = 0;
};

}  // namespace genesis::launch::detail::e2b
