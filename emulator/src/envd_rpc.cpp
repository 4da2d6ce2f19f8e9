// envd's Connect RPCs with the JSON codec: process.Process (Start and Connect
// streams, List, SendSignal, SendInput, CloseStdin) and filesystem.Filesystem
// (Stat, ListDir, MakeDir, Remove, Move), plus the per-sandbox process table and
// its teardown. The protocol: docs/e2b-wire.md, "Connect", "process.Process" and
// "filesystem.Filesystem".
#include "envd.hpp"
#include "faults.hpp"
#include "sandbox_runtime.hpp"

#include "connect_wire.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>
#include <deque>

namespace genesis::e2b_emulator {

namespace json = boost::json;
using namespace asio::experimental::awaitable_operators;
using boost::system::error_code;
using steady = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::size_t max_data_event = 32 * 1024;     // docs/e2b-wire.md, "Events"
constexpr std::chrono::seconds default_keepalive{90};  // without Keepalive-Ping-Interval
constexpr std::chrono::seconds end_retention{30};      // exited processes stay visible to Connect

// ============================================================================
// Connect-RPC plumbing
// ============================================================================

// An RPC failure: a Connect code and message.
struct rpc_error {
    std::string code;
    std::string message;
};

// Built outside coroutines: GCC 12 mis-compiles braced initializers holding
// string literals inside a coroutine.
rpc_error make_error(std::string_view code, std::string message) {
    rpc_error e;
    e.code = code;
    e.message = std::move(message);
    return e;
}

response unary_error(const request& req, const rpc_error& e) {
    return make_response(req, static_cast<http::status>(wire::http_status(e.code)),
                         wire::error_body({e.code, e.message}), "application/json");
}

response unary_ok(const request& req, const json::object& body) {
    return make_response(req, http::status::ok, json::serialize(body), "application/json");
}

// protojson leniency: lowerCamelCase or proto names, numbers as strings, enums by name or number.
const json::value* member(const json::object& o, std::string_view camel, std::string_view proto = {}) {
    if (const auto* v = o.if_contains(camel); v && !v->is_null()) return v;
    if (!proto.empty())
        if (const auto* v = o.if_contains(proto); v && !v->is_null()) return v;
    return nullptr;
}

std::optional<std::int64_t> as_integer(const json::value* v) {
    if (!v) return std::nullopt;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
    if (v->is_double() && v->get_double() == static_cast<double>(static_cast<std::int64_t>(v->get_double())))
        return static_cast<std::int64_t>(v->get_double());
    if (v->is_string()) {
        std::string_view s = v->get_string();
        std::int64_t n = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec == std::errc{} && end == s.data() + s.size()) return n;
    }
    return std::nullopt;
}

std::string as_string(const json::value* v) { return v && v->is_string() ? std::string(v->get_string()) : std::string(); }

const json::object* as_object(const json::value* v) { return v ? v->if_object() : nullptr; }

std::optional<json::object> parse_message(std::string_view text, rpc_error& err) {
    error_code ec;
    auto v = json::parse(text.empty() ? std::string_view("{}") : text, ec);
    if (ec || !v.is_object()) {
        err = {"invalid_argument", "unmarshal message: invalid JSON"};
        return std::nullopt;
    }
    return std::move(v.as_object());
}

bool is_json_content(std::string_view content_type, std::string_view expected) {
    auto semi = content_type.find(';');
    auto base = content_type.substr(0, semi);
    while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
    return base.size() == expected.size() &&
           std::equal(base.begin(), base.end(), expected.begin(),
                      [](char a, char b) { return std::tolower(a) == std::tolower(b); });
}

// The RPC user from Basic auth (docs/e2b-wire.md, "User"). Empty when fine, else the unauthenticated message.
std::string basic_user_error(const request& req) {
    auto it = req.find(http::field::authorization);
    if (it == req.end()) return {};
    std::string_view value = it->value();
    if (value.substr(0, 6) != "Basic ") return "invalid authorization header";
    auto decoded = wire::base64_decode(value.substr(6));
    if (!decoded) return "invalid authorization header";
    std::string user = decoded->substr(0, decoded->find(':'));
    if (user.empty() || user == "user" || user == "root") return {};
    return "invalid username: '" + user + "'";
}

// Connect-Timeout-Ms: nullopt = no deadline; an error for garbage.
std::optional<std::chrono::milliseconds> call_timeout(const request& req, rpc_error& err) {
    auto it = req.find("Connect-Timeout-Ms");
    if (it == req.end()) return std::nullopt;
    std::string_view s = it->value();
    std::int64_t ms = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), ms);
    if (ec != std::errc{} || end != s.data() + s.size() || ms < 0 || s.size() > 10) {
        err = {"invalid_argument", "protocol error: invalid connect timeout: \"" + std::string(s) + "\""};
        return std::nullopt;
    }
    if (ms == 0) return std::nullopt;
    return std::chrono::milliseconds(ms);
}

