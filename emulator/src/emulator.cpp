#include "emulator.hpp"

#include "control_plane.hpp"
#include "envd.hpp"
#include "faults.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace genesis::e2b_emulator {

namespace json = boost::json;
using boost::system::error_code;

namespace {

constexpr std::string_view envd_port = "49983";
constexpr std::array<std::string_view, 7> internal_envd_paths = {"/init",   "/freeze",   "/unfreeze", "/fsfreeze",
                                                                 "/fsthaw", "/collapse", "/upgrade"};

bool is_api_key(std::string_view key) {
    return key.starts_with("e2b_") && key.size() > 4 &&
           std::all_of(key.begin() + 4, key.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string_view path_of(const request& req) {
    std::string_view target = req.target();
    return target.substr(0, target.find('?'));
}

std::string header(const request& req, std::string_view name) {
    auto it = req.find(name);
    return it == req.end() ? std::string() : std::string(it->value());
}

// ---- classification --------------------------------------------------------

// Where an envd request goes: by the E2b-Sandbox-* headers, or by a host name
// "<port>-<sandboxID>.<domain>[:<port>]".
struct envd_target {
    std::string sandbox_id;
    std::string port;
    bool missing_header = false;  // header routing with only one of the two headers
};

std::optional<envd_target> envd_target_by_host(std::string_view host) {
    auto dot = host.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    auto label = host.substr(0, dot);
    auto dash = label.find('-');
    if (dash == std::string_view::npos || dash == 0 || dash + 1 == label.size()) return std::nullopt;
    auto port = label.substr(0, dash);
    auto id = label.substr(dash + 1);
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    auto id_char = [&](char c) { return (c >= 'a' && c <= 'z') || digit(c); };
    if (!std::all_of(port.begin(), port.end(), digit) || !std::all_of(id.begin(), id.end(), id_char))
        return std::nullopt;
    return envd_target{std::string(id), std::string(port)};
}

std::optional<envd_target> envd_target_of(const request& req) {
    bool has_id = req.find("E2b-Sandbox-Id") != req.end();
    bool has_port = req.find("E2b-Sandbox-Port") != req.end();
    if (has_id || has_port)
        return envd_target{header(req, "E2b-Sandbox-Id"), header(req, "E2b-Sandbox-Port"), !(has_id && has_port)};
    return envd_target_by_host(req[http::field::host]);
}

// ---- response writers used by the router ----------------------------------

// Forwards to the real writer and remembers what was answered (for the log).
class tracking_writer final : public response_writer {
public:
    explicit tracking_writer(response_writer& inner) : inner_(inner) {}

    asio::awaitable<void> send(response res) override {
        status_ = res.result_int();
        co_await inner_.send(std::move(res));
    }
    asio::awaitable<bool> begin_stream(http::response_header<> header) override {
        status_ = header.result_int();
        co_return co_await inner_.begin_stream(std::move(header));
    }
    asio::awaitable<bool> write_chunk(std::string_view data) override { co_return co_await inner_.write_chunk(data); }
    asio::awaitable<void> end_stream() override { co_await inner_.end_stream(); }
    void reset_connection() override {
        reset_ = true;
        inner_.reset_connection();
    }
    std::string peer() const override { return inner_.peer(); }

    bool answered() const { return status_ != 0 || reset_; }
    std::string outcome() const { return reset_ ? "reset" : status_ ? std::to_string(status_) : "-"; }

private:
    response_writer& inner_;
    unsigned status_ = 0;
    bool reset_ = false;
};

// Keeps a whole response instead of sending it (lose_response and vanish faults).
class capturing_writer final : public response_writer {
public:
    explicit capturing_writer(std::string peer) : peer_(std::move(peer)) {}

    asio::awaitable<void> send(response res) override {
        captured = std::move(res);
        co_return;
    }
    asio::awaitable<bool> begin_stream(http::response_header<>) override { co_return false; }
    asio::awaitable<bool> write_chunk(std::string_view) override { co_return false; }
    asio::awaitable<void> end_stream() override { co_return; }
    void reset_connection() override {}
    std::string peer() const override { return peer_; }

    std::optional<response> captured;

private:
    std::string peer_;
};

// ---- steps shared by the planes -------------------------------------------

void count_request(emulator_state& st, const std::string& endpoint) {
    ++st.requests.total;
    ++st.requests.by_endpoint[endpoint];
}

asio::awaitable<void> apply_latency(emulator_state& st, const std::string& endpoint) {
    auto delay = st.options.latency;
    if (auto it = st.options.endpoint_latency.find(endpoint); it != st.options.endpoint_latency.end())
        delay += it->second;
    if (delay <= std::chrono::milliseconds::zero()) co_return;
    asio::steady_timer timer(st.ex, delay);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

// A "stall" fault: the request waits `after_ms` before it is handled.
asio::awaitable<void> stall(emulator_state& st, const fault_rule& fault) {
    asio::steady_timer timer(st.ex, std::chrono::milliseconds(fault.after_ms));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

// Destroys the sandbox `after_ms` from now, unless the emulator stops first.
void schedule_vanish(const std::shared_ptr<emulator_state>& st, std::string id, int after_ms) {
    auto timer = std::make_shared<asio::steady_timer>(st->ex, std::chrono::milliseconds(after_ms));
    st->vanish_timers.insert(timer);
    timer->async_wait([st, id = std::move(id), timer](error_code ec) {
        st->vanish_timers.erase(timer);
        if (!ec && st->sandboxes.destroy(id, sandbox_registry::end_reason::vanished)) st->vanished_ids.insert(id);
    });
}

std::string created_sandbox_id(const response& res) {
    if (res.result() != http::status::created) return {};
    error_code ec;
    auto v = json::parse(res.body(), ec);
    if (ec || !v.is_object()) return {};
    auto* id = v.as_object().if_contains("sandboxID");
    return id && id->is_string() ? std::string(id->as_string()) : std::string();
}

// Whom a control-plane request concerns: the sandbox in its path (its
// genesis_job tag), or the genesis_job of a create request's metadata.
fault_subject control_subject(const emulator_state& st, const std::string& endpoint, const request& req) {
    fault_subject s;
    if (endpoint == "create") {
        error_code ec;
        auto v = json::parse(req.body(), ec);
        if (ec || !v.is_object()) return s;
        const auto* meta = v.as_object().if_contains("metadata");
        const auto* job = meta && meta->is_object() ? meta->as_object().if_contains("genesis_job") : nullptr;
        if (job && job->is_string()) s.job = std::string(job->as_string());
        return s;
    }
    std::string_view path = path_of(req);
    constexpr std::string_view prefix = "/sandboxes/";
    const auto at = path.find(prefix);
    if (at == std::string_view::npos) return s;
    std::string_view rest = path.substr(at + prefix.size());
    s.sandbox_id = std::string(rest.substr(0, rest.find('/')));
    if (auto sb = st.sandboxes.find(s.sandbox_id))
        if (auto it = sb->metadata.find("genesis_job"); it != sb->metadata.end()) s.job = it->second;
    return s;
}

fault_subject sandbox_subject(const sandbox& sb) {
    fault_subject s;
    s.sandbox_id = sb.id;
    if (auto it = sb.metadata.find("genesis_job"); it != sb.metadata.end()) s.job = it->second;
    return s;
}

// ---- control plane ---------------------------------------------------------

asio::awaitable<void> route_control(std::shared_ptr<emulator_state> st, request& req, response_writer& out) {
    std::string endpoint = control_endpoint_name(req);
    count_request(*st, endpoint.empty() ? "unknown" : endpoint);
    co_await apply_latency(*st, endpoint);
    std::optional<fault_rule> fault;
    if (!endpoint.empty()) fault = take_fault(*st, endpoint, control_subject(*st, endpoint, req));
    const std::size_t logged = st->fault_log.size() - 1;  // this fault's fault_event (when one fired)
    if (!fault) {
        co_await handle_control(*st, endpoint, req, out);
    } else if (fault->kind == "stall") {
        co_await stall(*st, *fault);
        co_await handle_control(*st, endpoint, req, out);
    } else if (fault->kind == "status") {
        co_await answer_status_fault(*fault, endpoint, req, out);
    } else if (fault->kind == "reset") {
        out.reset_connection();
    } else if (fault->kind == "lose_response") {
        // The work is done (the sandbox exists), but the client never learns it.
        capturing_writer sink(out.peer());
        co_await handle_control(*st, endpoint, req, sink);
        if (sink.captured) st->fault_log[logged].sandbox_id = created_sandbox_id(*sink.captured);
        out.reset_connection();
    } else if (fault->kind == "vanish") {
        capturing_writer sink(out.peer());
        co_await handle_control(*st, endpoint, req, sink);
        if (!sink.captured) co_return;
        if (auto id = created_sandbox_id(*sink.captured); !id.empty()) {
            st->fault_log[logged].sandbox_id = id;
            schedule_vanish(st, id, fault->after_ms);
        }
        co_await out.send(std::move(*sink.captured));
    } else {
        co_await handle_control(*st, endpoint, req, out);
    }
}

// ---- envd ------------------------------------------------------------------

// The answers of E2B's edge proxy (docs/e2b-wire.md, "Edge proxy answers"). Built
// outside coroutines: GCC 12 mis-compiles braced initializers holding string
// literals inside a coroutine.
response proxy_error(const request& req, http::status status, const json::object& body) {
    return make_response(req, status, json::serialize(body));
}

response sandbox_not_found(const request& req, const std::string& id) {
    return proxy_error(req, http::status::bad_gateway,
                       {{"sandboxId", id}, {"message", "The sandbox was not found"}, {"code", 502}});
}

response port_not_open(const request& req, const std::string& id, const std::string& port) {
    int number = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    bool numeric = ec == std::errc{} && end == port.data() + port.size();
    json::value port_value = numeric ? json::value(number) : json::value(port);
    return proxy_error(req, http::status::bad_gateway,
                       {{"sandboxId", id},
                        {"message", "The sandbox is running but port is not open"},
                        {"port", port_value},
                        {"code", 502}});
}

std::optional<response> reserved_path(const request& req) {
    auto path = path_of(req);
    if (std::find(internal_envd_paths.begin(), internal_envd_paths.end(), path) == internal_envd_paths.end())
        return std::nullopt;
    return proxy_error(
        req, http::status::not_found,
        {{"message",
          "This endpoint is reserved for the E2B control plane and is not reachable through the sandbox URL"},
         {"path", path},
         {"code", 404}});
}

asio::awaitable<void> route_envd(std::shared_ptr<emulator_state> st, envd_target target, request& req,
                                 response_writer& out) {
    std::string endpoint = envd_endpoint_name(req);
    count_request(*st, endpoint.empty() ? "envd.unknown" : endpoint);
    co_await apply_latency(*st, endpoint);

    // What E2B's edge proxy answers before envd is reached (docs/e2b-wire.md, "Edge proxy answers").
    if (target.missing_header) {
        co_await out.send(make_response(req, http::status::bad_request, "missing header", "text/plain; charset=utf-8"));
        co_return;
    }
    auto sb = st->sandboxes.find(target.sandbox_id);
    if (!sb) {
        co_await out.send(sandbox_not_found(req, target.sandbox_id));
        co_return;
    }
    if (target.port != envd_port) {
        co_await out.send(port_not_open(req, target.sandbox_id, target.port));
        co_return;
    }
    if (auto reserved = reserved_path(req)) {
        co_await out.send(std::move(*reserved));
        co_return;
    }

    auto fault = take_fault(*st, endpoint, sandbox_subject(*sb));
    if (fault && fault->kind == "status") {
        co_await answer_status_fault(*fault, endpoint, req, out);
        co_return;
    }
    if (fault && fault->kind == "reset") {
        out.reset_connection();
        co_return;
    }
    if (fault && fault->kind == "cut_stream") st->pending_cuts[&req] = *fault;
    if (fault && fault->kind == "stall") {
        co_await stall(*st, *fault);
        sb = st->sandboxes.find(target.sandbox_id);  // it may have ended meanwhile
        if (!sb) {
            co_await out.send(sandbox_not_found(req, target.sandbox_id));
            co_return;
        }
    }
    try {
        co_await handle_envd(*st, sb, endpoint, req, out);
    } catch (...) {
        st->pending_cuts.erase(&req);
        throw;
    }
    st->pending_cuts.erase(&req);
}

// ---- admin (/_emulator/...) -------------------------------------------------

// Reads the knobs of a POST /_emulator/config body into `o`. Error message or "".
std::string apply_config_json(const json::object& body, emulator_options& o) {
    auto non_negative_int = [](const json::value& v) -> std::optional<int> {
        if (v.is_int64() && v.as_int64() >= 0 && v.as_int64() <= INT32_MAX) return static_cast<int>(v.as_int64());
        if (v.is_uint64() && v.as_uint64() <= INT32_MAX) return static_cast<int>(v.as_uint64());
        return std::nullopt;
    };
    for (const auto& [key, value] : body) {
        if (key == "latency_ms") {
            auto ms = non_negative_int(value);
            if (!ms) return "'latency_ms' must be a non-negative integer";
            o.latency = std::chrono::milliseconds(*ms);
        } else if (key == "endpoint_latency_ms") {
            if (!value.is_object()) return "'endpoint_latency_ms' must be an object";
            o.endpoint_latency.clear();
            for (const auto& [name, ms] : value.as_object()) {
                auto n = non_negative_int(ms);
                if (!n) return "'endpoint_latency_ms." + std::string(name) + "' must be a non-negative integer";
                o.endpoint_latency[std::string(name)] = std::chrono::milliseconds(*n);
            }
        } else if (key == "faults") {
            if (!value.is_array()) return "'faults' must be an array";
            o.faults.clear();
            for (std::size_t i = 0; i < value.as_array().size(); ++i) {
                fault_rule rule;
                if (auto err = parse_fault(value.as_array()[i], rule); !err.empty())
                    return "faults[" + std::to_string(i) + "]: " + err;
                o.faults.push_back(std::move(rule));
            }
        } else if (key == "max_concurrent_sandboxes") {
            auto n = non_negative_int(value);
            if (!n) return "'max_concurrent_sandboxes' must be a non-negative integer";
            o.max_concurrent_sandboxes = *n;
        } else if (key == "create_rate_per_second") {
            if (!value.is_number() || value.to_number<double>() < 0)
                return "'create_rate_per_second' must be a number >= 0";
            o.create_rate_per_second = value.to_number<double>();
        } else if (key == "seed") {
            if (value.is_int64() && value.as_int64() >= 0) o.seed = static_cast<std::uint64_t>(value.as_int64());
            else if (value.is_uint64()) o.seed = value.as_uint64();
            else return "'seed' must be a non-negative integer";
        } else if (key == "max_timeout_seconds") {
            auto n = non_negative_int(value);
            if (!n || *n == 0) return "'max_timeout_seconds' must be a positive integer";
            o.max_timeout_seconds = *n;
        } else {
            return "unknown key '" + std::string(key) + "'";
        }
    }
    return {};
}

json::object knobs_json(const emulator_options& o) {
    json::object per_endpoint;
    for (const auto& [name, ms] : o.endpoint_latency) per_endpoint[name] = ms.count();
    json::array faults;
    for (const auto& f : o.faults) {
        json::object j{{"endpoint", f.endpoint}, {"kind", f.kind},   {"status", f.status},
                       {"skip", f.skip},         {"count", f.count}, {"after_events", f.after_events},
                       {"after_ms", f.after_ms}};
        if (f.retry_after) j["retry_after"] = *f.retry_after;
        if (f.probability < 1.0) j["probability"] = f.probability;
        if (!f.message.empty()) j["message"] = f.message;
        faults.push_back(std::move(j));
    }
    return json::object{{"latency_ms", o.latency.count()},
                        {"endpoint_latency_ms", std::move(per_endpoint)},
                        {"faults", std::move(faults)},
                        {"max_concurrent_sandboxes", o.max_concurrent_sandboxes},
                        {"create_rate_per_second", o.create_rate_per_second},
                        {"max_timeout_seconds", o.max_timeout_seconds},
                        {"seed", o.seed}};
}

response configure(emulator_state& st, const request& req) {
    if (header(req, "X-API-Key") != st.options.api_key) return error_response(req, 401, "Invalid API key");
    error_code ec;
    auto body = json::parse(req.body(), ec);
    if (ec || !body.is_object()) return error_response(req, 400, "the body must be a JSON object");
    emulator_options updated = st.options;
    if (auto err = apply_config_json(body.as_object(), updated); !err.empty()) return error_response(req, 400, err);
    bool faults_changed = body.as_object().contains("faults") || body.as_object().contains("seed");
    bool rate_changed = updated.create_rate_per_second != st.options.create_rate_per_second;
    st.options = std::move(updated);
    if (faults_changed) reset_fault_budgets(st);
    if (rate_changed) st.create_tokens_at = {};  // a fresh, full bucket
    return make_response(req, http::status::ok, json::serialize(knobs_json(st.options)));
}

asio::awaitable<void> route_admin(std::shared_ptr<emulator_state> st, request& req, response_writer& out) {
    auto path = path_of(req);
    auto method = req.method();
    if (path == "/_emulator/stats" && method == http::verb::get)
        co_await out.send(make_response(req, http::status::ok, json::serialize(make_stats(*st))));
    else if (path == "/_emulator/faults" && method == http::verb::get)
        co_await out.send(make_response(req, http::status::ok, json::serialize(fault_log_json(*st))));
    else if (path == "/_emulator/health" && method == http::verb::get)
        co_await out.send(make_response(req, http::status::ok, R"({"status":"ok"})"));
    else if (path == "/_emulator/config" && method == http::verb::post)
        co_await out.send(configure(*st, req));
    else
        co_await out.send(error_response(req, 404, "Not found"));
}

// ---- the router ------------------------------------------------------------

// Where an envd request goes. A pre-signed /files URL built on E2B_SANDBOX_URL
// carries neither routing headers nor a <port>-<id> host: its signature names
// the sandbox. (An ordinary function: GCC 12 miscompiles braced temporaries
// passed by value into coroutines.)
std::optional<envd_target> resolve_envd_target(const emulator_state& st, const request& req, bool& bad_signature) {
    bad_signature = false;
    if (auto target = envd_target_of(req)) return target;
    if (path_of(req) != "/files" || req.target().find("signature=") == std::string_view::npos) return std::nullopt;
    if (auto sb = find_sandbox_by_signature(st, req)) {
        envd_target t;
        t.sandbox_id = sb->id;
        t.port = std::string(envd_port);
        return t;
    }
    bad_signature = true;
    return std::nullopt;
}

asio::awaitable<void> dispatch(std::shared_ptr<emulator_state> st, request& req, response_writer& out) {
    bool bad_signature = false;
    auto target = resolve_envd_target(*st, req, bad_signature);
    if (target)
        co_await route_envd(st, std::move(*target), req, out);
    else if (bad_signature)
        co_await out.send(error_response(req, 401, "invalid signature"));
    else if (path_of(req).starts_with("/_emulator/"))
        co_await route_admin(st, req, out);
    else
        co_await route_control(st, req, out);
}

asio::awaitable<void> route(std::shared_ptr<emulator_state> st, request& req, response_writer& out) {
    auto started = std::chrono::steady_clock::now();
    tracking_writer tracked(out);
    std::optional<std::string> failure;  // a handler threw (co_await is not allowed in a catch block)
    try {
        co_await dispatch(st, req, tracked);
    } catch (const std::exception& e) {
        failure = e.what();
    }
    if (failure && !tracked.answered()) co_await tracked.send(error_response(req, 500, "emulator error: " + *failure));
    if (st->request_log) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        // The path only: the query may carry signatures, and headers are never logged.
        st->request_log(std::string(req.method_string()) + " " + std::string(path_of(req)) + " " + tracked.outcome() +
                        " " + std::to_string(ms.count()) + "ms");
    }
}

std::string url_host(const std::string& host) {
    if (host == "0.0.0.0" || host.empty()) return "127.0.0.1";
    if (host == "::") return "[::1]";
    if (host.find(':') != std::string::npos) return "[" + host + "]";
    return host;
}

}  // namespace

// ---- emulator_state / stats -----------------------------------------------------

emulator_state::emulator_state(asio::any_io_executor e, emulator_options o, std::filesystem::path state_dir)
    : ex(e), options(std::move(o)), sandboxes(e, std::move(state_dir)) {
    reset_fault_budgets(*this);
}

json::array fault_log_json(const emulator_state& st) {
    json::array out;
    for (const auto& e : st.fault_log) {
        json::object o;
        o["request"] = e.request;
        o["kind"] = e.label;
        o["endpoint"] = e.endpoint;
        o["sandbox_id"] = e.sandbox_id;
        o["job"] = e.job;
        // A vanish fault is only armed at create: did the sandbox still live when it fired?
        if (e.label == "vanish") o["vanished"] = st.vanished_ids.count(e.sandbox_id) > 0;
        out.push_back(std::move(o));
    }
    return out;
}

namespace {

// This process's CPU time so far (getrusage RUSAGE_SELF): {"user","system","total"} in seconds.
json::object cpu_seconds() {
    struct rusage ru {};
    ::getrusage(RUSAGE_SELF, &ru);
    auto secs = [](const struct timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    json::object o;
    o["user"] = secs(ru.ru_utime);
    o["system"] = secs(ru.ru_stime);
    o["total"] = secs(ru.ru_utime) + secs(ru.ru_stime);
    return o;
}

}  // namespace

json::object make_stats(const emulator_state& st) {
    json::array ids;
    for (const auto& sb : st.sandboxes.list()) ids.push_back(json::string(sb->id));
    json::object by_endpoint;
    for (const auto& [name, n] : st.requests.by_endpoint) by_endpoint[name] = n;
    json::object by_kind;
    for (const auto& [label, n] : st.requests.faults_by_kind) by_kind[label] = n;
    const auto& c = st.sandboxes.counters();
    return json::object{
        {"live_sandboxes", std::move(ids)},
        {"live", st.sandboxes.size()},
        {"created", c.created},
        {"killed", c.killed},
        {"expired", c.expired},
        {"vanished", c.vanished},
        // faults_injected also inside "requests", where docs/e2b-emulator.md shows it.
        {"requests", json::object{{"total", st.requests.total},
                                  {"by_endpoint", std::move(by_endpoint)},
                                  {"faults_injected", st.requests.faults_injected}}},
        {"faults_injected", st.requests.faults_injected},
        {"faults_by_kind", std::move(by_kind)},
        {"open_connections", st.open_connections ? st.open_connections() : 0},
        {"connections_accepted", st.server ? st.server->connections_accepted() : 0},
        {"tls_handshakes", st.server ? st.server->tls_handshakes() : 0},
        {"tls_resumed", st.server ? st.server->tls_resumed() : 0},
        {"bench", st.options.bench},
        {"cpu_seconds", cpu_seconds()}};
}

// ---- emulator ------------------------------------------------------------------

emulator::emulator(asio::any_io_executor ex, emulator_options options) {
    if (options.api_key.empty()) options.api_key = "e2b_" + random_hex(40);
    for (auto& [name, tmpl] : options.templates) tmpl.name = name;
    if (!options.templates.count("base")) options.templates["base"].name = "base";
    own_state_dir_ = options.state_dir.empty();
    // A fresh, unguessable name; start() creates it (mkdir fails if it exists).
    state_dir_ =
        own_state_dir_ ? std::filesystem::temp_directory_path() / ("genesis-e2b-" + random_hex(16)) : options.state_dir;
    options.state_dir = state_dir_;
    tls_ = !options.tls_cert.empty() || !options.tls_key.empty();
    state_ = std::make_shared<emulator_state>(ex, std::move(options), state_dir_);
}

emulator::~emulator() { stop(); }

namespace {

std::shared_ptr<asio::ssl::context> make_tls_context(const emulator_options& o, std::string& error) {
    if (o.tls_cert.empty() || o.tls_key.empty()) {
        error = "TLS needs both a certificate and a key (--tls-cert and --tls-key)";
        return nullptr;
    }
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    error_code ec;
    ctx->use_certificate_chain_file(o.tls_cert.string(), ec);
    if (ec) {
        error = "cannot load TLS certificate '" + o.tls_cert.string() + "': " + ec.message();
        return nullptr;
    }
    ctx->use_private_key_file(o.tls_key.string(), asio::ssl::context::pem, ec);
    if (ec) {
        error = "cannot load TLS key '" + o.tls_key.string() + "': " + ec.message();
        return nullptr;
    }
    return ctx;
}

bool prepare_state_dir(const std::filesystem::path& dir, bool own, std::string& error) {
    std::error_code ec;
    if (own) {
        if (::mkdir(dir.c_str(), 0700) != 0) {
            error = "cannot create state folder '" + dir.string() + "': " + std::strerror(errno);
            return false;
        }
    } else {
        std::filesystem::create_directories(dir, ec);
    }
    if (!ec) std::filesystem::create_directories(dir / "sandboxes", ec);
    if (ec) {
        error = "cannot create state folder '" + dir.string() + "': " + ec.message();
        return false;
    }
    return true;
}

}  // namespace

bool emulator::start(std::string& error) {
    if (started_) {
        error = "the emulator is already started";
        return false;
    }
    auto& o = state_->options;
    if (!is_api_key(o.api_key)) {
        error = "the API key must be 'e2b_' followed by hex digits (E2B rejects any other form)";
        return false;
    }
    http_server_options server_options{o.host, o.port, nullptr};
    if (tls_ && !(server_options.tls = make_tls_context(o, error))) return false;
    if (!prepare_state_dir(state_dir_, own_state_dir_, error)) return false;

    install_envd(*state_);
    server_ = std::make_unique<http_server>(
        state_->ex, server_options, [st = state_](request& req, response_writer& out) { return route(st, req, out); });
    error_code ec;
    port_ = server_->start(ec);
    if (ec) {
        error = "cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + ec.message();
        server_.reset();
        if (own_state_dir_) std::filesystem::remove_all(state_dir_, ec);
        return false;
    }
    state_->open_connections = [server = server_.get()] { return server->open_connections(); };
    state_->server = server_.get();
    started_ = true;
    return true;
}

void emulator::stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    server_->stop();
    for (const auto& timer : state_->vanish_timers) timer->cancel();
    state_->vanish_timers.clear();
    state_->sandboxes.destroy_all();  // envd's hook kills every sandbox's processes
    state_->open_connections = nullptr;
    state_->server = nullptr;
    if (own_state_dir_) {
        std::error_code ignored;
        std::filesystem::remove_all(state_dir_, ignored);
    }
}

std::string emulator::api_url() const {
    return std::string(tls_ ? "https" : "http") + "://" + url_host(state_->options.host) + ":" + std::to_string(port_);
}

std::string emulator::sandbox_url() const { return api_url(); }

const std::string& emulator::api_key() const { return state_->options.api_key; }

json::object emulator::stats() const { return make_stats(*state_); }

}  // namespace genesis::e2b_emulator
