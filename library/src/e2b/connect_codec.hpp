// connect_codec.hpp - sans-io pieces of the Connect protocol (JSON codec) as
// envd speaks it: envelopes of streaming calls, the end-stream message, error
// codes and their HTTP statuses, and base64 for protobuf `bytes` fields.
// Shared by the E2B client and the local emulator. No I/O here.
//
// Envelope = 1 flag byte + 4-byte big-endian payload length + payload.
// Flags: 0x01 compressed (never negotiated with envd: rejected), 0x02 end of stream.
#pragma once

#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace genesis::launch::detail::e2b {

inline constexpr std::uint8_t envelope_flag_compressed = 0x01;
inline constexpr std::uint8_t envelope_flag_end_stream = 0x02;
inline constexpr std::size_t envelope_header_size = 5;

std::string encode_envelope(std::string_view payload, std::uint8_t flags = 0);

struct envelope {
    std::uint8_t flags = 0;
    std::string payload;
    bool end_stream() const noexcept { return (flags & envelope_flag_end_stream) != 0; }
};

// Reassembles envelopes from arbitrary byte chunks (frames need not line up with
// chunks). Usage: feed(chunk); while (auto e = next()) ...; if (failed()) ...
// After an error the decoder stays failed and yields nothing more.
class envelope_decoder {
public:
    static constexpr std::size_t default_max_frame = 16u * 1024 * 1024;
    explicit envelope_decoder(std::size_t max_frame_size = default_max_frame) : max_frame_(max_frame_size) {}

    void feed(std::string_view bytes);
    // The next complete frame, or nothing (need more bytes, or failed).
    std::optional<envelope> next();

    bool failed() const noexcept { return !error_.empty(); }
    const std::string& error() const noexcept { return error_; }
    // True when no partial frame is buffered (a stream may end cleanly here).
    bool idle() const noexcept { return pos_ == buffer_.size(); }

private:
    std::size_t max_frame_;
    std::string buffer_;
    std::size_t pos_ = 0;  // start of the unread bytes in buffer_
    std::string error_;
};

// A Connect error: `code` is the string form ("not_found", "deadline_exceeded", ...).
struct connect_error {
    std::string code;
    std::string message;
};

// EndStreamResponse payloads: `{}` or `{"error":{"code":...,"message":...}}`.
std::string encode_end_stream(const std::optional<connect_error>& error = std::nullopt);

struct end_stream_message {
    std::optional<connect_error> error;
    boost::json::object metadata;  // trailers, if any
};
// Parses an end-stream payload; nullopt + `why` when it is not one.
std::optional<end_stream_message> parse_end_stream(std::string_view payload, std::string* why = nullptr);

// Unary error body `{"code":"...","message":"..."}` (also the `error` member of
// an end-stream message). Nullopt when `body` is not a Connect error (e.g. a
// proxy's `{"code":502,...}`, whose numeric code does not count).
std::optional<connect_error> parse_error_body(std::string_view body);
std::string encode_error_body(const connect_error& error);

// Code <-> HTTP status (docs/e2b-wire.md, "Connect status table"). Unknown codes map to 500.
int http_status_for_code(std::string_view code);
// What a client derives from a non-200 status without a Connect error body:
// 400 internal, 401 unauthenticated, 403 permission_denied, 404 unimplemented,
// 429/502/503/504 unavailable, anything else unknown.
std::string code_for_http_status(int status);
bool is_known_code(std::string_view code);

// Standard base64 with padding (protobuf JSON `bytes`).
std::string base64_encode(std::string_view bytes);
// Accepts the standard and URL-safe alphabets, with or without padding.
// Nullopt on anything else (bad characters, impossible length, misplaced '=').
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace genesis::launch::detail::e2b
