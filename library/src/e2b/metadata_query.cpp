#include "e2b/metadata_query.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/grammar/alnum_chars.hpp>
#include <boost/url/grammar/lut_chars.hpp>
#include <boost/url/pct_string_view.hpp>

namespace genesis::launch::detail::e2b {

namespace {

namespace urls = boost::urls;
using urls::grammar::lut_chars;

// Characters JavaScript's encodeURIComponent leaves alone.
constexpr lut_chars uri_component_chars = lut_chars(urls::grammar::alnum_chars) + lut_chars("-_.!~*'()");
// Characters the URLSearchParams (application/x-www-form-urlencoded) serializer leaves alone.
constexpr lut_chars form_urlencoded_chars = lut_chars(urls::grammar::alnum_chars) + lut_chars("*-._");

std::string encode_uri_component(std::string_view s) { return urls::encode(s, uri_component_chars); }

std::string form_urlencode(std::string_view s) {
    urls::encoding_opts opts;
    opts.space_as_plus = true;
    return urls::encode(s, form_urlencoded_chars, opts);
}

// Go's url.QueryUnescape: "%XX" escapes and '+' as a space; a malformed escape is an error.
std::optional<std::string> query_unescape(std::string_view s) {
    auto pct = urls::make_pct_string_view(s);
    if (!pct) return std::nullopt;
    urls::encoding_opts opts;
    opts.space_as_plus = true;
    return pct->decode(opts);
}

// Splits on every occurrence of `sep` (an empty string gives one empty part).
std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    for (;;) {
        auto at = s.find(sep);
        parts.push_back(s.substr(0, at));
        if (at == std::string_view::npos) return parts;
        s.remove_prefix(at + 1);
    }
}

}  // namespace

std::string encode_metadata_filter(const std::map<std::string, std::string>& metadata) {
    std::string out;
    for (const auto& [key, value] : metadata) {
        if (!out.empty()) out += '&';
        out += form_urlencode(encode_uri_component(key));
        out += '=';
        out += form_urlencode(encode_uri_component(value));
    }
    return out;
}

std::string metadata_query_parameter(const std::map<std::string, std::string>& metadata) {
    return "metadata=" + encode_uri_component(encode_metadata_filter(metadata));
}

std::optional<std::map<std::string, std::string>> decode_metadata_filter(std::string_view raw_query_value) {
    // Step 1: the query parameter's own encoding; step 2: URLSearchParams' layer.
    auto once = query_unescape(raw_query_value);
    if (!once) return std::nullopt;
    auto twice = query_unescape(*once);
    if (!twice) return std::nullopt;
    // Step 3: the pairs, each key and value still encodeURIComponent-encoded.
    std::map<std::string, std::string> filters;
    for (auto pair : split(*twice, '&')) {
        auto kv = split(pair, '=');
        if (kv.size() != 2) return std::nullopt;
        auto key = query_unescape(kv[0]);
        auto value = query_unescape(kv[1]);
        if (!key || !value) return std::nullopt;
        filters[std::move(*key)] = std::move(*value);
    }
    return filters;
}

}  // namespace genesis::launch::detail::e2b
