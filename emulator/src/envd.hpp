// envd.hpp - the in-sandbox daemon (envd) side of the emulator: files
// (/health, /files), Connect RPC process.Process and filesystem.Filesystem.
//
// The router (emulator.cpp) resolves the sandbox, checks routing headers,
// counts the request, applies latency and non-stream faults, then calls
// handle_envd(). Access-token checks are done here (they differ per endpoint).
#pragma once

#include "emulator.hpp"
#include "http_server.hpp"
#include "sandbox.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace genesis::e2b_emulator {

// Envd endpoint name of a request (for counters, latency and faults):
// "health", "files.upload", "files.download", "process.start", "process.signal",
// "process.list", "process.connect", "process.send_input", "process.close_stdin",
// "filesystem.stat", "filesystem.list_dir", "filesystem.make_dir",
// "filesystem.remove", "filesystem.move"; the RPCs the emulator answers with
// `unimplemented`: "process.update", "process.stream_input",
// "filesystem.watch_dir", "filesystem.create_watcher",
// "filesystem.get_watcher_events", "filesystem.remove_watcher"; or "" when the
// request is not an envd endpoint (then handle_envd answers 404 after the token check).
std::string envd_endpoint_name(const request& req);

// A pre-signed /files URL built on E2B_SANDBOX_URL names no sandbox (no
// E2b-Sandbox-Id header, no <port>-<id> host): the live sandbox whose access
// token made the request's `signature`, or null. For the router.
std::shared_ptr<sandbox> find_sandbox_by_signature(const emulator_state& st, const request& req);

// Serves one envd request for a live sandbox. `endpoint` is envd_endpoint_name(req).
asio::awaitable<void> handle_envd(emulator_state& st, std::shared_ptr<sandbox> sb,
                                  std::string_view endpoint, request& req, response_writer& out);

// Hooks envd into the emulator: sets st.sandboxes.on_destroy so that destroying a
// sandbox SIGKILLs the process groups of all its processes and reaps them.
void install_envd(emulator_state& st);

// --- internal: shared by envd_files.cpp and envd_rpc.cpp ---
namespace envd_detail {

// The Connect RPCs (process.Process, filesystem.Filesystem); envd_rpc.cpp.
asio::awaitable<void> serve_rpc(emulator_state& st, std::shared_ptr<sandbox> sb, std::string_view endpoint,
                                request& req, response_writer& out);

// Whether the request carries the sandbox's access token (or the sandbox has none).
bool token_matches(const sandbox& sb, const request& req);

// envd's plain-HTTP error: `status` with {"code":status,"message":...}.
response http_error(const request& req, int status, std::string_view message);

}  // namespace envd_detail

}  // namespace genesis::e2b_emulator
