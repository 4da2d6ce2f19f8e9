// wire.cpp - see wire.hpp; also the URLs of the API and of envd.
#include "e2b/wire.hpp"

#include "e2b/metadata_query.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <filesystem>
#include <random>

namespace genesis::launch::detail::e2b {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;
using std::chrono::milliseconds;

// ---- small text and JSON helpers ----------------------------------------------------------

std::string encode_component(std::string_view text) {
    return boost::urls::encode(text, boost::urls::unreserved_chars);
}

bool contains_ignoring_case(std::string_view haystack, std::string_view needle) {
    auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    });
    return it != haystack.end();
}

std::optional<json::value> parse_json(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec) return std::nullopt;
    return v;
}

std::string string_field(const json::object& o, std::string_view key) {
    if (const auto* v = o.if_contains(key))
        if (const auto* s = v->if_string()) return std::string(*s);
    return {};
}

// An integer given as a JSON number or as a decimal string (protobuf int64).
std::optional<std::int64_t> integer_of(const json::value& v) {
    if (const auto* i = v.if_int64()) return *i;
    if (const auto* u = v.if_uint64())
        return *u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                   ? std::optional<std::int64_t>(static_cast<std::int64_t>(*u))
                   : std::nullopt;
    if (const auto* d = v.if_double())
        return *d == static_cast<double>(static_cast<std::int64_t>(*d)) ? std::optional<std::int64_t>(
                                                                             static_cast<std::int64_t>(*d))
                                                                       : std::nullopt;
    if (const auto* s = v.if_string()) {
        std::int64_t n = 0;
        auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
        if (ec == std::errc{} && end == s->data() + s->size() && !s->empty()) return n;
    }
    return std::nullopt;
}

// The server's own words from an error body: the JSON `message`, else the raw text.
std::string server_message(std::string_view body) {
    if (auto v = parse_json(body))
        if (const auto* o = v->if_object()) {
            auto message = string_field(*o, "message");
            if (!message.empty()) return message;
        }
    return std::string(body);
}

api_error make_error(api_error::kind k, unsigned status, std::string message) {
    api_error e;
    e.k = k;
    e.status = status;
    e.message = std::move(message);
    return e;
}

api_error cancelled_error(std::string_view context) {
    return make_error(api_error::kind::cancelled, 0, std::string(context) + ": cancelled");
}

api_error make_protocol_error(std::string_view context, std::string_view what) {
    return make_error(api_error::kind::protocol, 0, std::string(context) + ": " + std::string(what));
}

// A failed HTTP exchange (no response) as an api_error. http::result::what is
// already one line without secrets.
api_error transport_error(const http::result& r, std::string_view context) {
    api_error::kind k = api_error::kind::transport;
    switch (r.kind) {
    case http::failure::cancelled: k = api_error::kind::cancelled; break;
    case http::failure::timeout: k = api_error::kind::timeout; break;
    case http::failure::tls_verify:
    case http::failure::tls_config: k = api_error::kind::tls; break;
    case http::failure::protocol:
    case http::failure::bad_request: k = api_error::kind::protocol; break;
    default: break;
    }
    return make_error(k, 0, std::string(context) + ": " + r.what);
}

// Transport failures worth another attempt (a wrong certificate is not).
bool retryable_transport(http::failure f) {
    switch (f) {
    case http::failure::resolve:
    case http::failure::connect:
    case http::failure::tls:
    case http::failure::write:
    case http::failure::read:
    case http::failure::timeout: return true;
    default: return false;
    }
}

bool success_status(unsigned status) { return status >= 200 && status < 300; }

// ---- request bodies (ordinary functions: GCC 12 mis-compiles JSON literals in coroutines) ----

json::object string_map(const std::map<std::string, std::string>& map) {
    json::object o;
    for (const auto& [k, v] : map) o[k] = v;
    return o;
}

std::string create_body(const std::string& template_id, std::chrono::seconds timeout,
                        const std::map<std::string, std::string>& metadata,
                        const std::map<std::string, std::string>& env_vars, bool legacy) {
    json::object o;
    o["templateID"] = template_id;
    o["timeout"] = timeout.count();
    if (!metadata.empty()) o["metadata"] = string_map(metadata);
    if (!env_vars.empty()) o["envVars"] = string_map(env_vars);
    if (legacy) o["secure"] = true;
    return json::serialize(o);
}

std::string timeout_body(std::chrono::seconds timeout) {
    json::object o;
    o["timeout"] = std::max<std::int64_t>(0, timeout.count());
    return json::serialize(o);
}

