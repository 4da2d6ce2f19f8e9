// e2b_backend.hpp - runs evaluators in E2B cloud sandboxes, one sandbox per job:
// create -> upload -> (pip install) -> run -> download -> kill, as one coroutine
// per job on the launcher's strand. The sandbox is killed on every path.
// See docs/e2b.md for the user's view and docs/architecture.md for the backend
// interface.
#pragma once

#include "e2b/e2b_api.hpp"
#include "launcher_core.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace genesis::launch::detail {

std::unique_ptr<backend> make_e2b_backend(strand_type strand, const launcher_config& cfg, const logger& log);

namespace e2b {
class sandbox_api;
}
// The E2B backend on a sandbox_api of the caller's: the tests' scripted fake
// (tests/unit/e2b_lifecycle_test.cpp). `make_api` is called once per launcher, with
// the launcher's strand; `create_backoff` replaces the waits between creates.
using sandbox_api_factory =
    std::function<std::unique_ptr<e2b::sandbox_api>(boost::asio::any_io_executor, const launcher_config&)>;
backend_factory e2b_backend_factory(sandbox_api_factory make_api,
                                    std::optional<e2b::backoff_params> create_backoff = std::nullopt);

// What make_launcher checks before building an E2B launcher (the API key is
// checked separately): endpoints that parse, a usable CA file, sane numbers.
// One line saying what is wrong, or nullopt. Never mentions the key.
std::optional<std::string> check_e2b_config(const launcher_config& cfg);

// The API client's settings for `cfg.e2b` (key, endpoints, TLS, retry budget);
// shared by the backend and the sweep.
e2b::api_settings make_api_settings(const launcher_config& cfg);

namespace e2b_support {

// `text` as one POSIX shell word: single-quoted unless it only holds safe
// characters ([A-Za-z0-9_./=:,+@%-]).
std::string shell_quote(std::string_view text);

// The sandbox's lifetime for a job whose evaluation may take `evaluation`:
// (dependencies ? install_timeout : 0) + evaluation + 120 s, rounded up to seconds.
std::chrono::seconds sandbox_lifetime(const e2b_params& p, std::chrono::milliseconds evaluation);

// Limits on a result file's name below the results folder (bytes): per path
// component (NAME_MAX) and for the whole relative path.
inline constexpr std::size_t max_result_name_bytes = 255;
inline constexpr std::size_t max_result_path_bytes = 1024;

// A file below the sandbox's results folder as a safe relative path: nullopt when
// `sandbox_path` is not strictly inside `folder`, or its remainder is absolute,
// empty, longer than max_result_path_bytes, holds a control character (NUL,
// newline, ESC, DEL, ...), or has an empty, "." or ".." component or one longer
// than max_result_name_bytes.
std::optional<std::filesystem::path> relative_result_path(std::string_view folder, std::string_view sandbox_path);

// A name as it may be quoted in a warning: control characters and backslashes as
// \xNN, cut after 200 bytes (with the full length said).
std::string printable_name(std::string_view name);

}  // namespace e2b_support

}  // namespace genesis::launch::detail
