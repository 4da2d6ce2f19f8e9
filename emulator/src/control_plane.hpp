// control_plane.hpp - the E2B REST API: sandboxes create / kill / timeout / get /
// list / connect, and GET /health (docs/e2b-wire.md, "Control plane").
#pragma once

#include "emulator.hpp"

#include <string>
#include <string_view>

namespace genesis::e2b_emulator {

// The endpoint name of a control-plane request (create, kill, set_timeout, get,
// list, connect, health), or "" for an unknown route.
std::string control_endpoint_name(const request& req);

// Answers a control-plane request. `endpoint` is control_endpoint_name(req).
asio::awaitable<void> handle_control(emulator_state& st, std::string_view endpoint, request& req, response_writer& out);

}  // namespace genesis::e2b_emulator
