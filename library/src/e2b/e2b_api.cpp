// e2b_api.cpp - see e2b_api.hpp.
#include "e2b/e2b_api.hpp"

#include "e2b/metadata_query.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <limits>
#include <atomic>
#include <random>
#include <stdexcept>

#ifndef GENESIS_LAUNCH_VERSION
#define GENESIS_LAUNCH_VERSION "0"
#endif

namespace genesis::launch::detail::e2b {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;
using std::chrono::milliseconds;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_quoted_message = 300;
constexpr int max_list_pages = 1000;

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

asio::awaitable<bool> coroutine_cancelled() {
    asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    co_return state.cancelled() != asio::cancellation_type::none;
}

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

// StartRequest of `/bin/bash -l -c <command>` as the SDKs send it (§6.4).
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

// Time allowed on top of a command's own deadline before the call gives up
// locally (envd normally ends the stream at the deadline itself).
milliseconds local_margin(milliseconds timeout) {
    return std::clamp(timeout / 4, milliseconds(500), milliseconds(5000));
}

// Removes the entry for a sleeping timer from api::sleeping_ on every exit path.
template <class Set, class T>
struct set_entry {
    Set& set;
    T* item;
    set_entry(Set& s, T* i) : set(s), item(i) { set.insert(item); }
    ~set_entry() { set.erase(item); }
    set_entry(const set_entry&) = delete;
    set_entry& operator=(const set_entry&) = delete;
};

}  // namespace

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

// ---- errors ------------------------------------------------------------------------------

bool api_error::transient() const noexcept {
    switch (k) {
    case kind::transport:
    case kind::rate_limited: return true;
    case kind::timeout: return status != 504;
    case kind::http: return is_transient_status(status);
    default: return false;
    }
}

std::string_view to_string(api_error::kind k) noexcept {
    switch (k) {
    case api_error::kind::transport: return "transport";
    case api_error::kind::tls: return "tls";
    case api_error::kind::timeout: return "timeout";
    case api_error::kind::http: return "http";
    case api_error::kind::protocol: return "protocol";
    case api_error::kind::not_found: return "not_found";
    case api_error::kind::sandbox_gone: return "sandbox_gone";
    case api_error::kind::unauthorized: return "unauthorized";
    case api_error::kind::rate_limited: return "rate_limited";
    case api_error::kind::maybe_created: return "maybe_created";
    case api_error::kind::cancelled: return "cancelled";
    }
    return "unknown";
}

std::string quote_server_message(std::string_view text) {
    // One line: control characters become spaces, runs of spaces collapse.
    std::string flat;
    for (char c : text) {
        const bool control = static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        const char out = control ? ' ' : c;
        if (out == ' ' && (flat.empty() || flat.back() == ' ')) continue;
        flat += out;
    }
    while (!flat.empty() && flat.back() == ' ') flat.pop_back();
    bool cut = false;
    if (flat.size() > max_quoted_message) {
        std::size_t end = max_quoted_message;
        while (end > 0 && (static_cast<unsigned char>(flat[end]) & 0xC0) == 0x80) --end;  // UTF-8 boundary
        flat.resize(end);
        cut = true;
    }
    std::string quoted = "\"";
    for (char c : flat) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    if (cut) quoted += "\xE2\x80\xA6";  // …
    quoted += '"';
    return quoted;
}

api_error connect_error_to_api_error(const connect_error& error, std::string_view context) {
    using k = api_error::kind;
    const std::string& code = error.code;
    k kind = k::http;
    if (code == "deadline_exceeded")
        kind = k::timeout;
    else if (code == "unavailable")
        kind = k::transport;
    else if (code == "unauthenticated" || code == "permission_denied")
        kind = k::unauthorized;
    else if (code == "not_found")
        kind = k::not_found;
    else if (code == "resource_exhausted")
        kind = k::rate_limited;
    else if (code == "canceled")
        kind = k::cancelled;
    std::string message = std::string(context) + ": " + code;
    if (!error.message.empty()) message += " " + quote_server_message(error.message);
    return make_error(kind, static_cast<unsigned>(http_status_for_code(code)), std::move(message));
}

std::optional<api_error> end_stream_to_error(const end_stream_message& end, std::string_view context) {
    if (!end.error) return std::nullopt;
    return connect_error_to_api_error(*end.error, context);
}

