#include "control_plane.hpp"

#include "connect_wire.hpp"
#include "faults.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <variant>

namespace genesis::e2b_emulator {

namespace json = boost::json;
namespace urls = boost::urls;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view client_id = "6532622b";  // deprecated constant field of `Sandbox`
constexpr std::string_view invalid_key_message =
    "Invalid API key, please visit https://e2b.dev/docs/api-key for more information.";
constexpr int default_timeout_v2 = 300;
constexpr int default_timeout_legacy = 15;
constexpr int default_connect_timeout = 300;
constexpr std::size_t max_list_limit = 100;

// ---- routing ---------------------------------------------------------------

struct route {
    std::string endpoint;  // "" = unknown
    std::string id;        // {sandboxID} when the path has one
    bool v2 = false;
    bool wrong_method = false;  // a known path with another method
};

std::string_view path_of(const request& req) {
    std::string_view target = req.target();
    return target.substr(0, target.find('?'));
}

std::vector<std::string_view> segments_of(std::string_view path) {
    std::vector<std::string_view> out;
    while (!path.empty()) {
        if (path.front() == '/') {
            path.remove_prefix(1);
            continue;
        }
        auto end = path.find('/');
        out.push_back(path.substr(0, end));
        if (end == std::string_view::npos) break;
        path.remove_prefix(end);
    }
    return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    for (;;) {
        auto at = s.find(sep);
        parts.push_back(s.substr(0, at));
        if (at == std::string_view::npos) return parts;
        s.remove_prefix(at + 1);
    }
}

route match_route(const request& req) {
    auto segs = segments_of(path_of(req));
    route r;
    auto method = req.method();
    auto pick = [&](http::verb want, std::string_view endpoint) {
        if (method == want)
            r.endpoint = endpoint;
        else if (r.endpoint.empty())
            r.wrong_method = true;
    };
    if (!segs.empty() && segs[0] == "v2") {
        r.v2 = true;
        segs.erase(segs.begin());
    }
    if (segs.empty() || segs[0] != "sandboxes") {
        if (!r.v2 && segs.size() == 1 && segs[0] == "health") pick(http::verb::get, "health");
        return r;
    }
    if (segs.size() >= 2) r.id = std::string(segs[1]);
    if (segs.size() == 1) {
        pick(http::verb::post, "create");
        pick(http::verb::get, "list");
    } else if (segs.size() == 2 && !r.v2) {
        pick(http::verb::get, "get");
        pick(http::verb::delete_, "kill");
    } else if (segs.size() == 3 && segs[2] == "connect") {
        pick(http::verb::post, "connect");
    } else if (segs.size() == 3 && segs[2] == "timeout" && !r.v2) {
        pick(http::verb::post, "set_timeout");
    }
    if (!r.endpoint.empty()) r.wrong_method = false;
    return r;
}

// ---- small helpers ---------------------------------------------------------

response no_content(const request& req) { return make_response(req, http::status::no_content, "", ""); }

response json_response(const request& req, http::status status, const json::value& body) {
    return make_response(req, status, json::serialize(body));
}

response not_found_sandbox(const request& req, const std::string& id) {
    return error_response(req, 404, "Sandbox \"" + id + "\" doesn't exist or you don't have access to it");
}

std::string rfc3339(sys_clock::time_point t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
    return out;
}

json::object string_map_json(const std::map<std::string, std::string>& m) {
    json::object o;
    for (const auto& [k, v] : m) o[k] = v;
    return o;
}

// X-API-Key: "e2b_" + hex digits, equal to the emulator's key. The 401 or nothing.
std::optional<response> check_api_key(const emulator_state& st, const request& req) {
    auto it = req.find("X-API-Key");
    if (it == req.end() || it->value().empty()) return error_response(req, 401, invalid_key_message);
    std::string_view key = it->value();
    bool well_formed = key.starts_with("e2b_") && key.size() > 4 && std::all_of(key.begin() + 4, key.end(), [](char c) {
                           return std::isxdigit(static_cast<unsigned char>(c));
                       });
    if (!well_formed) return error_response(req, 401, std::string(invalid_key_message) + "\nInvalid API key format");
    if (key != st.options.api_key)
        return error_response(req, 401, std::string(invalid_key_message) + "\nInvalid API key");
    return std::nullopt;
}

// The request body as a JSON object; an empty body gives `{}` when `optional`.
// On failure, the 400 answer.
std::variant<json::object, response> body_object(const request& req, bool optional) {
    if (req.body().empty() && optional) return json::object{};
    boost::system::error_code ec;
    auto v = json::parse(req.body(), ec);
    if (ec) return error_response(req, 400, "Error when parsing request: " + ec.message());
    if (!v.is_object()) return error_response(req, 400, "Error when parsing request: the body must be a JSON object");
    return std::move(v.as_object());
}

// Field readers: nullopt when absent; an error message (the 400 text) when mistyped.
struct field_error {
    std::string message;
};

std::optional<std::int64_t> int_field(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    if (it == o.end() || it->value().is_null()) return std::nullopt;
    const auto& v = it->value();
    if (v.is_int64()) return v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
        return static_cast<std::int64_t>(v.as_uint64());
    if (v.is_double() && std::trunc(v.as_double()) == v.as_double() && std::abs(v.as_double()) < 1e15)
        return static_cast<std::int64_t>(v.as_double());
    throw field_error{"validation error: property \"" + std::string(key) + "\" must be an integer"};
}

std::optional<bool> bool_field(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    if (it == o.end() || it->value().is_null()) return std::nullopt;
    if (!it->value().is_bool())
        throw field_error{"validation error: property \"" + std::string(key) + "\" must be a boolean"};
    return it->value().as_bool();
}

std::map<std::string, std::string> string_map_field(const json::object& o, std::string_view key) {
    std::map<std::string, std::string> out;
    auto it = o.find(key);
    if (it == o.end() || it->value().is_null()) return out;
    if (!it->value().is_object())
        throw field_error{"validation error: property \"" + std::string(key) + "\" must be an object of strings"};
    for (const auto& [k, v] : it->value().as_object()) {
        if (!v.is_string())
            throw field_error{"validation error: property \"" + std::string(key) + "." + std::string(k) +
                              "\" must be a string"};
        out[std::string(k)] = std::string(v.as_string());
    }
    return out;
}

std::string max_timeout_text(int seconds) {
    if (seconds % 3600 == 0) return std::to_string(seconds / 3600) + " hours";
    return std::to_string(seconds) + " seconds";
}

// ---- templates -----------------------------------------------------------

bool valid_template_reference(std::string_view ref) {
    if (ref.empty()) return false;
    return std::all_of(ref.begin(), ref.end(), [](char c) {
        return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
               std::string_view("-_./:").find(c) != std::string_view::npos;
    });
}

// "name", "name:tag" or "namespace/name[:tag]" -> the template, or null.
const template_spec* resolve_template(const emulator_state& st, std::string_view ref) {
    auto find = [&](std::string_view name) -> const template_spec* {
        auto it = st.options.templates.find(std::string(name));
        return it == st.options.templates.end() ? nullptr : &it->second;
    };
    if (auto* t = find(ref)) return t;
    if (auto colon = ref.rfind(':'); colon != std::string_view::npos) ref = ref.substr(0, colon);
    if (auto* t = find(ref)) return t;
    if (auto slash = ref.rfind('/'); slash != std::string_view::npos) return find(ref.substr(slash + 1));
    return nullptr;
}

// ---- JSON views of a sandbox ----------------------------------------------

json::object sandbox_json(const emulator_state& st, const sandbox& sb) {
    json::object o{{"sandboxID", sb.id},
                   {"templateID", sb.template_id},
                   {"alias", sb.alias},
                   {"clientID", client_id},
                   {"envdVersion", st.options.envd_version}};
    if (!sb.access_token.empty()) o["envdAccessToken"] = sb.access_token;
    o["domain"] = nullptr;
    return o;
}

json::object listed_json(const emulator_state& st, const sandbox& sb) {
    return json::object{{"sandboxID", sb.id},
                        {"templateID", sb.template_id},
                        {"alias", sb.alias},
                        {"clientID", client_id},
                        {"startedAt", rfc3339(sb.started_at)},
                        {"endAt", rfc3339(sb.end_at)},
                        {"state", "running"},
                        {"cpuCount", sb.tmpl.cpu_count},
                        {"memoryMB", sb.tmpl.memory_mb},
                        {"diskSizeMB", sb.tmpl.disk_size_mb},
                        {"envdVersion", st.options.envd_version},
                        {"metadata", string_map_json(sb.metadata)}};
}

json::object detail_json(const emulator_state& st, const sandbox& sb) {
    auto o = listed_json(st, sb);
    if (!sb.access_token.empty()) o["envdAccessToken"] = sb.access_token;
    o["domain"] = nullptr;
    o["allowInternetAccess"] = sb.internet;
    return o;
}

// ---- rate limit ------------------------------------------------------------

// Token bucket for sandbox creation. nullopt = allowed; else the seconds to wait.
std::optional<int> take_create_token(emulator_state& st) {
    double rate = st.options.create_rate_per_second;
    if (rate <= 0) return std::nullopt;
    double burst = std::max(1.0, rate);
    auto now = std::chrono::steady_clock::now();
    if (st.create_tokens_at == std::chrono::steady_clock::time_point{}) {
        st.create_tokens = burst;
    } else {
        std::chrono::duration<double> elapsed = now - st.create_tokens_at;
        st.create_tokens = std::min(burst, st.create_tokens + elapsed.count() * rate);
    }
    st.create_tokens_at = now;
    if (st.create_tokens >= 1.0) {
        st.create_tokens -= 1.0;
        return std::nullopt;
    }
    return std::max(1, static_cast<int>(std::ceil((1.0 - st.create_tokens) / rate)));
}

// ---- handlers --------------------------------------------------------------

response create(emulator_state& st, const request& req, bool v2) {
    if (auto wait = take_create_token(st)) {
        auto res = error_response(req, 429, "Rate limit exceeded");
        res.set(http::field::retry_after, std::to_string(*wait));
        return res;
    }
    auto parsed = body_object(req, false);
    if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
    const auto& body = std::get<json::object>(parsed);

    auto tid = body.find("templateID");
    if (tid == body.end() || !tid->value().is_string())
        return error_response(req, 400, "validation error: property \"templateID\" is missing");
    std::string ref(tid->value().as_string());
    if (!valid_template_reference(ref)) return error_response(req, 400, "Invalid template reference: " + ref);

    auto timeout = int_field(body, "timeout").value_or(v2 ? default_timeout_v2 : default_timeout_legacy);
    if (timeout <= 0) return error_response(req, 400, "Timeout must be greater than 0");
    if (timeout > st.options.max_timeout_seconds)
        return error_response(req, 400,
                              "Timeout cannot be greater than " + max_timeout_text(st.options.max_timeout_seconds));
    auto metadata = string_map_field(body, "metadata");
    auto env_vars = string_map_field(body, "envVars");
    auto internet = bool_field(body, "allow_internet_access");
    bool secure = v2 || bool_field(body, "secure").value_or(false);

    const template_spec* tmpl = resolve_template(st, ref);
    if (!tmpl) return error_response(req, 404, "template '" + ref + "' not found");

    int cap = st.options.max_concurrent_sandboxes;
    if (cap > 0 && st.sandboxes.size() >= static_cast<std::size_t>(cap))
        return error_response(req, 429,
                              "you have reached the maximum number of concurrent E2B sandboxes (" +
                                  std::to_string(cap) +
                                  "). If you need more, please visit 'https://e2b.dev/docs/billing'");

    std::shared_ptr<sandbox> sb;
    try {
        sb = st.sandboxes.create(*tmpl, std::chrono::seconds(timeout), std::move(metadata), std::move(env_vars),
                                 internet.value_or(tmpl->internet));
    } catch (const std::exception& e) {
        return error_response(req, 500, std::string("Failed to create sandbox: ") + e.what());
    }
    if (!secure) sb->access_token.clear();  // legacy, non-secure: envd without a token
    return json_response(req, http::status::created, sandbox_json(st, *sb));
}

response kill(emulator_state& st, const request& req, const std::string& id) {
    if (!st.sandboxes.destroy(id, sandbox_registry::end_reason::killed)) return not_found_sandbox(req, id);
    return no_content(req);
}

response set_timeout(emulator_state& st, const request& req, const std::string& id) {
    auto parsed = body_object(req, false);
    if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
    auto timeout = int_field(std::get<json::object>(parsed), "timeout");
    if (!timeout) return error_response(req, 400, "validation error: property \"timeout\" is missing");
    // Negative means now; above the maximum is clamped silently (docs/e2b-wire.md, "Re-time").
    auto seconds = std::clamp<std::int64_t>(*timeout, 0, st.options.max_timeout_seconds);
    if (!st.sandboxes.set_timeout(id, std::chrono::seconds(seconds))) return not_found_sandbox(req, id);
    return no_content(req);
}

response get(emulator_state& st, const request& req, const std::string& id) {
    auto sb = st.sandboxes.find(id);
    if (!sb) return not_found_sandbox(req, id);
    return json_response(req, http::status::ok, detail_json(st, *sb));
}

response connect(emulator_state& st, const request& req, const std::string& id) {
    auto parsed = body_object(req, true);
    if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
    auto timeout = int_field(std::get<json::object>(parsed), "timeout").value_or(default_connect_timeout);
    if (timeout <= 0) return error_response(req, 400, "Timeout must be greater than 0");
    auto sb = st.sandboxes.find(id);
    if (!sb) return not_found_sandbox(req, id);
    auto seconds = std::min<std::int64_t>(timeout, st.options.max_timeout_seconds);
    if (sys_clock::now() + std::chrono::seconds(seconds) > sb->end_at)  // only ever extends
        st.sandboxes.set_timeout(id, std::chrono::seconds(seconds));
    return json_response(req, http::status::ok, sandbox_json(st, *sb));
}

// Query parameters of a list request, raw (still percent-encoded) values.
struct list_query {
    std::optional<std::string> metadata;
    std::optional<std::string> state;
    std::optional<std::string> limit;
    std::optional<std::string> next_token;
    std::optional<std::string> order;
    std::optional<std::string> template_id;
};

list_query parse_list_query(const request& req) {
    list_query q;
    auto url = urls::parse_origin_form(req.target());
    if (!url) return q;
    for (auto param : url->encoded_params()) {
        auto key = param.key.decode();
        std::string raw(param.value);
        auto decoded = [&] { return std::string(param.value.decode()); };
        if (key == "metadata" && !q.metadata)
            q.metadata = raw;  // decoded by decode_metadata_filter
        else if (key == "state" && !q.state)
            q.state = decoded();
        else if (key == "limit" && !q.limit)
            q.limit = decoded();
        else if (key == "nextToken" && !q.next_token)
            q.next_token = decoded();
        else if (key == "order" && !q.order)
            q.order = decoded();
        else if (key == "template" && !q.template_id)
            q.template_id = decoded();
    }
    return q;
}

bool metadata_matches(const sandbox& sb, const std::map<std::string, std::string>& filter) {
    for (const auto& [k, v] : filter) {
        auto it = sb.metadata.find(k);
        if (it == sb.metadata.end() || it->second != v) return false;
    }
    return true;
}

// Pagination cursor: "<startedAt in ns since the epoch>_<sandboxID>" (opaque to clients).
std::string make_cursor(const sandbox& sb) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(sb.started_at.time_since_epoch()).count();
    return std::to_string(ns) + "_" + sb.id;
}