std::chrono::seconds keepalive_interval(const request& req) {
    auto it = req.find("Keepalive-Ping-Interval");
    if (it == req.end()) return default_keepalive;
    std::string_view s = it->value();
    int secs = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), secs);
    if (ec != std::errc{} || end != s.data() + s.size() || secs <= 0) return default_keepalive;
    return std::chrono::seconds(secs);
}

// A server-streaming response: the 200 header once, enveloped messages, and
// exactly one end-stream frame. Applies the router's cut_stream fault.
class connect_stream {
public:
    connect_stream(response_writer& out, const request& req, std::optional<fault_rule> cut)
        : out_(out), version_(req.version()), cut_(std::move(cut)) {}

    // False once the client is gone or the stream was cut on purpose.
    asio::awaitable<bool> send(const json::object& message) {
        if (!co_await ensure_begun()) co_return false;
        const bool written = co_await out_.write_chunk(wire::envelope(json::serialize(message)));
        if (written && cut_ && ++sent_ >= cut_->after_events) out_.reset_connection();
        else if (written) co_return true;
        alive_ = false;
        co_return false;
    }

    asio::awaitable<void> finish(const std::optional<rpc_error>& error = std::nullopt) {
        if (!co_await ensure_begun()) co_return;
        std::optional<wire::rpc_error> e;
        if (error) e = wire::rpc_error{error->code, error->message};
        if (co_await out_.write_chunk(wire::envelope(wire::end_stream(e), wire::flag_end_stream)))
            co_await out_.end_stream();
        alive_ = false;
    }

    void cut() {
        out_.reset_connection();
        alive_ = false;
    }

private:
    asio::awaitable<bool> ensure_begun() {
        if (!alive_) co_return false;
        if (begun_) co_return true;
        begun_ = true;
        http::response_header<> header;
        header.version(version_);
        header.result(http::status::ok);
        header.set(http::field::content_type, "application/connect+json");
        if (!co_await out_.begin_stream(std::move(header))) alive_ = false;
        co_return alive_;
    }

    response_writer& out_;
    unsigned version_;
    std::optional<fault_rule> cut_;
    int sent_ = 0;
    bool begun_ = false;
    bool alive_ = true;
};

// The single request message of a streaming call (one envelope in the body).
std::optional<json::object> stream_request(const request& req, rpc_error& err) {
    std::string why;
    auto payload = wire::single_message(req.body(), why);
    if (!payload) {
        err = {"invalid_argument", why};
        return std::nullopt;
    }
    return parse_message(*payload, err);
}

// ============================================================================
// Processes
// ============================================================================

// One subscribed stream (Start or Connect): events queued by the process runner.
struct stream_sink {
    explicit stream_sink(asio::any_io_executor ex) : wake(ex) {}
    std::deque<json::object> events;
    bool ended = false;  // the end event is queued (the stream may finish after it)
    bool cut = false;    // the sandbox is gone: drop the connection like the edge proxy
    asio::steady_timer wake;
    void notify() { wake.cancel(); }
};

struct process_entry {
    std::uint32_t pid = 0;
    std::optional<std::string> tag;
    json::object config;  // ProcessConfig as the client sent it (cmd, args, envs, cwd)
    std::unique_ptr<sandbox_process> proc;
    std::vector<std::shared_ptr<stream_sink>> sinks;
    std::optional<json::object> end_event;  // set once it exited
    std::unique_ptr<asio::steady_timer> retention;

    bool running() const { return !end_event; }
    void broadcast(const json::object& event) {
        for (auto& s : sinks) {
            s->events.push_back(event);
            s->notify();
        }
    }
    void unsubscribe(const std::shared_ptr<stream_sink>& s) { std::erase(sinks, s); }
};

// envd's state for one sandbox (sandbox::envd_state).
struct envd_sandbox_state {
    std::map<std::uint32_t, std::shared_ptr<process_entry>> processes;
    bool destroyed = false;
};

std::shared_ptr<envd_sandbox_state> envd_state_of(sandbox& sb) {
    if (!sb.envd_state) sb.envd_state = std::make_shared<envd_sandbox_state>();
    return std::static_pointer_cast<envd_sandbox_state>(sb.envd_state);
}

json::object event_message(std::string_view kind, json::object body) {
    json::object event;
    event[kind] = std::move(body);
    json::object message;
    message["event"] = std::move(event);
    return message;
}

json::object start_event(std::uint32_t pid) {
    json::object start;
    start["pid"] = pid;
    return event_message("start", std::move(start));
}

json::object data_event(std::string_view stream, std::string_view bytes) {
    json::object data;
    data[stream] = wire::base64_encode(bytes);
    return event_message("data", std::move(data));
}