api_error classify_http_error(plane p, unsigned status, std::string_view body, std::string_view context) {
    using k = api_error::kind;
    if (p == plane::envd)
        if (auto ce = parse_error_body(body)) {
            auto e = connect_error_to_api_error(*ce, context);
            e.status = status;
            return e;
        }
    const std::string message = server_message(body);
    k kind = k::http;
    if (status == 401 || status == 403)
        kind = k::unauthorized;
    else if (status == 404)
        kind = k::not_found;
    else if (status == 429)
        kind = k::rate_limited;
    else if (p == plane::envd && status == 502 && contains_ignoring_case(message, "sandbox was not found"))
        kind = k::sandbox_gone;
    std::string text = std::string(context) + ": HTTP " + std::to_string(status);
    if (!message.empty()) text += " " + quote_server_message(message);
    return make_error(kind, status, std::move(text));
}

// ---- process events -------------------------------------------------------------------------

std::optional<process_event> parse_process_event(const json::value& message, std::string& why) {
    const auto* root = message.if_object();
    const json::value* event = root ? root->if_contains("event") : nullptr;
    if (!event || !event->is_object()) {
        why = "a stream message without an `event` object";
        return std::nullopt;
    }
    const auto& e = event->get_object();
    process_event out;
    if (const auto* start = e.if_contains("start")) {
        out.t = process_event::type::start;
        const auto* pid = start->is_object() ? start->get_object().if_contains("pid") : nullptr;
        auto n = pid ? integer_of(*pid) : std::optional<std::int64_t>(0);
        if (!n || *n < 0 || *n > std::numeric_limits<std::uint32_t>::max()) {
            why = "a start event with an invalid pid";
            return std::nullopt;
        }
        out.pid = static_cast<std::uint32_t>(*n);
    } else if (const auto* data = e.if_contains("data")) {
        out.t = process_event::type::data;
        if (!data->is_object()) {
            why = "a data event that is not an object";
            return std::nullopt;
        }
        for (const auto& [name, value] : data->get_object()) {
            const auto* text = value.if_string();
            auto bytes = text ? base64_decode(*text) : std::nullopt;
            if (!bytes) {
                why = "a data event with invalid base64 in `" + std::string(name) + "`";
                return std::nullopt;
            }
            if (name == "stdout" || name == "pty")
                out.stdout_bytes += *bytes;
            else if (name == "stderr")
                out.stderr_bytes += *bytes;
        }
    } else if (const auto* end = e.if_contains("end")) {
        out.t = process_event::type::end;
        if (!end->is_object()) {
            why = "an end event that is not an object";
            return std::nullopt;
        }
        const auto& o = end->get_object();
        const json::value* code = o.if_contains("exitCode");
        if (!code) code = o.if_contains("exit_code");
        if (code) {
            auto n = integer_of(*code);
            if (!n || *n < std::numeric_limits<int>::min() || *n > std::numeric_limits<int>::max()) {
                why = "an end event with an invalid exit code";
                return std::nullopt;
            }
            out.end.exit_code = static_cast<int>(*n);
        }
        if (const auto* exited = o.if_contains("exited")) out.end.exited = exited->is_bool() && exited->get_bool();
        out.end.status = string_field(o, "status");
        out.end.error = string_field(o, "error");
    } else if (e.contains("keepalive")) {
        out.t = process_event::type::keepalive;
    }
    return out;
}

process_stream::process_stream(output on_stdout, output on_stderr)
    : on_stdout_(std::move(on_stdout)), on_stderr_(std::move(on_stderr)) {}

void process_stream::feed(std::string_view bytes) {
    if (!error_.empty()) return;
    decoder_.feed(bytes);
    while (error_.empty()) {
        auto frame = decoder_.next();
        if (!frame) break;
        handle(*frame);
    }
    if (decoder_.failed() && error_.empty()) error_ = "bad Connect envelope: " + decoder_.error();
}

