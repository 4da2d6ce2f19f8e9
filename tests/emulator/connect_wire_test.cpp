// The emulator's own Connect wire (emulator/src/connect_wire.*) against the
// protocol's bytes, and against the library's codec: what one writes, the other
// reads, so a mistake in either shows up here instead of hiding in both.
#include "connect_wire.hpp"

#include "e2b/connect_codec.hpp"
#include "e2b/metadata_query.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

namespace wire = genesis::e2b_emulator::wire;
namespace client = genesis::launch::detail::e2b;
using namespace std::string_literals;

TEST(EmulatorWire, EnvelopeBytesAreFlagThenBigEndianLength) {
    EXPECT_EQ(wire::envelope("{}"), "\x00\x00\x00\x00\x02{}"s);
    EXPECT_EQ(wire::envelope("{}", wire::flag_end_stream), "\x02\x00\x00\x00\x02{}"s);
    const std::string big(70000, 'x');
    const std::string e = wire::envelope(big);
    EXPECT_EQ(e.substr(0, 5), "\x00\x00\x01\x11\x70"s);
    EXPECT_EQ(e.size(), 5 + big.size());
}

TEST(EmulatorWire, ARequestBodyHoldsExactlyOneUncompressedEnvelope) {
    std::string why;
    EXPECT_EQ(wire::single_message(wire::envelope(R"({"a":1})"), why), R"({"a":1})");
    EXPECT_EQ(wire::single_message(wire::envelope(""), why), "");
    EXPECT_FALSE(wire::single_message("", why));
    EXPECT_EQ(why, "protocol error: expected exactly one enveloped message");
    EXPECT_FALSE(wire::single_message("{}", why));  // bare JSON: no envelope
    EXPECT_FALSE(wire::single_message(wire::envelope("{}") + wire::envelope("{}"), why));
    EXPECT_EQ(why, "protocol error: expected exactly one enveloped message");
    EXPECT_FALSE(wire::single_message(wire::envelope("{}").substr(0, 6), why));
    EXPECT_EQ(why, "protocol error: incomplete envelope");
    EXPECT_FALSE(wire::single_message(wire::envelope("{}", 0x01), why));
    EXPECT_EQ(why, "protocol error: compressed messages are not supported");
}

TEST(EmulatorWire, EndStreamAndErrorBodies) {
    EXPECT_EQ(wire::end_stream(std::nullopt), "{}");
    EXPECT_EQ(wire::end_stream(wire::rpc_error{"deadline_exceeded", "context deadline exceeded"}),
              R"({"error":{"code":"deadline_exceeded","message":"context deadline exceeded"}})");
    EXPECT_EQ(wire::error_body({"not_found", "no such file"}), R"({"code":"not_found","message":"no such file"})");
}

TEST(EmulatorWire, StatusForEveryCodeOfTheProtocol) {
    const std::pair<const char*, int> table[] = {
        {"canceled", 499},           {"unknown", 500},         {"invalid_argument", 400}, {"deadline_exceeded", 504},
        {"not_found", 404},          {"already_exists", 409},  {"permission_denied", 403}, {"resource_exhausted", 429},
        {"failed_precondition", 400}, {"aborted", 409},        {"out_of_range", 400},     {"unimplemented", 501},
        {"internal", 500},           {"unavailable", 503},     {"data_loss", 500},        {"unauthenticated", 401},
    };
    for (const auto& [code, status] : table) {
        EXPECT_EQ(wire::http_status(code), status) << code;
        EXPECT_EQ(client::http_status_for_code(code), status) << code;  // the client agrees
    }
    EXPECT_EQ(wire::http_status("no_such_code"), 500);
}

TEST(EmulatorWire, Base64BothAlphabetsAndEveryLength) {
    EXPECT_EQ(wire::base64_encode(""), "");
    EXPECT_EQ(wire::base64_encode("f"), "Zg==");
    EXPECT_EQ(wire::base64_encode("fo"), "Zm8=");
    EXPECT_EQ(wire::base64_encode("foo"), "Zm9v");
    EXPECT_EQ(wire::base64_encode("\xff\xfe\xfd"s), "//79");
    EXPECT_EQ(wire::base64_decode("//79"), "\xff\xfe\xfd"s);
    EXPECT_EQ(wire::base64_decode("__79"), "\xff\xfe\xfd"s);  // URL-safe
    EXPECT_EQ(wire::base64_decode("Zm8"), "fo");              // padding optional
    EXPECT_FALSE(wire::base64_decode("Z"));
    EXPECT_FALSE(wire::base64_decode("Zm9v!"));
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (std::size_t n = 0; n <= all.size(); n += 7) {
        const std::string bytes = all.substr(0, n);
        EXPECT_EQ(wire::base64_encode(bytes), client::base64_encode(bytes));
        EXPECT_EQ(client::base64_decode(wire::base64_encode(bytes)), bytes);
        EXPECT_EQ(wire::base64_decode(client::base64_encode(bytes)), bytes);
    }
}

