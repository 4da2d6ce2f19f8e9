#include "e2b/connect_codec.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <utility>

namespace genesis::launch::detail::e2b {

namespace json = boost::json;

// --- envelopes ---

std::string encode_envelope(std::string_view payload, std::uint8_t flags) {
    const auto n = static_cast<std::uint32_t>(payload.size());
    std::string out;
    out.reserve(envelope_header_size + payload.size());
    out.push_back(static_cast<char>(flags));
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
    out.append(payload);
    return out;
}

void envelope_decoder::feed(std::string_view bytes) {
    if (failed()) return;
    // Drop consumed bytes before growing, so the buffer holds at most one frame plus a chunk.
    if (pos_ > 0 && pos_ == buffer_.size()) {
        buffer_.clear();
        pos_ = 0;
    } else if (pos_ > 64 * 1024 && pos_ > buffer_.size() / 2) {
        buffer_.erase(0, pos_);
        pos_ = 0;
    }
    buffer_.append(bytes);
}

std::optional<envelope> envelope_decoder::next() {
    if (failed() || buffer_.size() - pos_ < envelope_header_size) return std::nullopt;
    const auto* h = reinterpret_cast<const unsigned char*>(buffer_.data() + pos_);
    const std::uint8_t flags = h[0];
    const std::size_t length = (std::size_t{h[1]} << 24) | (std::size_t{h[2]} << 16) | (std::size_t{h[3]} << 8) | h[4];
    if (flags & envelope_flag_compressed) {
        error_ = "compressed Connect frame received, but no compression was negotiated";
        return std::nullopt;
    }
    if (length > max_frame_) {
        error_ = "Connect frame of " + std::to_string(length) + " bytes exceeds the limit of " +
                 std::to_string(max_frame_) + " bytes";
        return std::nullopt;
    }
    if (buffer_.size() - pos_ - envelope_header_size < length) return std::nullopt;
    envelope e{flags, buffer_.substr(pos_ + envelope_header_size, length)};
    pos_ += envelope_header_size + length;
    return e;
}

// --- errors and end-stream ---

namespace {

struct code_status {
    std::string_view code;
    int status;
};

constexpr std::array<code_status, 16> code_table{{
    {"canceled", 499},
    {"unknown", 500},
    {"invalid_argument", 400},
    {"deadline_exceeded", 504},
    {"not_found", 404},
    {"already_exists", 409},
    {"permission_denied", 403},
    {"resource_exhausted", 429},
    {"failed_precondition", 400},
    {"aborted", 409},
    {"out_of_range", 400},
    {"unimplemented", 501},
    {"internal", 500},
    {"unavailable", 503},
    {"data_loss", 500},
    {"unauthenticated", 401},
}};

std::optional<json::value> parse_json(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec) return std::nullopt;
    return v;
}

std::optional<connect_error> error_from_value(const json::value& v) {
    const auto* obj = v.if_object();
    if (!obj) return std::nullopt;
    const auto* code = obj->if_contains("code");
    if (!code || !code->is_string()) return std::nullopt;
    connect_error e{std::string(code->get_string()), {}};
    if (const auto* msg = obj->if_contains("message"); msg && msg->is_string()) e.message = msg->get_string();
    return e;
}

json::object error_object(const connect_error& e) {
    json::object o;
    o["code"] = e.code;
    if (!e.message.empty()) o["message"] = e.message;
    return o;
}

}  // namespace

std::string encode_error_body(const connect_error& error) { return json::serialize(error_object(error)); }

std::optional<connect_error> parse_error_body(std::string_view body) {
    auto v = parse_json(body);
    if (!v) return std::nullopt;
    return error_from_value(*v);
}

std::string encode_end_stream(const std::optional<connect_error>& error) {
    if (!error) return "{}";
    json::object o;
    o["error"] = error_object(*error);
    return json::serialize(o);
}

std::optional<end_stream_message> parse_end_stream(std::string_view payload, std::string* why) {
    auto fail = [&](std::string text) -> std::optional<end_stream_message> {
        if (why) *why = std::move(text);
        return std::nullopt;
    };
    auto v = parse_json(payload);
    if (!v || !v->is_object()) return fail("end-stream message is not a JSON object");
    end_stream_message m;
    const auto& obj = v->get_object();
    if (const auto* err = obj.if_contains("error"); err && !err->is_null()) {
        m.error = error_from_value(*err);
        if (!m.error) return fail("end-stream error has no string code");
    }
    if (const auto* md = obj.if_contains("metadata"); md && md->is_object()) m.metadata = md->get_object();
    return m;
}

int http_status_for_code(std::string_view code) {
    for (const auto& c : code_table)
        if (c.code == code) return c.status;
    return 500;
}

bool is_known_code(std::string_view code) {
    for (const auto& c : code_table)
        if (c.code == code) return true;
    return false;
}

std::string code_for_http_status(int status) {
    switch (status) {
        case 400: return "internal";
        case 401: return "unauthenticated";
        case 403: return "permission_denied";
        case 404: return "unimplemented";
        case 429:
        case 502:
        case 503:
        case 504: return "unavailable";
        default: return "unknown";
    }
}

// --- base64 ---

namespace {
constexpr std::string_view b64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0..63, or -1 for a character outside both alphabets.
int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}
}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = (std::uint32_t(static_cast<unsigned char>(bytes[i])) << 16) |
                                (std::uint32_t(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                                static_cast<unsigned char>(bytes[i + 2]);
        out.push_back(b64_alphabet[(v >> 18) & 63]);
        out.push_back(b64_alphabet[(v >> 12) & 63]);
        out.push_back(b64_alphabet[(v >> 6) & 63]);
        out.push_back(b64_alphabet[v & 63]);
    }
    const std::size_t rest = bytes.size() - i;
    if (rest > 0) {
        std::uint32_t v = std::uint32_t(static_cast<unsigned char>(bytes[i])) << 16;
        if (rest == 2) v |= std::uint32_t(static_cast<unsigned char>(bytes[i + 1])) << 8;
        out.push_back(b64_alphabet[(v >> 18) & 63]);
        out.push_back(b64_alphabet[(v >> 12) & 63]);
        out.push_back(rest == 2 ? b64_alphabet[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    // Padding only at the end, at most two, and only where it completes a quantum.
    std::size_t end = text.size();
    std::size_t pads = 0;
    while (end > 0 && text[end - 1] == '=') {
        --end;
        ++pads;
    }
    if (pads > 2 || (pads > 0 && text.size() % 4 != 0)) return std::nullopt;
    const std::size_t tail = end % 4;
    if (tail == 1) return std::nullopt;  // 6 bits cannot make a byte

    std::string out;
    out.reserve(end / 4 * 3 + 2);
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < end; ++i) {
        const int v = b64_value(static_cast<unsigned char>(text[i]));
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

}  // namespace genesis::launch::detail::e2b