void process_stream::handle(const envelope& frame) {
    if (finished()) return;  // nothing may follow the end-stream message
    if (frame.end_stream()) {
        std::string why;
        auto end = parse_end_stream(frame.payload, &why);
        if (!end)
            error_ = "bad end-stream message: " + why;
        else
            end_stream_ = std::move(*end);
        return;
    }
    auto message = parse_json(frame.payload);
    if (!message) {
        error_ = "a stream message is not JSON";
        return;
    }
    std::string why;
    auto event = parse_process_event(*message, why);
    if (!event) {
        error_ = why;
        return;
    }
    switch (event->t) {
    case process_event::type::start: pid_ = event->pid; break;
    case process_event::type::data:
        if (!event->stdout_bytes.empty() && on_stdout_) on_stdout_(event->stdout_bytes);
        if (!event->stderr_bytes.empty() && on_stderr_) on_stderr_(event->stderr_bytes);
        break;
    case process_event::type::end:
        end_ = std::move(event->end);
        end_->pid = pid();
        break;
    default: break;  // keepalive, or an event kind this client does not know
    }
}

std::optional<connect_error> process_stream::end_stream_error() const {
    if (!end_stream_) return std::nullopt;
    return end_stream_->error;
}

api_result<run_result> process_stream::outcome(std::string_view context) const {
    using result_t = api_result<run_result>;
    if (!error_.empty()) return result_t::failure(make_protocol_error(context, "protocol error: " + error_));
    if (!end_stream_)
        return result_t::failure(make_protocol_error(
            context, decoder_.idle() ? "the stream ended without an EndStreamResponse"
                                     : "the stream ended in the middle of a message"));
    if (auto e = end_stream_to_error(*end_stream_, context)) return result_t::failure(std::move(*e));
    if (!end_) return result_t::failure(make_protocol_error(context, "the process exited without a result (no end event)"));
    return result_t::success(*end_);
}

// ---- the client -------------------------------------------------------------------------

struct api::run_attempt {
    std::optional<run_result> result;
    std::optional<api_error> error;
    bool started = false;    // the `start` event arrived: the command ran
    std::uint32_t pid = 0;
    bool retryable = false;  // nothing can have run and the failure is transient
    bool may_still_run = false;  // started, and the stream ended without envd's word on the process
    std::optional<milliseconds> retry_after;
};

api::api(asio::any_io_executor ex, api_settings settings, sleeper sleep)
    : settings_(std::move(settings)), sleep_(std::move(sleep)) {
    if (auto why = validate_settings(settings_); !why.empty()) throw std::invalid_argument(why);
    std::string why;
    api_origin_ = *http::parse_origin(api_base_url(settings_), why);
    if (!settings_.sandbox_url.empty()) sandbox_override_ = http::parse_origin(settings_.sandbox_url, why);
    user_agent_ = settings_.user_agent.empty() ? std::string("genesis-launch/" GENESIS_LAUNCH_VERSION)
                                               : settings_.user_agent;
    http_ = std::make_unique<http::client>(std::move(ex), settings_.tls, settings_.timeouts);
    if (!http_->tls_error().empty()) throw std::invalid_argument(http_->tls_error());
    http_->set_pool_limits(settings_.max_idle_per_origin, http::client::default_idle_lifetime);
}

api::~api() { close(); }

void api::close() {
    ++generation_;
    for (auto* timer : sleeping_) timer->cancel();
    http_->close_all();
}

void api::forget(const sandbox_handle& sb) {
    if (sandbox_override_) return;
    const std::string domain = sb.domain.empty() ? settings_.domain : sb.domain;
    if (is_shared_sandbox_domain(domain)) return;
    std::string why;
    if (auto o = envd_origin(sb, why)) http_->close_idle(*o);
}

std::size_t api::idle_envd_connections(const sandbox_handle& sb) const {
    std::string why;
    auto o = envd_origin(sb, why);
    return o ? http_->idle_connections(*o) : 0;
}

std::vector<std::pair<std::string, std::string>> api::control_headers(bool json_body) const {
    std::vector<std::pair<std::string, std::string>> h;
    h.emplace_back("X-API-Key", settings_.api_key);
    h.emplace_back("User-Agent", user_agent_);
    h.emplace_back("Accept", "application/json");
    if (json_body) h.emplace_back("Content-Type", "application/json");
    return h;
}