std::optional<std::pair<sys_clock::time_point, std::string>> parse_cursor(std::string_view token) {
    auto sep = token.find('_');
    if (sep == std::string_view::npos || sep == 0) return std::nullopt;
    long long ns = 0;
    auto [p, ec] = std::from_chars(token.data(), token.data() + sep, ns);
    if (ec != std::errc{} || p != token.data() + sep) return std::nullopt;
    auto t = sys_clock::time_point(std::chrono::duration_cast<sys_clock::duration>(std::chrono::nanoseconds(ns)));
    return std::make_pair(t, std::string(token.substr(sep + 1)));
}

response list(emulator_state& st, const request& req, bool v2) {
    auto q = parse_list_query(req);
    std::map<std::string, std::string> filter;
    if (q.metadata) {
        auto decoded = wire::metadata_filter(*q.metadata);
        if (!decoded) return error_response(req, 400, "Error parsing metadata");
        filter = std::move(*decoded);
    }
    bool include_running = true;
    std::size_t limit = max_list_limit;
    bool ascending = false;
    std::optional<std::pair<sys_clock::time_point, std::string>> cursor;
    if (v2) {
        if (q.state) {
            include_running = false;
            for (auto s : split(*q.state, ',')) {  // form style: state=running,paused
                if (s == "running")
                    include_running = true;
                else if (s != "paused")
                    return error_response(req, 400, "validation error: invalid state \"" + std::string(s) + "\"");
            }
        }
        if (q.limit) {
            unsigned long n = 0;
            auto [p, ec] = std::from_chars(q.limit->data(), q.limit->data() + q.limit->size(), n);
            if (ec != std::errc{} || p != q.limit->data() + q.limit->size() || n < 1 || n > max_list_limit)
                return error_response(req, 400, "validation error: limit must be an integer between 1 and 100");
            limit = n;
        }
        if (q.order && *q.order != "asc" && *q.order != "desc")
            return error_response(req, 400, "validation error: order must be asc or desc");
        ascending = q.order && *q.order == "asc";
        if (q.next_token && !q.next_token->empty()) {
            cursor = parse_cursor(*q.next_token);
            if (!cursor) return error_response(req, 400, "Invalid next token");
        }
    }

    std::vector<std::shared_ptr<sandbox>> matches;
    if (include_running) {
        for (auto& sb : st.sandboxes.list()) {
            if (!metadata_matches(*sb, filter)) continue;
            if (v2 && q.template_id && !q.template_id->empty() && sb->template_id != *q.template_id &&
                sb->alias != *q.template_id)
                continue;
            matches.push_back(sb);
        }
    }
    // Newest first (or oldest first), ties by ID; the cursor continues after its item.
    auto before = [ascending](const sandbox& a, sys_clock::time_point t, const std::string& id) {
        if (a.started_at != t) return ascending ? a.started_at < t : a.started_at > t;
        return a.id < id;
    };
    std::sort(matches.begin(), matches.end(),
              [&](const auto& a, const auto& b) { return before(*a, b->started_at, b->id); });
    if (cursor) {
        auto first = std::find_if(matches.begin(), matches.end(), [&](const auto& sb) {
            return !before(*sb, cursor->first, cursor->second) &&
                   !(sb->started_at == cursor->first && sb->id == cursor->second);
        });
        matches.erase(matches.begin(), first);
    }

    json::array items;
    std::size_t page = v2 ? std::min(limit, matches.size()) : matches.size();
    for (std::size_t i = 0; i < page; ++i) items.push_back(listed_json(st, *matches[i]));
    auto res = json_response(req, http::status::ok, items);
    if (page < matches.size()) res.set("X-Next-Token", make_cursor(*matches[page - 1]));
    if (v2) res.set("X-Total-Running", std::to_string(st.sandboxes.size()));
    return res;
}