json::object keepalive_event() { return event_message("keepalive", {}); }

// docs/e2b-wire.md, "JSON mapping": zero values omitted, as Go's protojson does.
json::object end_event(const exit_report& r) {
    json::object end;
    if (r.exit_code != 0) end["exitCode"] = r.exit_code;
    if (r.exited) end["exited"] = true;
    end["status"] = r.status;
    if (!(r.exited && r.exit_code == 0)) end["error"] = r.status;
    return event_message("end", std::move(end));
}

// Reads one output pipe into data events (discarded while nobody listens).
asio::awaitable<void> pump(std::shared_ptr<process_entry> p, asio::readable_pipe& pipe, std::string_view stream) {
    std::string buf(max_data_event, '\0');
    for (;;) {
        auto [ec, n] = co_await pipe.async_read_some(asio::buffer(buf), use_tuple);
        if (n > 0 && !p->sinks.empty()) p->broadcast(data_event(stream, std::string_view(buf.data(), n)));
        if (ec) break;
    }
}

asio::awaitable<void> run_process(std::shared_ptr<process_entry> p, std::shared_ptr<envd_sandbox_state> state) {
    sandbox_process& proc = *p->proc;
    exit_report report = co_await (pump(p, proc.out(), "stdout") && pump(p, proc.err(), "stderr") && proc.wait());
    p->end_event = end_event(report);
    p->broadcast(*p->end_event);
    for (auto& s : p->sinks) s->ended = true;
    p->sinks.clear();
    p->proc->close_stdin();
    if (state->destroyed) co_return;
    // Keep the exit status around for a late Connect, then forget the process.
    p->retention = std::make_unique<asio::steady_timer>(co_await asio::this_coro::executor, end_retention);
    auto [ec] = co_await p->retention->async_wait(use_tuple);
    if (ec) co_return;
    auto it = state->processes.find(p->pid);
    if (it != state->processes.end() && it->second == p) state->processes.erase(it);
}

// Forwards a process's events to one client until the end event, the
// deadline, a disconnect, or the sandbox's end.
asio::awaitable<void> follow(std::shared_ptr<process_entry> p, std::shared_ptr<stream_sink> sink,
                             connect_stream& stream, std::optional<std::chrono::milliseconds> timeout,
                             std::chrono::seconds keepalive, bool kill_at_deadline) {
    const auto far = steady::now() + std::chrono::hours(24 * 365);
    const auto deadline = timeout ? steady::now() + *timeout : far;
    auto next_ping = steady::now() + keepalive;
    for (;;) {
        while (!sink->events.empty()) {
            json::object event = std::move(sink->events.front());
            sink->events.pop_front();
            if (!co_await stream.send(event)) {
                p->unsubscribe(sink);  // gone: the process keeps running, its output is discarded
                co_return;
            }
            next_ping = steady::now() + keepalive;
        }
        if (sink->ended) {
            co_await stream.finish();
            co_return;
        }
        if (sink->cut) {
            stream.cut();
            co_return;
        }
        const auto now = steady::now();
        if (now >= deadline) {
            p->unsubscribe(sink);
            if (kill_at_deadline && p->running()) p->proc->signal(SIGKILL);
            co_await stream.finish(make_error("deadline_exceeded", "context deadline exceeded"));
            co_return;
        }
        if (now >= next_ping) {
            if (!co_await stream.send(keepalive_event())) {
                p->unsubscribe(sink);
                co_return;
            }
            next_ping = now + keepalive;
            continue;
        }
        sink->wake.expires_at(std::min(deadline, next_ping));
        co_await sink->wake.async_wait(use_tuple);
    }
}

std::string selector_text(const json::object& selector) {
    if (const auto* tag = member(selector, "tag"); tag && tag->is_string())
        return "process with tag " + std::string(tag->get_string()) + " not found";
    return "process with pid " + std::to_string(as_integer(member(selector, "pid")).value_or(0)) + " not found";
}

// The process a ProcessSelector names (running, or exited and retained when `exited_too`).
std::shared_ptr<process_entry> select_process(envd_sandbox_state& state, const json::object* selector,
                                              bool exited_too, rpc_error& err) {
    if (!selector) {
        err = {"invalid_argument", "process selector is required"};
        return nullptr;
    }
    const json::value* tag = member(*selector, "tag");
    auto pid = as_integer(member(*selector, "pid"));
    for (auto& [id, p] : state.processes) {
        if (!exited_too && !p->running()) continue;
        if (tag && tag->is_string() ? (p->tag && *p->tag == tag->get_string()) : (pid && *pid == id)) return p;
    }
    err = {"not_found", selector_text(*selector)};
    return nullptr;
}