std::vector<std::pair<std::string, std::string>> api::envd_headers(const sandbox_handle& sb) const {
    std::vector<std::pair<std::string, std::string>> h;
    h.emplace_back("E2b-Sandbox-Id", sb.id);
    h.emplace_back("E2b-Sandbox-Port", std::string(envd_port));
    if (!sb.envd_access_token.empty()) h.emplace_back("X-Access-Token", sb.envd_access_token);
    h.emplace_back("User-Agent", user_agent_);
    return h;
}

std::optional<http::origin> api::envd_origin(const sandbox_handle& sb, std::string& why) const {
    if (sandbox_override_) return sandbox_override_;
    return http::parse_origin(envd_base_url(settings_, sb.id, sb.domain), why);
}

asio::awaitable<void> api::sleep_for(milliseconds d) {
    try {
        if (sleep_) {
            co_await sleep_(d);
            co_return;
        }
        asio::steady_timer timer(http_->get_executor(), d);
        set_entry<std::set<asio::steady_timer*>, asio::steady_timer> registered(sleeping_, &timer);
        co_await timer.async_wait(use_tuple);
    } catch (const boost::system::system_error&) {
        // The coroutine was cancelled before the wait began; the caller checks.
    }
}

asio::awaitable<bool> api::cancelled(std::uint64_t generation_at_start) const {
    if (generation_at_start != generation_) co_return true;
    co_return co_await coroutine_cancelled();
}

asio::awaitable<api_result<http::response>> api::perform(http::origin o, http::request req, plane p,
                                                         std::string context, call_policy policy) {
    using result_t = api_result<http::response>;
    const auto generation = generation_;
    retry_state retries(settings_.retry);
    req.idempotent = policy.idempotent;
    for (;;) {
        http::request attempt_request = req;
        http::result r = co_await http_->send(o, std::move(attempt_request));
        if (r.kind == http::failure::cancelled || co_await cancelled(generation))
            co_return result_t::failure(cancelled_error(context));

        api_error error;
        std::optional<milliseconds> retry_after;
        bool retryable = false;
        if (!r.ok()) {
            error = transport_error(r, context);
            retryable = policy.retry && retryable_transport(r.kind) && (policy.idempotent || !r.sent);
            if (policy.create && r.sent && !retryable && error.k != api_error::kind::protocol) {
                error.k = api_error::kind::maybe_created;
                error.message = context + ": the request may have reached E2B but no answer came back (" + r.what + ")";
            }
        } else if (is_transient_status(r.res.status)) {
            const unsigned status = r.res.status;
            error = classify_http_error(p, status, r.res.body, context);
            // 429/503 are refusals: nothing was done, so even a create may be repeated.
            const bool refused = status == 429 || status == 503;
            retryable = policy.retry && error.k != api_error::kind::sandbox_gone && (policy.idempotent || refused);
            if (refused) retry_after = parse_retry_after(r.res.header("Retry-After"));
            if (!retryable && policy.create && (status == 502 || status == 504)) {
                error.k = api_error::kind::maybe_created;
                error.message = context + ": a gateway answered HTTP " + std::to_string(status) +
                                "; the sandbox may have been created";
            }
        } else {
            co_return result_t::success(std::move(r.res));
        }

        if (retryable) {
            if (auto delay = retries.next_delay(retry_after)) {
                co_await sleep_for(*delay);
                if (co_await cancelled(generation)) co_return result_t::failure(cancelled_error(context));
                continue;
            }
            error.message += " (gave up after " + std::to_string(retries.attempts()) + " attempts)";
        }
        co_return result_t::failure(std::move(error));
    }
}

asio::awaitable<api_result<http::response>> api::control_call(bhttp::verb method, std::string target, std::string body,
                                                              std::string context, call_policy policy) {
    http::request req;
    req.method = method;
    req.target = std::move(target);
    req.headers = control_headers(!body.empty());
    req.body = std::move(body);
    co_return co_await perform(api_origin_, std::move(req), plane::control, std::move(context), policy);
}

asio::awaitable<api_result<http::response>> api::envd_call(const sandbox_handle& sb, http::request req,
                                                           std::string context, call_policy policy) {
    std::string why;
    auto o = envd_origin(sb, why);
    if (!o) co_return api_result<http::response>::failure(make_protocol_error(context, why));
    auto headers = envd_headers(sb);
    headers.insert(headers.end(), req.headers.begin(), req.headers.end());
    req.headers = std::move(headers);
    co_return co_await perform(std::move(*o), std::move(req), plane::envd, std::move(context), policy);
}