TEST(EmulatorWire, TheClientReadsWhatTheServerWrites) {
    client::envelope_decoder decoder;
    decoder.feed(wire::envelope(R"({"event":{}})") +
                 wire::envelope(wire::end_stream(wire::rpc_error{"not_found", "gone"}), wire::flag_end_stream));
    auto first = decoder.next();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->payload, R"({"event":{}})");
    auto last = decoder.next();
    ASSERT_TRUE(last);
    EXPECT_TRUE(last->flags & client::envelope_flag_end_stream);
    auto end = client::parse_end_stream(last->payload);
    ASSERT_TRUE(end && end->error);
    EXPECT_EQ(end->error->code, "not_found");
    EXPECT_EQ(end->error->message, "gone");
    auto body = client::parse_error_body(wire::error_body({"invalid_argument", "bad"}));
    ASSERT_TRUE(body);
    EXPECT_EQ(body->code, "invalid_argument");
    // And the server reads what the client writes.
    std::string why;
    EXPECT_EQ(wire::single_message(client::encode_envelope(R"({"process":{}})"), why), R"({"process":{}})");
}

// The E2B API server's reading of what the SDK (and the library, metadata_query.hpp) sends.
using metadata = std::map<std::string, std::string>;

TEST(EmulatorMetadataFilter, DecodesWhatTheSdkSends) {
    auto decoded = wire::metadata_filter("a%252520b%3Dc%252526d%25253De%25252F%2525C3%2525BC");
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, (metadata{{"a b", "c&d=e/\xC3\xBC"}}));
    EXPECT_EQ(wire::metadata_filter("job%3Ddemo-42"), (metadata{{"job", "demo-42"}}));
    // Unencoded plain text is accepted too (every layer is a no-op for it).
    EXPECT_EQ(wire::metadata_filter("job=demo-42"), (metadata{{"job", "demo-42"}}));
    // A value may be empty.
    EXPECT_EQ(wire::metadata_filter("job%3D"), (metadata{{"job", ""}}));
}

TEST(EmulatorMetadataFilter, RoundTrips) {
    for (const auto& m : {metadata{{"job", "demo-42"}}, metadata{{"a b", "c&d=e/\xC3\xBC"}, {"k", "v"}},
                          metadata{{"sym", "!#$&'()*+,/:;=?@[]~%^ \t\"<>\\{}|`"}},
                          metadata{{"utf8-\xE6\x97\xA5\xE6\x9C\xAC", "\xF0\x9F\x98\x80"}}}) {
        auto value = client::metadata_query_parameter(m).substr(std::string("metadata=").size());
        auto decoded = wire::metadata_filter(value);
        ASSERT_TRUE(decoded) << value;
        EXPECT_EQ(*decoded, m) << value;
    }
}

TEST(EmulatorMetadataFilter, PlusIsASpaceInEveryLayerLikeGo) {
    // Go's url.QueryUnescape turns '+' into a space.
    EXPECT_EQ(wire::metadata_filter("a+b%3Dc"), (metadata{{"a b", "c"}}));
}

TEST(EmulatorMetadataFilter, RejectsMalformedInput) {
    EXPECT_FALSE(wire::metadata_filter(""));              // one pair without '='
    EXPECT_FALSE(wire::metadata_filter("job"));           // no '='
    EXPECT_FALSE(wire::metadata_filter("a%3Db%3Dc"));     // "a=b=c": three parts
    EXPECT_FALSE(wire::metadata_filter("a%3Db%26"));      // trailing '&' gives an empty pair
    EXPECT_FALSE(wire::metadata_filter("%zz%3Db"));       // bad escape in the first layer
    EXPECT_FALSE(wire::metadata_filter("a%25zz%3Db"));    // bad escape in the second layer
    EXPECT_FALSE(wire::metadata_filter("a%2525zz%3Db"));  // bad escape in a key
    EXPECT_FALSE(wire::metadata_filter("a%3D%2525zz"));   // bad escape in a value
    EXPECT_FALSE(wire::metadata_filter("a%3Db%"));        // truncated escape
}

}  // namespace
