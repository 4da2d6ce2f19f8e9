// Connect envelope framing, end-stream messages, error codes, base64.
#include "e2b/connect_codec.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace genesis::launch::detail::e2b;

namespace {

std::vector<envelope> drain(envelope_decoder& d) {
    std::vector<envelope> out;
    while (auto e = d.next()) out.push_back(std::move(*e));
    return out;
}

TEST(ConnectEnvelope, EncodesHeaderBigEndian) {
    const std::string payload = R"({"event":{"start":{"pid":1234}}})";
    const std::string e = encode_envelope(payload);
    ASSERT_EQ(e.size(), 5 + payload.size());
    EXPECT_EQ(e[0], '\0');
    EXPECT_EQ(std::string(e.data() + 1, 4), std::string("\0\0\0\x20", 4));
    EXPECT_EQ(e.substr(5), payload);

    const std::string end = encode_envelope("{}", envelope_flag_end_stream);
    EXPECT_EQ(end, std::string("\x02\0\0\0\x02{}", 7));

    const std::string big(0x01020304 & 0xffff, 'x');  // 0x0304 bytes
    const std::string eb = encode_envelope(big);
    EXPECT_EQ(static_cast<unsigned char>(eb[3]), 0x03);
    EXPECT_EQ(static_cast<unsigned char>(eb[4]), 0x04);
}

TEST(ConnectEnvelope, DecodesByteByByte) {
    const std::string stream = encode_envelope(R"({"a":1})") + encode_envelope("") +
                               encode_envelope(std::string(300, 'z')) + encode_envelope("{}", envelope_flag_end_stream);
    envelope_decoder d;
    std::vector<envelope> frames;
    for (char c : stream) {
        d.feed(std::string_view(&c, 1));
        for (auto& e : drain(d)) frames.push_back(std::move(e));
    }
    ASSERT_FALSE(d.failed()) << d.error();
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(frames[0].payload, R"({"a":1})");
    EXPECT_EQ(frames[1].payload, "");
    EXPECT_EQ(frames[2].payload, std::string(300, 'z'));
    EXPECT_FALSE(frames[2].end_stream());
    EXPECT_TRUE(frames[3].end_stream());
    EXPECT_EQ(frames[3].payload, "{}");
    EXPECT_TRUE(d.idle());
}

TEST(ConnectEnvelope, SeveralFramesInOneChunkAndSplitAcrossChunks) {
    const std::string a = encode_envelope("first"), b = encode_envelope("second"), c = encode_envelope("third");
    const std::string all = a + b + c;
    envelope_decoder d;
    // Chunk 1: a, b and 3 bytes of c's header; chunk 2: the rest.
    d.feed(std::string_view(all).substr(0, a.size() + b.size() + 3));
    auto first = drain(d);
    ASSERT_EQ(first.size(), 2u);
    EXPECT_EQ(first[0].payload, "first");
    EXPECT_EQ(first[1].payload, "second");
    EXPECT_FALSE(d.idle());
    d.feed(std::string_view(all).substr(a.size() + b.size() + 3));
    auto second = drain(d);
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second[0].payload, "third");
    EXPECT_TRUE(d.idle());
}

TEST(ConnectEnvelope, LargeStreamInUnevenChunks) {
    std::string stream;
    for (int i = 0; i < 200; ++i) stream += encode_envelope(std::string(1000 + i, static_cast<char>('a' + i % 26)));
    envelope_decoder d;
    std::size_t count = 0;
    for (std::size_t off = 0; off < stream.size(); off += 777) {
        d.feed(std::string_view(stream).substr(off, 777));
        for (auto& e : drain(d)) {
            EXPECT_EQ(e.payload.size(), 1000 + count);
            ++count;
        }
    }
    EXPECT_EQ(count, 200u);
    EXPECT_TRUE(d.idle());
}

TEST(ConnectEnvelope, RejectsOversizedFrame) {
    envelope_decoder d(16);
    d.feed(encode_envelope(std::string(16, 'x')));
    ASSERT_TRUE(d.next().has_value());
    d.feed(encode_envelope(std::string(17, 'x')).substr(0, 5));  // the header alone is enough to know
    EXPECT_FALSE(d.next().has_value());
    EXPECT_TRUE(d.failed());
    EXPECT_NE(d.error().find("exceeds"), std::string::npos);
    d.feed(encode_envelope("ok"));
    EXPECT_FALSE(d.next().has_value());  // stays failed
}

TEST(ConnectEnvelope, RejectsCompressedFlag) {
    envelope_decoder d;
    d.feed(encode_envelope("x", envelope_flag_compressed));
    EXPECT_FALSE(d.next().has_value());
    EXPECT_TRUE(d.failed());
    EXPECT_NE(d.error().find("compress"), std::string::npos);
}