response dispatch(emulator_state& st, const route& r, const request& req) {
    if (r.endpoint == "create") return create(st, req, r.v2);
    if (r.endpoint == "list") return list(st, req, r.v2);
    if (r.endpoint == "get") return get(st, req, r.id);
    if (r.endpoint == "kill") return kill(st, req, r.id);
    if (r.endpoint == "set_timeout") return set_timeout(st, req, r.id);
    if (r.endpoint == "connect") return connect(st, req, r.id);
    return error_response(req, 404, "Not found");
}

}  // namespace

std::string control_endpoint_name(const request& req) { return match_route(req).endpoint; }

asio::awaitable<void> handle_control(emulator_state& st, std::string_view endpoint, request& req,
                                     response_writer& out) {
    auto r = match_route(req);
    if (r.endpoint.empty() || r.endpoint != endpoint) {
        if (r.wrong_method)
            co_await out.send(error_response(req, 405, "Method Not Allowed"));
        else
            co_await out.send(error_response(req, 404, "Not found"));
        co_return;
    }
    if (r.endpoint == "health") {
        co_await out.send(make_response(req, http::status::ok, "OK", "text/plain; charset=utf-8"));
        co_return;
    }
    if (auto denied = check_api_key(st, req)) {
        co_await out.send(std::move(*denied));
        co_return;
    }
    response res;
    try {
        res = dispatch(st, r, req);
    } catch (const field_error& e) {
        res = error_response(req, 400, e.message);
    }
    co_await out.send(std::move(res));
}

}  // namespace genesis::e2b_emulator