asio::awaitable<api_result<http::response>> api::rpc_call(const sandbox_handle& sb, std::string method,
                                                          std::string json_body, std::string context,
                                                          call_policy policy) {
    http::request req;
    req.method = bhttp::verb::post;
    req.target = "/" + method;
    req.headers.emplace_back("Content-Type", "application/json");
    req.headers.emplace_back("Connect-Protocol-Version", "1");
    req.body = std::move(json_body);
    co_return co_await envd_call(sb, std::move(req), std::move(context), policy);
}

// ---- control plane ----------------------------------------------------------------------

asio::awaitable<api_result<sandbox_handle>> api::create(std::string template_id, std::chrono::seconds timeout,
                                                        std::map<std::string, std::string> metadata,
                                                        std::map<std::string, std::string> env_vars) {
    using result_t = api_result<sandbox_handle>;
    const std::string context = "create sandbox from template '" + template_id + "'";
    call_policy policy;
    policy.idempotent = false;
    policy.create = true;
    bool legacy = legacy_create_;
    for (;;) {
        std::string body = create_body(template_id, timeout, metadata, env_vars, legacy);
        std::string target = legacy ? "/sandboxes" : "/v2/sandboxes";
        auto res = co_await control_call(bhttp::verb::post, std::move(target), std::move(body), context, policy);
        if (!res) co_return result_t::failure(std::move(*res.error));
        if (!legacy && (res->status == 404 || res->status == 405)) {
            legacy = true;  // an API without POST /v2/sandboxes (§12)
            continue;
        }
        if (!success_status(res->status))
            co_return result_t::failure(classify_http_error(plane::control, res->status, res->body, context));
        if (legacy) legacy_create_ = true;
        co_return parse_sandbox(res->body, context);
    }
}

asio::awaitable<api_result<bool>> api::kill(std::string sandbox_id) {
    using result_t = api_result<bool>;
    const std::string context = "kill sandbox " + sandbox_id;
    call_policy policy;
    std::string target = "/sandboxes/" + encode_component(sandbox_id);
    auto res = co_await control_call(bhttp::verb::delete_, std::move(target), std::string(), context, policy);
    if (!res) co_return result_t::failure(std::move(*res.error));
    if (success_status(res->status)) co_return result_t::success(true);
    if (res->status == 404 && body_code(res->body) == 404) co_return result_t::success(false);
    co_return result_t::failure(classify_http_error(plane::control, res->status, res->body, context));
}

asio::awaitable<api_status> api::set_timeout(std::string sandbox_id, std::chrono::seconds timeout) {
    const std::string context = "set the timeout of sandbox " + sandbox_id;
    call_policy policy;
    std::string target = "/sandboxes/" + encode_component(sandbox_id) + "/timeout";
    auto res = co_await control_call(bhttp::verb::post, std::move(target), timeout_body(timeout), context, policy);
    if (!res) co_return api_status::failure(std::move(*res.error));
    if (success_status(res->status)) co_return api_status::success(std::monostate());
    co_return api_status::failure(classify_http_error(plane::control, res->status, res->body, context));
}

asio::awaitable<api_result<std::vector<sandbox_summary>>> api::list(std::map<std::string, std::string> metadata) {
    using result_t = api_result<std::vector<sandbox_summary>>;
    const std::string context = "list sandboxes";
    call_policy policy;
    std::vector<sandbox_summary> all;
    std::set<std::string> seen_tokens;
    std::string token;
    bool legacy = legacy_list_;
    for (int page = 0; page < max_list_pages; ++page) {
        std::string target = legacy ? "/sandboxes?" : "/v2/sandboxes?limit=100&";
        if (!metadata.empty()) target += metadata_query_parameter(metadata) + "&";
        if (!legacy && !token.empty()) target += "nextToken=" + encode_component(token) + "&";
        target.pop_back();  // the last '?' or '&'
        auto res = co_await control_call(bhttp::verb::get, std::move(target), std::string(), context, policy);
        if (!res) co_return result_t::failure(std::move(*res.error));
        if (!legacy && res->status == 404 && all.empty() && token.empty()) {
            legacy = legacy_list_ = true;  // an API without GET /v2/sandboxes
            continue;
        }
        if (res->status != 200)
            co_return result_t::failure(classify_http_error(plane::control, res->status, res->body, context));
        if (auto why = append_summaries(res->body, all)) co_return result_t::failure(make_protocol_error(context, *why));
        if (legacy) break;
        token = res->header("X-Next-Token");
        if (token.empty() || !seen_tokens.insert(token).second) break;
    }
    co_return result_t::success(std::move(all));
}