// StartRequest -> process_spec; an error for a bad request.
std::optional<process_spec> start_spec(const json::object& msg, rpc_error& err) {
    const json::object* config = as_object(member(msg, "process"));
    if (!config) {
        err = {"invalid_argument", "process config is required"};
        return std::nullopt;
    }
    process_spec spec;
    spec.cmd = as_string(member(*config, "cmd"));
    if (const auto* args = member(*config, "args"); args && args->is_array())
        for (const auto& a : args->get_array()) spec.args.push_back(a.is_string() ? std::string(a.get_string()) : "");
    if (const auto* envs = as_object(member(*config, "envs")))
        for (const auto& [k, v] : *envs) spec.envs[std::string(k)] = v.is_string() ? std::string(v.get_string()) : "";
    spec.cwd = normalize_sandbox_path(as_string(member(*config, "cwd")));
    const json::value* in = member(msg, "stdin");
    spec.stdin_pipe = !in || !in->is_bool() || in->get_bool();
    if (member(msg, "pty")) {
        err = {"unimplemented", "PTY processes are not supported by the emulator"};
        return std::nullopt;
    }
    if (spec.cmd.empty()) {
        err = {"invalid_argument", "process cmd is required"};
        return std::nullopt;
    }
    return spec;
}

// Bench mode: the events of a command that printed bench_stdout and exited 0,
// with a made-up pid (nothing is spawned).
std::vector<json::object> bench_run_events() {
    static std::uint32_t next_pid = 1000;
    exit_report ok;
    ok.exited = true;
    ok.exit_code = 0;
    ok.status = "exit status 0";
    std::vector<json::object> events;
    events.push_back(start_event(next_pid++));
    events.push_back(data_event("stdout", bench_stdout));
    events.push_back(end_event(ok));
    return events;
}

asio::awaitable<void> rpc_start(emulator_state& st, std::shared_ptr<sandbox> sb, request& req, response_writer& out) {
    connect_stream stream(out, req, pending_cut(st, req));
    rpc_error err;
    auto msg = stream_request(req, err);
    auto timeout = msg ? call_timeout(req, err) : std::nullopt;
    auto spec = err.code.empty() && msg ? start_spec(*msg, err) : std::nullopt;
    if (!err.code.empty()) {
        co_await stream.finish(err);
        co_return;
    }
    if (st.options.bench) {
        for (const auto& event : bench_run_events())
            if (!co_await stream.send(event)) co_return;
        co_await stream.finish();
        co_return;
    }
    if (!sandbox_directory_exists(*sb, st.sandboxes.state_dir(), spec->cwd)) {
        co_await stream.finish(make_error("invalid_argument", "cwd '" + spec->cwd + "' does not exist"));
        co_return;
    }
    std::string spawn_error;
    auto proc = sandbox_process::start(st.ex, *sb, st.sandboxes.state_dir(), *spec, spawn_error);
    if (!proc) {
        co_await stream.finish(make_error("internal", "error starting process: " + spawn_error));
        co_return;
    }

    auto state = envd_state_of(*sb);
    auto p = std::make_shared<process_entry>();
    p->pid = static_cast<std::uint32_t>(proc->pid());
    p->proc = std::move(proc);
    p->config = *as_object(member(*msg, "process"));
    if (const auto* tag = member(*msg, "tag"); tag && tag->is_string()) p->tag = std::string(tag->get_string());
    auto sink = std::make_shared<stream_sink>(st.ex);
    sink->events.push_back(start_event(p->pid));  // before any output: start is always first
    p->sinks.push_back(sink);
    state->processes[p->pid] = p;
    asio::co_spawn(st.ex, run_process(p, state), asio::detached);

    co_await follow(p, sink, stream, timeout, keepalive_interval(req), true);
}

asio::awaitable<void> rpc_connect(emulator_state& st, std::shared_ptr<sandbox> sb, request& req, response_writer& out) {
    connect_stream stream(out, req, pending_cut(st, req));
    rpc_error err;
    auto msg = stream_request(req, err);
    auto timeout = msg ? call_timeout(req, err) : std::nullopt;
    auto state = envd_state_of(*sb);
    auto p = err.code.empty() ? select_process(*state, as_object(member(*msg, "process")), true, err) : nullptr;
    if (!p) {
        co_await stream.finish(err);
        co_return;
    }
    auto sink = std::make_shared<stream_sink>(st.ex);
    sink->events.push_back(start_event(p->pid));
    if (p->running()) {
        p->sinks.push_back(sink);
    } else {
        sink->events.push_back(*p->end_event);
        sink->ended = true;
    }
    // A Connect deadline ends this stream only; the process belongs to its Start.
    co_await follow(p, sink, stream, timeout, keepalive_interval(req), false);
}

