// connect_wire.hpp - the emulator's own reading and writing of the Connect
// protocol's JSON flavour as envd speaks it (envelopes, end-of-stream messages,
// error bodies, the code -> HTTP status table), base64 for protobuf bytes
// fields, and the E2B API server's decoding of the `metadata` list filter.
//
// Written from the protocol, not shared with the library: the launcher's client
// and this server each check the other, so a bug in one codec cannot hide in
// both. tests/emulator/connect_wire_test.cpp pins it to the protocol's bytes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace genesis::e2b_emulator::wire {

// Envelope flag bits: 0x01 compressed (never used), 0x02 end of stream.
inline constexpr std::uint8_t flag_end_stream = 0x02;

// One envelope: the flag byte, the payload's length as 4 bytes big-endian, the payload.
std::string envelope(std::string_view payload, std::uint8_t flags = 0);

// The payload of a request body that must hold exactly one uncompressed envelope,
// or nullopt with `why` (as envd says it: "protocol error: ...").
std::optional<std::string> single_message(std::string_view body, std::string& why);

struct rpc_error {
    std::string code;  // "invalid_argument", "not_found", ...
    std::string message;
};

// The end-of-stream message: {} on success, {"error":{"code":..,"message":..}} otherwise.
std::string end_stream(const std::optional<rpc_error>& error);

// A unary call's error body: {"code":..,"message":..}.
std::string error_body(const rpc_error& error);

// The HTTP status a Connect server answers for a code (500 for an unknown code).
int http_status(std::string_view code);

// Standard base64 with padding (protobuf `bytes` fields in JSON).
std::string base64_encode(std::string_view bytes);
// Standard or URL-safe alphabet, padding optional; nullopt on anything else.
std::optional<std::string> base64_decode(std::string_view text);

// The `metadata` query parameter of GET /sandboxes as the E2B API server reads it,
// from its raw text in the request target: unescaped as a query value, unescaped
// once more, split on '&', every part split on '=' into exactly key and value,
// each unescaped again. nullopt where the server answers 400 "Error parsing metadata".
std::optional<std::map<std::string, std::string>> metadata_filter(std::string_view raw_value);

}  // namespace genesis::e2b_emulator::wire