// ---- envd ------------------------------------------------------------------------------

asio::awaitable<api_status> api::upload(sandbox_handle sb, std::string sandbox_path, std::string bytes) {
    const std::string context = "upload " + sandbox_path + " to sandbox " + sb.id;
    call_policy policy;  // overwriting a file is idempotent
    bool multipart = multipart_upload_;
    for (;;) {
        http::request req;
        req.method = bhttp::verb::post;
        req.target = "/files?path=" + encode_component(sandbox_path);
        if (multipart) {
            std::vector<const std::string*> contents{&bytes};
            const std::string boundary = unique_boundary(contents);
            req.headers.emplace_back("Content-Type", "multipart/form-data; boundary=" + boundary);
            req.body = multipart_body(sandbox_path, bytes, boundary);
        } else {
            req.headers.emplace_back("Content-Type", "application/octet-stream");
            req.body = bytes;
        }
        auto res = co_await envd_call(sb, std::move(req), context, policy);
        if (!res) co_return api_status::failure(std::move(*res.error));
        if (!multipart && refuses_octet_stream(*res)) {
            multipart = true;  // envd < 0.5.7
            continue;
        }
        if (!success_status(res->status))
            co_return api_status::failure(classify_http_error(plane::envd, res->status, res->body, context));
        if (multipart) multipart_upload_ = true;
        co_return api_status::success(std::monostate());
    }
}

asio::awaitable<api_status> api::upload_files(sandbox_handle sb, std::vector<upload_file> files) {
    const std::string context = "upload of " + std::to_string(files.size()) + " files to sandbox " + sb.id;
    if (files.empty()) co_return api_status::success(std::monostate());
    if (files.size() == 1) co_return co_await upload(std::move(sb), std::move(files[0].path), std::move(files[0].bytes));
    call_policy policy;  // overwriting files is idempotent
    std::vector<const std::string*> contents;
    std::size_t size = 0;
    for (const auto& f : files) {
        contents.push_back(&f.bytes);
        size += f.bytes.size() + f.path.size() + 256;
    }
    const std::string boundary = unique_boundary(contents);
    http::request req;
    req.method = bhttp::verb::post;
    req.target = "/files";
    req.headers.emplace_back("Content-Type", "multipart/form-data; boundary=" + boundary);
    req.body.reserve(size);
    for (const auto& f : files) append_part(req.body, boundary, f.path, f.bytes);
    req.body += "--" + boundary + "--\r\n";
    auto res = co_await envd_call(sb, std::move(req), context, policy);
    if (!res) co_return api_status::failure(std::move(*res.error));
    if (!success_status(res->status))
        co_return api_status::failure(classify_http_error(plane::envd, res->status, res->body, context));
    co_return api_status::success(std::monostate());
}

asio::awaitable<api_result<std::string>> api::download(sandbox_handle sb, std::string sandbox_path) {
    using result_t = api_result<std::string>;
    const std::string context = "download " + sandbox_path + " from sandbox " + sb.id;
    call_policy policy;
    http::request req;
    req.method = bhttp::verb::get;
    req.target = "/files?path=" + encode_component(sandbox_path);
    req.headers.emplace_back("Accept-Encoding", "identity");
    auto res = co_await envd_call(sb, std::move(req), context, policy);
    if (!res) co_return result_t::failure(std::move(*res.error));
    if (res->status != 200)
        co_return result_t::failure(classify_http_error(plane::envd, res->status, res->body, context));
    const auto encoding = res->header("Content-Encoding");
    if (!encoding.empty() && encoding != "identity")
        co_return result_t::failure(make_protocol_error(context, "the file came back encoded as '" + encoding + "'"));
    co_return result_t::success(std::move(res->body));
}