json::object list_response(const envd_sandbox_state& state) {
    json::array processes;
    for (const auto& [pid, p] : state.processes) {
        if (!p->running()) continue;
        json::object info;
        info["config"] = p->config;
        info["pid"] = pid;
        if (p->tag) info["tag"] = *p->tag;
        processes.push_back(std::move(info));
    }
    json::object res;
    res["processes"] = std::move(processes);
    return res;
}

// SIGTERM / SIGKILL by enum name or number; 0 for anything else.
int signal_from(const json::value* v) {
    if (!v) return 0;
    if (v->is_string()) {
        std::string_view s = v->get_string();
        if (s == "SIGNAL_SIGKILL") return SIGKILL;
        if (s == "SIGNAL_SIGTERM") return SIGTERM;
    }
    auto n = as_integer(v);
    return n && (*n == SIGKILL || *n == SIGTERM) ? static_cast<int>(*n) : 0;
}

std::optional<rpc_error> send_signal(envd_sandbox_state& state, const json::object& msg) {
    rpc_error err;
    const int sig = signal_from(member(msg, "signal"));
    if (!sig) return rpc_error{"unimplemented", "invalid signal: only SIGTERM and SIGKILL are supported"};
    auto p = select_process(state, as_object(member(msg, "process")), false, err);
    if (!p) return err;
    p->proc->signal(sig);
    return std::nullopt;
}

asio::awaitable<std::optional<rpc_error>> send_input(envd_sandbox_state& state, const json::object& msg) {
    rpc_error err;
    auto p = select_process(state, as_object(member(msg, "process")), false, err);
    if (!p) co_return err;
    const json::object* input = as_object(member(msg, "input"));
    if (input && member(*input, "pty")) co_return make_error("failed_precondition", "the process has no PTY");
    auto bytes = wire::base64_decode(input ? as_string(member(*input, "stdin")) : std::string());
    if (!bytes) co_return make_error("invalid_argument", "stdin is not valid base64");
    asio::writable_pipe* pipe = p->proc->in();
    if (!pipe) co_return make_error("internal", "error writing to stdin: stdin not enabled or closed");
    // `p` (held by this frame) owns the pipe for as long as the write takes.
    auto [ec, n] = co_await asio::async_write(*pipe, asio::buffer(*bytes), use_tuple);
    if (ec) co_return make_error("internal", "error writing to stdin: " + ec.message());
    co_return std::nullopt;
}

std::optional<rpc_error> close_stdin(envd_sandbox_state& state, const json::object& msg) {
    rpc_error err;
    auto p = select_process(state, as_object(member(msg, "process")), false, err);
    if (!p) return err;
    p->proc->close_stdin();
    return std::nullopt;
}

// ============================================================================
// Filesystem
// ============================================================================

// Go's FileMode.String() for a stat mode: type letters, then rwxrwxrwx.
std::string permissions_text(mode_t mode) {
    std::string s;
    if (S_ISDIR(mode)) s += 'd';
    if (S_ISLNK(mode)) s += 'L';
    if (S_ISBLK(mode)) s += 'D';
    if (S_ISFIFO(mode)) s += 'p';
    if (S_ISSOCK(mode)) s += 'S';
    if (mode & S_ISUID) s += 'u';
    if (mode & S_ISGID) s += 'g';
    if (S_ISCHR(mode)) s += "Dc";
    if (mode & S_ISVTX) s += 't';
    if (s.empty()) s = "-";
    const char* rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; ++i) s += (mode & (0400 >> i)) ? rwx[i] : '-';
    return s;
}

// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, like protojson.
std::string rfc3339(const struct timespec& t) {
    std::tm tm{};
    ::gmtime_r(&t.tv_sec, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::string s = buf;
    long ns = t.tv_nsec;
    if (ns != 0) {
        char frac[24];
        if (ns % 1000000 == 0) std::snprintf(frac, sizeof frac, ".%03ld", ns / 1000000);
        else if (ns % 1000 == 0) std::snprintf(frac, sizeof frac, ".%06ld", ns / 1000);
        else std::snprintf(frac, sizeof frac, ".%09ld", ns);
        s += frac;
    }
    return s + "Z";
}

std::string user_name(uid_t uid) {
    if (auto* pw = ::getpwuid(uid)) return pw->pw_name;
    return std::to_string(uid);
}

std::string group_name(gid_t gid) {
    if (auto* gr = ::getgrgid(gid)) return gr->gr_name;
    return std::to_string(gid);
}

std::string_view file_type_name(mode_t mode) {
    if (S_ISREG(mode)) return "FILE_TYPE_FILE";
    if (S_ISDIR(mode)) return "FILE_TYPE_DIRECTORY";
    if (S_ISLNK(mode)) return "FILE_TYPE_SYMLINK";
    return "FILE_TYPE_UNSPECIFIED";
}

std::string join_view(const std::string& dir, const std::string& name) {
    return dir == "/" ? "/" + name : dir + "/" + name;
}

// EntryInfo for `name` in `dirfd`, shown at sandbox path `view`
// (docs/e2b-wire.md, "filesystem.Filesystem"). A symlink reports its target's
// type and mode, and the target path when it resolves.
std::optional<json::object> entry_info(const sandbox& sb, int dirfd, const std::string& name, const std::string& view) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
    json::object e;
    e["name"] = view == "/" ? "/" : view.substr(view.rfind('/') + 1);
    mode_t type_mode = st.st_mode;
    if (S_ISLNK(st.st_mode)) {
        host_location target;
        struct stat ts {};
        type_mode = 0;
        if (!locate(sb, view, {.create_parents = false, .follow_last = true}, target) &&
            ::fstatat(target.dir.get(), target.name.c_str(), &ts, AT_SYMLINK_NOFOLLOW) == 0) {
            type_mode = ts.st_mode;
            e["symlinkTarget"] = target.resolved;
        }
    }
    if (type_mode) e["type"] = file_type_name(type_mode);
    e["path"] = view;
    if (st.st_size != 0) e["size"] = std::to_string(st.st_size);
    if (const unsigned perm = type_mode & 0777) e["mode"] = perm;
    e["permissions"] = permissions_text(st.st_mode);
    e["owner"] = user_name(st.st_uid);
    e["group"] = group_name(st.st_gid);
    e["modifiedTime"] = rfc3339(st.st_mtim);
    return e;
}

// How a locate() failure reads as a Connect error.
rpc_error locate_error(std::error_code ec, const std::string& view) {
    if (ec == std::errc::permission_denied) return {"permission_denied", outside_message(view)};
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory)
        return {"not_found", "file not found: " + view};
    if (ec == std::errc::too_many_symbolic_link_levels)
        return {"failed_precondition", "cyclic symlink or chain >40 links at \"" + view + "\""};
    return {"internal", "error resolving path " + view + ": " + ec.message()};
}

struct fs_result {
    std::optional<rpc_error> error;
    json::object body;
};

fs_result fs_stat(const sandbox& sb, const json::object& msg) {
    host_location loc;
    const std::string path = as_string(member(msg, "path"));
    if (auto ec = locate(sb, path, {}, loc)) return {locate_error(ec, loc.view), {}};
    auto entry = entry_info(sb, loc.dir.get(), loc.name, loc.view);
    if (!entry) return {rpc_error{"not_found", "file not found: " + loc.view}, {}};
    fs_result r;
    r.body["entry"] = std::move(*entry);
    return r;
}

