#include "genesis/launch/json_text.hpp"

#include <boost/json/serialize.hpp>

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace genesis::launch {
namespace json = boost::json;

std::string number_text(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    // The shortest round-trip digits, read from the scientific form "d.ddde[+-]xx".
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    if (ec != std::errc{}) return "0.0";
    const std::string sci(buf, end);
    const auto e_at = sci.find('e');
    const bool negative = sci.front() == '-';
    std::string digits;
    for (std::size_t i = negative ? 1 : 0; i < e_at; ++i)
        if (sci[i] != '.') digits += sci[i];
    const int exponent = std::atoi(sci.c_str() + e_at + 1);
    std::string out = negative ? "-" : "";
    if (exponent < -4 || exponent >= 16) {
        out += digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        char exp_text[16];
        std::snprintf(exp_text, sizeof exp_text, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
        return out + exp_text;
    }
    if (exponent < 0) return out + "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    const auto int_digits = static_cast<std::size_t>(exponent) + 1;
    if (digits.size() <= int_digits) return out + digits + std::string(int_digits - digits.size(), '0') + ".0";
    return out + digits.substr(0, int_digits) + "." + digits.substr(int_digits);
}

namespace {

void write(std::string& out, const json::value& v, int indent, int depth) {
    const bool pretty = indent >= 0;
    auto newline = [&](int level) {
        if (pretty) out += "\n" + std::string(static_cast<std::size_t>(indent * level), ' ');
    };
    switch (v.kind()) {
        case json::kind::object: {
            const auto& o = v.get_object();
            if (o.empty()) {
                out += "{}";
                return;
            }
            out += '{';
            bool first = true;
            for (const auto& member : o) {
                if (!first) out += ',';
                first = false;
                newline(depth + 1);
                out += json::serialize(json::string_view(member.key()));
                out += pretty ? ": " : ":";
                write(out, member.value(), indent, depth + 1);
            }
            newline(depth);
            out += '}';
            return;
        }
        case json::kind::array: {
            const auto& a = v.get_array();
            if (a.empty()) {
                out += "[]";
                return;
            }
            out += '[';
            bool first = true;
            for (const auto& element : a) {
                if (!first) out += ',';
                first = false;
                newline(depth + 1);
                write(out, element, indent, depth + 1);
            }
            newline(depth);
            out += ']';
            return;
        }
        case json::kind::double_:
            out += std::isfinite(v.get_double()) ? number_text(v.get_double()) : std::string("null");
            return;
        default:
            out += json::serialize(v);
            return;
    }
}

}  // namespace

std::string json_text(const json::value& v) {
    std::string out;
    write(out, v, -1, 0);
    return out;
}

std::string json_text_pretty(const json::value& v) {
    std::string out;
    write(out, v, 2, 0);
    return out + "\n";
}

}  // namespace genesis::launch