asio::awaitable<api_result<std::vector<dir_entry>>> api::list_dir(sandbox_handle sb, std::string path,
                                                                  std::uint32_t depth) {
    using result_t = api_result<std::vector<dir_entry>>;
    const std::string context = "list " + path + " in sandbox " + sb.id;
    call_policy policy;
    auto res = co_await rpc_call(sb, "filesystem.Filesystem/ListDir", list_dir_body(path, depth), context, policy);
    if (!res) co_return result_t::failure(std::move(*res.error));
    if (res->status != 200)
        co_return result_t::failure(classify_http_error(plane::envd, res->status, res->body, context));
    co_return parse_entries(res->body, context);
}

asio::awaitable<api_status> api::make_dir(sandbox_handle sb, std::string path) {
    const std::string context = "create directory " + path + " in sandbox " + sb.id;
    call_policy policy;
    auto res = co_await rpc_call(sb, "filesystem.Filesystem/MakeDir", path_body(path), context, policy);
    if (!res) co_return api_status::failure(std::move(*res.error));
    if (res->status == 200) co_return api_status::success(std::monostate());
    auto connect = parse_error_body(res->body);
    if (connect && connect->code == "already_exists") co_return api_status::success(std::monostate());
    co_return api_status::failure(classify_http_error(plane::envd, res->status, res->body, context));
}

asio::awaitable<api_result<bool>> api::send_signal(sandbox_handle sb, std::uint32_t pid, signal_kind sig) {
    using result_t = api_result<bool>;
    const std::string context = "signal process " + std::to_string(pid) + " in sandbox " + sb.id;
    call_policy policy;
    auto res = co_await rpc_call(sb, "process.Process/SendSignal", signal_body(pid, sig), context, policy);
    if (!res) co_return result_t::failure(std::move(*res.error));
    if (res->status == 200) co_return result_t::success(true);
    auto error = classify_http_error(plane::envd, res->status, res->body, context);
    if (error.k == api_error::kind::not_found) co_return result_t::success(false);
    co_return result_t::failure(std::move(error));
}

asio::awaitable<api_result<bool>> api::health(sandbox_handle sb) {
    using result_t = api_result<bool>;
    const std::string context = "check the health of sandbox " + sb.id;
    call_policy policy;
    policy.retry = false;
    http::request req;
    req.method = bhttp::verb::get;
    req.target = "/health";
    auto res = co_await envd_call(sb, std::move(req), context, policy);
    // The proxy's 502 (not found, or envd not listening) means "not running".
    if (!res && res.error->status == 502) co_return result_t::success(false);
    if (!res) co_return result_t::failure(std::move(*res.error));
    if (success_status(res->status)) co_return result_t::success(true);
    co_return result_t::failure(classify_http_error(plane::envd, res->status, res->body, context));
}

asio::awaitable<api_error> api::explain_broken_stream(const sandbox_handle& sb, api_error error) {
    // A stream that broke is a network blip or a dead sandbox: ask envd (§6.4).
    auto alive = co_await health(sb);
    if (alive && !*alive) {
        error.k = api_error::kind::sandbox_gone;
        error.message += " (the sandbox is gone: killed or expired while the command was running)";
    }
    co_return error;
}