// Pre-order, by name, not following symlinks below the root (like Go's WalkDir).
void walk_dir(const sandbox& sb, int dirfd, const std::string& view, int depth, json::array& out) {
    unique_fd fd(::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    DIR* dir = fd ? ::fdopendir(fd.get()) : nullptr;
    if (!dir) return;
    fd.release();  // owned by `dir` now
    std::vector<std::string> names;
    while (auto* ent = ::readdir(dir)) {
        std::string n = ent->d_name;
        if (n != "." && n != "..") names.push_back(std::move(n));
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
        const std::string child = join_view(view, n);
        auto entry = entry_info(sb, ::dirfd(dir), n, child);
        if (!entry) continue;
        out.push_back(std::move(*entry));
        struct stat st {};
        if (depth > 1 && ::fstatat(::dirfd(dir), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
            unique_fd sub(::openat(::dirfd(dir), n.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (sub) walk_dir(sb, sub.get(), child, depth - 1, out);
        }
    }
    ::closedir(dir);
}

fs_result fs_list_dir(const sandbox& sb, const json::object& msg) {
    host_location loc;
    const std::string path = as_string(member(msg, "path"));
    auto depth = as_integer(member(msg, "depth")).value_or(0);
    if (depth <= 0) depth = 1;
    if (auto ec = locate(sb, path, {.create_parents = false, .follow_last = true}, loc))
        return {locate_error(ec, loc.view), {}};
    struct stat st {};
    if (::fstatat(loc.dir.get(), loc.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return {rpc_error{"not_found", "directory not found: " + loc.view}, {}};
    if (!S_ISDIR(st.st_mode)) return {rpc_error{"invalid_argument", "path is not a directory: " + loc.view}, {}};
    unique_fd dir(::openat(loc.dir.get(), loc.name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) return {rpc_error{"internal", "error opening directory " + loc.view + ": " + std::strerror(errno)}, {}};
    json::array entries;
    walk_dir(sb, dir.get(), loc.view, static_cast<int>(std::min<std::int64_t>(depth, 64)), entries);
    fs_result r;
    r.body["entries"] = std::move(entries);
    return r;
}

// Bench mode: any folder holds metrics.json and correct.json (bench_file_content).
fs_result bench_list_dir(const json::object& msg) {
    const std::string folder = normalize_sandbox_path(as_string(member(msg, "path")));
    json::array entries;
    for (const char* name : {"metrics.json", "correct.json"}) {
        const std::string view = join_view(folder, name);
        json::object e;
        e["name"] = name;
        e["type"] = "FILE_TYPE_FILE";
        e["path"] = view;
        e["size"] = std::to_string(bench_file_content(view).size());
        e["mode"] = 0644;
        e["permissions"] = "-rw-r--r--";
        e["owner"] = "user";
        e["group"] = "user";
        e["modifiedTime"] = "2025-01-01T00:00:00Z";
        entries.push_back(std::move(e));
    }
    fs_result r;
    r.body["entries"] = std::move(entries);
    return r;
}

fs_result fs_make_dir(const sandbox& sb, const json::object& msg) {
    host_location loc;
    const std::string path = as_string(member(msg, "path"));
    if (auto ec = locate(sb, path, {.create_parents = true, .follow_last = true}, loc))
        return {locate_error(ec, loc.view), {}};
    struct stat st {};
    if (::fstatat(loc.dir.get(), loc.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) return {rpc_error{"already_exists", "directory already exists: " + loc.view}, {}};
        return {rpc_error{"invalid_argument", "path already exists but it is not a directory: " + loc.view}, {}};
    }
    if (::mkdirat(loc.dir.get(), loc.name.c_str(), 0755) != 0)
        return {rpc_error{"internal", "error creating directory " + loc.view + ": " + std::strerror(errno)}, {}};
    json::object entry;
    entry["name"] = loc.name;
    entry["type"] = "FILE_TYPE_DIRECTORY";
    entry["path"] = loc.view;
    fs_result r;
    r.body["entry"] = std::move(entry);
    return r;
}

// rm -rf of `name` in `dirfd`, never following symlinks.
std::error_code remove_tree(int dirfd, const std::string& name) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? std::error_code{} : std::error_code(errno, std::generic_category());
    if (!S_ISDIR(st.st_mode)) {
        if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) return {errno, std::generic_category()};
        return {};
    }
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return {errno, std::generic_category()};
    DIR* dir = ::fdopendir(fd);
    if (!dir) {
        ::close(fd);
        return {errno, std::generic_category()};
    }
    std::vector<std::string> names;
    while (auto* ent = ::readdir(dir)) {
        std::string n = ent->d_name;
        if (n != "." && n != "..") names.push_back(std::move(n));
    }
    std::error_code first;
    for (const auto& n : names)
        if (auto ec = remove_tree(::dirfd(dir), n); ec && !first) first = ec;
    ::closedir(dir);
    if (first) return first;
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) return {errno, std::generic_category()};
    return {};
}

fs_result fs_remove(const sandbox& sb, const json::object& msg) {
    host_location loc;
    const std::string path = as_string(member(msg, "path"));
    if (auto ec = locate(sb, path, {}, loc)) {
        if (ec == std::errc::no_such_file_or_directory) return {};  // absent: fine
        return {locate_error(ec, loc.view), {}};
    }
    if (loc.is_area_root()) return {rpc_error{"invalid_argument", "cannot remove " + loc.view}, {}};
    if (auto ec = remove_tree(loc.dir.get(), loc.name))
        return {rpc_error{"internal", "error removing file or directory: " + ec.message()}, {}};
    return {};
}

fs_result fs_move(const sandbox& sb, const json::object& msg) {
    host_location from, to;
    if (auto ec = locate(sb, as_string(member(msg, "source")), {}, from)) return {locate_error(ec, from.view), {}};
    if (auto ec = locate(sb, as_string(member(msg, "destination")), {.create_parents = true}, to))
        return {locate_error(ec, to.view), {}};
    if (from.is_area_root() || to.is_area_root())
        return {rpc_error{"invalid_argument", "cannot move " + from.view + " to " + to.view}, {}};
    if (::renameat(from.dir.get(), from.name.c_str(), to.dir.get(), to.name.c_str()) != 0) {
        if (errno == ENOENT) return {rpc_error{"not_found", "source file not found: " + from.view}, {}};
        return {rpc_error{"internal", "error renaming: " + std::string(std::strerror(errno))}, {}};
    }
    auto entry = entry_info(sb, to.dir.get(), to.name, to.view);
    fs_result r;
    if (entry) r.body["entry"] = std::move(*entry);
    return r;
}

// ============================================================================
// Dispatch
// ============================================================================

// Unary calls: bare JSON request and response.
// A hostile envd: the configured fake entries, added to every ListDir answer.
void add_fake_entries(const emulator_state& st, json::object& body) {
    if (st.options.fake_entries.empty()) return;
    auto& entries = body["entries"];
    if (!entries.is_array()) entries = json::array();
    for (const auto& f : st.options.fake_entries) {
        json::object e;
        const auto slash = f.path.rfind('/');
        e["name"] = slash == std::string::npos ? f.path : f.path.substr(slash + 1);
        e["type"] = f.type == "directory" ? "FILE_TYPE_DIRECTORY"
                    : f.type == "symlink" ? "FILE_TYPE_SYMLINK"
                                          : "FILE_TYPE_FILE";
        e["path"] = f.path;
        if (!f.content.empty()) e["size"] = std::to_string(f.content.size());
        entries.as_array().push_back(std::move(e));
    }
}

asio::awaitable<void> serve_unary(emulator_state& st, sandbox& sb, std::string_view endpoint, request& req,
                                  response_writer& out) {
    if (!is_json_content(req[http::field::content_type], "application/json")) {
        co_await out.send(make_response(req, http::status::unsupported_media_type, {}, {}));
        co_return;
    }
    rpc_error err;
    auto msg = parse_message(req.body(), err);
    if (!msg) {
        co_await out.send(unary_error(req, err));
        co_return;
    }
    auto state = envd_state_of(sb);
    std::optional<rpc_error> failure;
    json::object body;
    if (endpoint == "process.list") {
        body = list_response(*state);
    } else if (endpoint == "process.signal") {
        failure = send_signal(*state, *msg);
    } else if (endpoint == "process.send_input") {
        failure = co_await send_input(*state, *msg);
    } else if (endpoint == "process.close_stdin") {
        failure = close_stdin(*state, *msg);
    } else {
        fs_result r;
        if (endpoint == "filesystem.stat") r = fs_stat(sb, *msg);
        else if (endpoint == "filesystem.list_dir") {
            r = st.options.bench ? bench_list_dir(*msg) : fs_list_dir(sb, *msg);
            if (!r.error) add_fake_entries(st, r.body);
        }
        else if (endpoint == "filesystem.make_dir") r = fs_make_dir(sb, *msg);
        else if (endpoint == "filesystem.remove") r = fs_remove(sb, *msg);
        else if (endpoint == "filesystem.move") r = fs_move(sb, *msg);
        else r.error = make_error("unimplemented", std::string(endpoint) + " is not implemented by the emulator");
        failure = std::move(r.error);
        body = std::move(r.body);
    }
    if (failure) co_await out.send(unary_error(req, *failure));
    else co_await out.send(unary_ok(req, body));
}

bool is_streaming(std::string_view endpoint) {
    return endpoint == "process.start" || endpoint == "process.connect" || endpoint == "filesystem.watch_dir";
}

}  // namespace

namespace envd_detail {

asio::awaitable<void> serve_rpc(emulator_state& st, std::shared_ptr<sandbox> sb, std::string_view endpoint,
                                request& req, response_writer& out) {
    if (req.method() != http::verb::post) {
        auto res = make_response(req, http::status::method_not_allowed, {}, {});
        res.set(http::field::allow, "POST");
        co_await out.send(std::move(res));
        co_return;
    }
    if (auto err = basic_user_error(req); !err.empty()) {
        co_await out.send(unary_error(req, make_error("unauthenticated", err)));
        co_return;
    }
    if (!is_streaming(endpoint)) {
        co_await serve_unary(st, *sb, endpoint, req, out);
        co_return;
    }
    if (!is_json_content(req[http::field::content_type], "application/connect+json")) {
        co_await out.send(make_response(req, http::status::unsupported_media_type, {}, {}));
        co_return;
    }
    if (endpoint == "process.start") {
        co_await rpc_start(st, std::move(sb), req, out);
    } else if (endpoint == "process.connect") {
        co_await rpc_connect(st, std::move(sb), req, out);
    } else {
        connect_stream stream(out, req, std::nullopt);
        co_await stream.finish(make_error("unimplemented", std::string(endpoint) + " is not implemented by the emulator"));
    }
}

}  // namespace envd_detail

void install_envd(emulator_state& st) {
    auto previous = std::move(st.sandboxes.on_destroy);
    st.sandboxes.on_destroy = [previous = std::move(previous)](sandbox& sb) {
        if (auto state = std::static_pointer_cast<envd_sandbox_state>(sb.envd_state)) {
            state->destroyed = true;
            for (auto& [pid, p] : state->processes) {
                p->proc->kill_and_reap();  // the group and its PID namespace die; bwrap is reaped
                if (p->retention) p->retention->cancel();
                for (auto& s : p->sinks) {
                    s->cut = true;
                    s->notify();
                }
                p->sinks.clear();
            }
            state->processes.clear();
        }
        if (previous) previous(sb);
    };
}

}  // namespace genesis::e2b_emulator
