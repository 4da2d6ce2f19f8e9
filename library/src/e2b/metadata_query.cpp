#include "e2b/metadata_query.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/grammar/alnum_chars.hpp>
#include <boost/url/grammar/lut_chars.hpp>

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

}  // namespace genesis::launch::detail::e2b