asio::awaitable<api::run_attempt> api::run_once(sandbox_handle sb, http::request req, std::string context,
                                                std::optional<milliseconds> local_deadline,
                                                const std::function<void(std::string_view)>& on_stdout,
                                                const std::function<void(std::string_view)>& on_stderr) {
    using namespace asio::experimental::awaitable_operators;
    run_attempt out;
    std::string why;
    auto o = envd_origin(sb, why);
    if (!o) {
        out.error = make_protocol_error(context, why);
        co_return out;
    }
    auto reader = std::make_shared<process_stream>(on_stdout, on_stderr);
    std::function<void(std::string_view)> sink = [reader](std::string_view bytes) { reader->feed(bytes); };

    http::result r;
    bool deadline_passed = false;
    if (local_deadline) {
        try {
            asio::steady_timer timer(http_->get_executor(), *local_deadline);
            auto streaming = http_->stream(std::move(*o), std::move(req), std::move(sink));
            auto winner = co_await (std::move(streaming) || timer.async_wait(asio::use_awaitable));
            if (winner.index() == 0)
                r = std::move(std::get<0>(winner));
            else
                deadline_passed = true;
        } catch (const boost::system::system_error&) {
            r.kind = http::failure::cancelled;
            r.ec = asio::error::operation_aborted;
        }
    } else {
        r = co_await http_->stream(std::move(*o), std::move(req), std::move(sink));
    }
    out.started = reader->started();
    out.pid = reader->pid();

    if (deadline_passed) {
        out.may_still_run = out.started;
        out.error = make_error(api_error::kind::timeout, 504,
                               context + ": no result within " + std::to_string(local_deadline->count()) +
                                   " ms (the command's time limit plus a margin)");
        co_return out;
    }
    if (!r.ok()) {
        out.error = transport_error(r, context);
        if (r.kind == http::failure::cancelled) co_return out;
        if (out.started) {
            out.error = co_await explain_broken_stream(sb, std::move(*out.error));
            out.may_still_run = out.error->k != api_error::kind::sandbox_gone;
        } else
            out.retryable = !r.sent && retryable_transport(r.kind);
        co_return out;
    }
    if (r.res.status != 200) {
        // Not a stream: the proxy or envd refused before anything ran.
        out.error = classify_http_error(plane::envd, r.res.status, r.res.body, context);
        out.retryable = out.error->transient() && out.error->k != api_error::kind::sandbox_gone;
        if (r.res.status == 429 || r.res.status == 503) out.retry_after = parse_retry_after(r.res.header("Retry-After"));
        co_return out;
    }
    auto outcome = reader->outcome(context);
    if (outcome) {
        out.result = std::move(*outcome.value);
        co_return out;
    }
    out.error = std::move(*outcome.error);
    if (auto ce = reader->end_stream_error()) {
        const bool refused = ce->code == "unavailable" || ce->code == "resource_exhausted";
        out.retryable = !out.started && refused;
        if (ce->code == "unavailable" || ce->code == "unknown")
            out.error = co_await explain_broken_stream(sb, std::move(*out.error));
    }
    co_return out;
}

asio::awaitable<api_result<run_result>> api::run(sandbox_handle sb, std::string command_line, std::string cwd,
                                                 std::map<std::string, std::string> envs,
                                                 std::optional<milliseconds> timeout,
                                                 std::function<void(std::string_view)> on_stdout,
                                                 std::function<void(std::string_view)> on_stderr) {
    using result_t = api_result<run_result>;
    const std::string context = "run a command in sandbox " + sb.id;
    const auto generation = generation_;

    http::request req;
    req.method = bhttp::verb::post;
    req.target = "/process.Process/Start";
    req.headers.emplace_back("Content-Type", "application/connect+json");
    req.headers.emplace_back("Connect-Protocol-Version", "1");
    req.headers.emplace_back("Keepalive-Ping-Interval", "50");
    std::optional<milliseconds> local_deadline;
    if (timeout && timeout->count() > 0) {
        req.headers.emplace_back("Connect-Timeout-Ms", std::to_string(timeout->count()));
        local_deadline = *timeout + local_margin(*timeout);
    }
    req.body = encode_envelope(start_request_body(command_line, cwd, envs));
    auto headers = envd_headers(sb);
    headers.insert(headers.end(), req.headers.begin(), req.headers.end());
    req.headers = std::move(headers);

    retry_state retries(settings_.retry);
    for (;;) {
        http::request attempt_request = req;
        run_attempt a = co_await run_once(sb, std::move(attempt_request), context, local_deadline, on_stdout, on_stderr);
        if (a.result) co_return result_t::success(std::move(*a.result));
        if (a.error->k == api_error::kind::cancelled || co_await cancelled(generation))
            co_return result_t::failure(cancelled_error(context));
        if (a.retryable && !a.started) {
            if (auto delay = retries.next_delay(a.retry_after)) {
                co_await sleep_for(*delay);
                if (co_await cancelled(generation)) co_return result_t::failure(cancelled_error(context));
                continue;
            }
        }
        // The command may still be running (a local deadline, a cut stream): stop it.
        if (a.may_still_run && a.pid != 0) (void)co_await send_signal(sb, a.pid, signal_kind::sigkill);
        co_return result_t::failure(std::move(*a.error));
    }
}

}  // namespace genesis::launch::detail::e2b