std::string path_body(const std::string& path) {
    json::object o;
    o["path"] = path;
    return json::serialize(o);
}

std::string list_dir_body(const std::string& path, std::uint32_t depth) {
    json::object o;
    o["path"] = path;
    o["depth"] = depth;
    return json::serialize(o);
}

std::string signal_body(std::uint32_t pid, signal_kind sig) {
    json::object selector;
    selector["pid"] = pid;
    json::object o;
    o["process"] = std::move(selector);
    o["signal"] = sig == signal_kind::sigkill ? "SIGNAL_SIGKILL" : "SIGNAL_SIGTERM";
    return json::serialize(o);
}

// StartRequest of `/bin/bash -l -c <command>` as the SDKs send it (docs/e2b-wire.md, "Start request").
std::string start_request_body(const std::string& command, const std::string& cwd,
                               const std::map<std::string, std::string>& envs) {
    json::array args;
    args.emplace_back("-l");
    args.emplace_back("-c");
    args.emplace_back(command);
    json::object process;
    process["cmd"] = "/bin/bash";
    process["args"] = std::move(args);
    if (!envs.empty()) process["envs"] = string_map(envs);
    if (!cwd.empty()) process["cwd"] = cwd;
    json::object o;
    o["process"] = std::move(process);
    o["stdin"] = false;
    return json::serialize(o);
}

// A multipart boundary that occurs in none of `contents`: a random prefix made
// once per process, then a counter (std::random_device per upload is slow).
std::string unique_boundary(const std::vector<const std::string*>& contents) {
    static const std::string prefix = [] {
        static constexpr char hex[] = "0123456789abcdef";
        std::random_device rd;
        std::string p = "genesis-launch-";
        for (int i = 0; i < 24; ++i) p += hex[rd() % 16];
        return p;
    }();
    static std::atomic<std::uint64_t> counter{0};
    for (;;) {
        std::string b = prefix + "-" + std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
        bool clash = false;
        for (const auto* c : contents) clash = clash || c->find(b) != std::string::npos;
        if (!clash) return b;
    }
}

void append_part(std::string& body, const std::string& boundary, const std::string& path, const std::string& bytes) {
    body += "--";
    body += boundary;
    body += "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"";
    for (char c : path) {
        if (c == '"' || c == '\r' || c == '\n')
            body += "%22";
        else
            body += c;
    }
    body += "\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    body += bytes;
    body += "\r\n";
}

bool multipart_safe_name(std::string_view path) noexcept {
    for (char c : path) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\' || c == '%') return false;
    }
    return !path.empty();
}

// multipart/form-data with one `file` part, for envd < 0.5.7.
std::string multipart_body(const std::string& path, const std::string& bytes, const std::string& boundary) {
    std::string body;
    body.reserve(bytes.size() + 256);
    append_part(body, boundary, path, bytes);
    body += "--" + boundary + "--\r\n";
    return body;
}

// ---- response parsing ------------------------------------------------------------------

api_result<sandbox_handle> parse_sandbox(std::string_view body, std::string_view context) {
    // Never quote this body: it carries the envd access token.
    auto v = parse_json(body);
    const json::object* o = v ? v->if_object() : nullptr;
    if (!o) return api_result<sandbox_handle>::failure(make_protocol_error(context, "the answer is not a JSON object"));
    sandbox_handle sb;
    sb.id = string_field(*o, "sandboxID");
    if (sb.id.empty())
        return api_result<sandbox_handle>::failure(make_protocol_error(context, "the answer has no sandboxID"));
    sb.template_id = string_field(*o, "templateID");
    sb.envd_access_token = string_field(*o, "envdAccessToken");
    sb.domain = string_field(*o, "domain");  // null or absent = the configured domain
    sb.envd_version = string_field(*o, "envdVersion");
    return api_result<sandbox_handle>::success(std::move(sb));
}

std::optional<std::string> append_summaries(std::string_view body, std::vector<sandbox_summary>& out) {
    auto v = parse_json(body);
    const json::array* list = v ? v->if_array() : nullptr;
    if (!list) return "the sandbox list is not a JSON array";
    for (const auto& item : *list) {
        const auto* o = item.if_object();
        if (!o) return "a sandbox list entry is not an object";
        sandbox_summary s;
        s.id = string_field(*o, "sandboxID");
        s.template_id = string_field(*o, "templateID");
        s.state = string_field(*o, "state");
        if (const auto* m = o->if_contains("metadata"); m && m->is_object())
            for (const auto& [k, val] : m->get_object())
                if (const auto* str = val.if_string()) s.metadata[std::string(k)] = std::string(*str);
        out.push_back(std::move(s));
    }
    return std::nullopt;
}