TEST(ConnectEndStream, EncodeAndParse) {
    EXPECT_EQ(encode_end_stream(), "{}");
    auto ok = parse_end_stream("{}");
    ASSERT_TRUE(ok);
    EXPECT_FALSE(ok->error);

    const std::string deadline = encode_end_stream(connect_error{"deadline_exceeded", "context deadline exceeded"});
    auto err = parse_end_stream(deadline);
    ASSERT_TRUE(err && err->error);
    EXPECT_EQ(err->error->code, "deadline_exceeded");
    EXPECT_EQ(err->error->message, "context deadline exceeded");

    auto with_meta = parse_end_stream(R"( {"metadata": {"x-trailer": ["v1", "v2"]},
        "error": {"code": "invalid_argument", "message": "cwd '/nope' does not exist", "details": []}} )");
    ASSERT_TRUE(with_meta && with_meta->error);
    EXPECT_EQ(with_meta->error->code, "invalid_argument");
    EXPECT_EQ(with_meta->metadata.at("x-trailer").as_array().size(), 2u);

    std::string why;
    EXPECT_FALSE(parse_end_stream("[]", &why));
    EXPECT_FALSE(why.empty());
    EXPECT_FALSE(parse_end_stream(R"({"error":{"code":504}})", &why));
    EXPECT_FALSE(parse_end_stream("not json"));
}

TEST(ConnectErrors, BodiesAndStatusMapping) {
    auto e = parse_error_body(R"({"code":"not_found","message":"process with pid 7 not found"})");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, "not_found");
    EXPECT_EQ(e->message, "process with pid 7 not found");
    EXPECT_FALSE(parse_error_body(R"({"code":502,"message":"The sandbox was not found"})"));
    EXPECT_FALSE(parse_error_body("<html>"));
    auto round = parse_error_body(encode_error_body({"already_exists", "dir"}));
    ASSERT_TRUE(round);
    EXPECT_EQ(round->code, "already_exists");

    EXPECT_EQ(http_status_for_code("canceled"), 499);
    EXPECT_EQ(http_status_for_code("invalid_argument"), 400);
    EXPECT_EQ(http_status_for_code("deadline_exceeded"), 504);
    EXPECT_EQ(http_status_for_code("not_found"), 404);
    EXPECT_EQ(http_status_for_code("already_exists"), 409);
    EXPECT_EQ(http_status_for_code("resource_exhausted"), 429);
    EXPECT_EQ(http_status_for_code("unimplemented"), 501);
    EXPECT_EQ(http_status_for_code("unavailable"), 503);
    EXPECT_EQ(http_status_for_code("unauthenticated"), 401);
    EXPECT_EQ(http_status_for_code("no_such_code"), 500);
    EXPECT_TRUE(is_known_code("data_loss"));
    EXPECT_FALSE(is_known_code("Not_Found"));

    EXPECT_EQ(code_for_http_status(400), "internal");
    EXPECT_EQ(code_for_http_status(401), "unauthenticated");
    EXPECT_EQ(code_for_http_status(403), "permission_denied");
    EXPECT_EQ(code_for_http_status(404), "unimplemented");
    EXPECT_EQ(code_for_http_status(429), "unavailable");
    EXPECT_EQ(code_for_http_status(502), "unavailable");
    EXPECT_EQ(code_for_http_status(503), "unavailable");
    EXPECT_EQ(code_for_http_status(504), "unavailable");
    EXPECT_EQ(code_for_http_status(500), "unknown");
    EXPECT_EQ(code_for_http_status(418), "unknown");
}

TEST(Base64, Rfc4648Vectors) {
    const std::pair<std::string, std::string> vectors[] = {
        {"", ""},          {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}, {"hello\n", "aGVsbG8K"},
    };
    for (const auto& [plain, encoded] : vectors) {
        EXPECT_EQ(base64_encode(plain), encoded);
        EXPECT_EQ(base64_decode(encoded), plain) << encoded;
    }
}

TEST(Base64, BinaryRoundTripAndAlternateForms) {
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    EXPECT_EQ(base64_decode(base64_encode(all)), all);

    // 0xfb 0xff -> "+/8=" standard, "-_8" URL-safe without padding.
    EXPECT_EQ(base64_encode("\xfb\xff"), "+/8=");
    EXPECT_EQ(base64_decode("-_8="), "\xfb\xff");
    EXPECT_EQ(base64_decode("-_8"), "\xfb\xff");
    EXPECT_EQ(base64_decode("Zg"), "f");
    EXPECT_EQ(base64_decode("Zm8"), "fo");

    EXPECT_FALSE(base64_decode("Z"));       // impossible length
    EXPECT_FALSE(base64_decode("Zm9v!"));   // bad character
    EXPECT_FALSE(base64_decode("Zg=a"));    // padding in the middle
    EXPECT_FALSE(base64_decode("Zg="));     // partial padding
    EXPECT_FALSE(base64_decode("Zg==="));   // too much padding
    EXPECT_FALSE(base64_decode("Zm9v\n"));  // no whitespace in JSON bytes
}

}  // namespace
