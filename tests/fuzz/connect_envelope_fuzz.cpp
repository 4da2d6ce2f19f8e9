// Fuzz target: the Connect envelope decoder and the payload parsers behind it.
//
// Input byte 0 picks the chunk size the stream is fed in (1..16 bytes, or all at
// once), the rest is the byte stream. Properties: every decoded frame re-encodes
// to exactly the bytes it was read from; the decoder never yields after failing;
// base64 that decodes re-encodes to something that decodes to the same bytes.
#include "e2b/connect_codec.hpp"
#include "fuzz_check.hpp"

#include <algorithm>
#include <string>

namespace e2b = genesis::launch::detail::e2b;
using genesis_fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t mode = data[0];
    const auto stream = genesis_fuzz::as_text(data + 1, size - 1);
    const std::size_t chunk = (mode & 0x10) ? stream.size() + 1 : (mode & 0x0f) + 1;
    // A small limit so that the "frame too large" path is reachable too.
    e2b::envelope_decoder decoder((mode & 0x20) ? 64 : e2b::envelope_decoder::default_max_frame);

    std::size_t consumed = 0;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
        decoder.feed(stream.substr(at, chunk));
        while (auto frame = decoder.next()) {
            const auto wire = e2b::encode_envelope(frame->payload, frame->flags);
            check(stream.substr(consumed, wire.size()) == wire, "frame does not re-encode to its bytes");
            consumed += wire.size();

            std::string why;
            if (frame->end_stream()) {
                auto end = e2b::parse_end_stream(frame->payload, &why);
                check(end.has_value() || !why.empty(), "end-stream rejected without a reason");
            }
            if (auto err = e2b::parse_error_body(frame->payload)) {
                (void)e2b::http_status_for_code(err->code);
                check(e2b::parse_error_body(e2b::encode_error_body(*err)).has_value(),
                      "encoded error body does not parse");
            }
            if (auto bytes = e2b::base64_decode(frame->payload)) {
                auto again = e2b::base64_decode(e2b::base64_encode(*bytes));
                check(again && *again == *bytes, "base64 round trip");
            }
        }
        if (decoder.failed()) {
            check(!decoder.error().empty(), "failed without an error text");
            check(!decoder.next().has_value(), "frame after failure");
            break;
        }
    }
    if (!decoder.failed()) check(decoder.idle() == (consumed == stream.size()), "idle() disagrees with the bytes left");
    return 0;
}