file_type parse_file_type(const json::value& v) {
    if (const auto* s = v.if_string()) {
        if (*s == "FILE_TYPE_FILE" || *s == "file") return file_type::file;
        if (*s == "FILE_TYPE_DIRECTORY" || *s == "dir") return file_type::directory;
        if (*s == "FILE_TYPE_SYMLINK" || *s == "symlink") return file_type::symlink;
        return file_type::unknown;
    }
    switch (integer_of(v).value_or(0)) {
    case 1: return file_type::file;
    case 2: return file_type::directory;
    case 3: return file_type::symlink;
    default: return file_type::unknown;
    }
}

api_result<std::vector<dir_entry>> parse_entries(std::string_view body, std::string_view context) {
    using result_t = api_result<std::vector<dir_entry>>;
    auto v = parse_json(body);
    const json::object* o = v ? v->if_object() : nullptr;
    if (!o) return result_t::failure(make_protocol_error(context, "the answer is not a JSON object"));
    std::vector<dir_entry> entries;
    const auto* list = o->if_contains("entries");
    if (!list) return result_t::success(std::move(entries));  // empty directory: field omitted
    if (!list->is_array()) return result_t::failure(make_protocol_error(context, "`entries` is not an array"));
    for (const auto& item : list->get_array()) {
        const auto* e = item.if_object();
        if (!e) return result_t::failure(make_protocol_error(context, "a directory entry is not an object"));
        dir_entry d;
        d.name = string_field(*e, "name");
        d.path = string_field(*e, "path");
        d.symlink_target = string_field(*e, "symlinkTarget");
        if (const auto* t = e->if_contains("type")) d.type = parse_file_type(*t);
        if (const auto* s = e->if_contains("size")) d.size = integer_of(*s).value_or(0);
        entries.push_back(std::move(d));
    }
    return result_t::success(std::move(entries));
}

// envd < 0.5.7 does not know raw uploads: it answers 415, or 400 about multipart.
bool refuses_octet_stream(const http::response& res) {
    if (res.status == 415) return true;
    if (res.status != 400) return false;
    const auto message = server_message(res.body);
    return contains_ignoring_case(message, "multipart") || contains_ignoring_case(message, "content type") ||
           contains_ignoring_case(message, "content-type");
}

// The body code of a control-plane error ({"code":404,...}), if any.
std::optional<std::int64_t> body_code(std::string_view body) {
    auto v = parse_json(body);
    if (!v || !v->is_object()) return std::nullopt;
    if (const auto* code = v->get_object().if_contains("code")) return integer_of(*code);
    return std::nullopt;
}

// ---- URL derivation ---------------------------------------------------------------------

bool is_shared_sandbox_domain(std::string_view domain) noexcept {
    return domain == "e2b.app" || domain == "e2b.dev" || domain == "e2b.pro" || domain == "e2b-staging.dev";
}

std::string api_base_url(const api_settings& settings) {
    if (!settings.api_url.empty()) return settings.api_url;
    return "https://api." + settings.domain;
}

std::string envd_base_url(const api_settings& settings, std::string_view sandbox_id, std::string_view sandbox_domain) {
    if (!settings.sandbox_url.empty()) return settings.sandbox_url;
    const std::string domain = sandbox_domain.empty() ? settings.domain : std::string(sandbox_domain);
    if (is_shared_sandbox_domain(domain)) return "https://sandbox." + domain;
    return "https://" + std::string(envd_port) + "-" + std::string(sandbox_id) + "." + domain;
}

std::string validate_settings(const api_settings& settings) {
    if (settings.api_key.empty()) return "no E2B API key is set (E2B_API_KEY)";
    if (settings.domain.empty() && (settings.api_url.empty() || settings.sandbox_url.empty()))
        return "no E2B domain is set";
    std::string why;
    if (!http::parse_origin(api_base_url(settings), why)) return "invalid E2B API URL: " + why;
    if (!http::parse_origin(envd_base_url(settings, "i0example", ""), why)) return "invalid E2B sandbox URL: " + why;
    if (!settings.tls.ca_file.empty()) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(settings.tls.ca_file, ec))
            return "CA file '" + settings.tls.ca_file + "' does not exist or is not a file";
    }
    return {};
}

}  // namespace genesis::launch::detail::e2b
