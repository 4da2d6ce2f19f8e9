// e2b_api.hpp - a typed client of E2B's control plane (REST) and of envd (file
// endpoints + Connect RPC) on top of http::client, with the retry policy of
// retry.hpp. docs/e2b.md ("How a job flows through a sandbox") lists the requests.
//
// Single-threaded: an `api` lives on one executor (the launcher's strand) and
// its coroutines run there.
//
// Secrets: the API key and the envd access token are only ever put into request
// headers. They never appear in api_error::message, logs or exceptions. Server
// messages are quoted, cut to ~300 characters and put on one line.
//
// Coroutine parameters are taken by value (they live in the coroutine frame).
// GCC 12: do not pass braced temporaries (`{...}`) directly as arguments; build
// maps/strings in a variable first.
#pragma once

// Relative to this file, so that tests outside library/src can include it too.
#include "connect_codec.hpp"
#include "http_client.hpp"
#include "retry.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace genesis::launch::detail::e2b {

inline constexpr std::string_view envd_port = "49983";

struct api_settings {
    std::string api_key;               // "e2b_…"; sent as X-API-Key only
    std::string domain = "e2b.app";    // sandbox/API domain
    std::string api_url;               // "" = https://api.<domain>
    std::string sandbox_url;           // "" = derived per sandbox (see envd_base_url)
    http::tls_settings tls;
    http::timeouts timeouts;
    backoff_params retry;
    std::string user_agent;            // "" = "genesis-launch/<version>"
    // Idle keep-alive connections kept per origin: at least the number of requests
    // in flight at once, or connections are closed and opened again (over TLS,
    // a handshake each time).
    std::size_t max_idle_per_origin = http::client::default_max_idle_per_origin;
};

// ---- URL derivation (pure) ---------------------------------------------------------

// e2b.app, e2b.dev, e2b.pro, e2b-staging.dev: served by the shared envd host.
bool is_shared_sandbox_domain(std::string_view domain) noexcept;
// settings.api_url, else "https://api.<domain>".
std::string api_base_url(const api_settings& settings);
// settings.sandbox_url, else "https://sandbox.<domain>" for a shared domain,
// else "https://49983-<sandbox_id>.<domain>". `sandbox_domain` is the domain the
// create response named ("" = settings.domain).
std::string envd_base_url(const api_settings& settings, std::string_view sandbox_id, std::string_view sandbox_domain);
// Checks that api_base_url/envd_base_url parse (with a placeholder sandbox id)
// and that the key is set. "" when fine, else one line saying what is wrong.
std::string validate_settings(const api_settings& settings);

// ---- errors and results ------------------------------------------------------------

struct api_error {
    enum class kind {
        transport,      // connection failed (reset, refused, DNS, TLS handshake)
        tls,            // the server's certificate was refused, or the CA file is unusable (configuration)
        timeout,        // a local timeout, or the command's deadline (deadline_exceeded)
        http,           // any other non-success answer (see status)
        protocol,       // the answer made no sense (bad JSON, missing end event, …)
        not_found,      // the sandbox, file or process does not exist (404 / not_found)
        sandbox_gone,   // envd: the proxy's 502 "The sandbox was not found" (killed/expired)
        unauthorized,   // 401/403: bad API key or access token
        rate_limited,   // 429 / resource_exhausted after the retries were spent
        maybe_created,  // create: the request may have reached the server, no answer (look it up by metadata)
        cancelled,      // the caller cancelled (coroutine cancellation or api::close())
    };
    kind k = kind::transport;
    unsigned status = 0;  // HTTP status when one was received (0 otherwise)
    std::string message;  // one line: what we did + why, server message quoted; never secrets
    // The server's Retry-After on a 429/503 that was not retried here (a create:
    // its caller owns the retries).
    std::optional<std::chrono::milliseconds> retry_after;

    // Worth trying again later: transport, rate_limited, timeout (except a
    // command's own deadline: kind timeout with status 504), and http with a
    // transient status (408/429/500/502/503/504).
    bool transient() const noexcept;
};
std::string_view to_string(api_error::kind k) noexcept;

// A tiny std::expected: exactly one of value / error is set.
template <class T>
struct api_result {
    std::optional<T> value;
    std::optional<api_error> error;

    static api_result success(T v) { return api_result{std::move(v), std::nullopt}; }
    static api_result failure(api_error e) { return api_result{std::nullopt, std::move(e)}; }

    bool ok() const noexcept { return value.has_value(); }
    explicit operator bool() const noexcept { return ok(); }
    T& operator*() { return *value; }
    const T& operator*() const { return *value; }
    T* operator->() { return &*value; }
    const T* operator->() const { return &*value; }
};
using api_status = api_result<std::monostate>;  // success carries nothing

// ---- data ---------------------------------------------------------------------------

struct sandbox_handle {
    std::string id;
    std::string template_id;
    std::string envd_access_token;  // "" = unsecured sandbox (no X-Access-Token sent)
    std::string domain;             // from the create response; "" = settings.domain
    std::string envd_version;
};

struct sandbox_summary {  // one entry of list()
    std::string id;
    std::string template_id;
    std::string state;  // "running" / "paused" ("" from the legacy list)
    std::map<std::string, std::string> metadata;
};

enum class file_type { unknown, file, directory, symlink };

struct dir_entry {
    std::string name;
    std::string path;
    file_type type = file_type::unknown;  // a symlink reports its target's type (envd)
    std::int64_t size = 0;
    std::string symlink_target;  // set when the entry is a symlink whose target resolves
};

struct run_result {
    std::uint32_t pid = 0;
    int exit_code = 0;    // -1 when killed by a signal
    bool exited = false;  // false when killed by a signal
    std::string status;   // "exit status 3", "signal: killed"
    std::string error;    // envd's end.error ("" on success)
};

struct upload_file {
    std::string path;   // absolute destination in the sandbox
    std::string bytes;
};

enum class signal_kind { sigterm = 15, sigkill = 9 };

// ---- pure helpers (unit-tested) -------------------------------------------------------

// One decoded `process.Process` stream message ({"event":{...}}).
struct process_event {
    enum class type { start, data, keepalive, end, unknown };
    type t = type::unknown;
    std::uint32_t pid = 0;       // start
    std::string stdout_bytes;    // data (base64 decoded)
    std::string stderr_bytes;    // data
    run_result end;              // end: exitCode/exit_code (missing = 0), exited, status, error
};
// Nullopt + `why` when the message is not a process event (not an object, bad
// base64, wrong field types). Unknown event kinds give type::unknown.
std::optional<process_event> parse_process_event(const boost::json::value& message, std::string& why);

// What a Connect error (end-stream error, or unary error body) means for us.
// deadline_exceeded → timeout; unavailable → transport; unauthenticated /
// permission_denied → unauthorized; not_found → not_found; resource_exhausted →
// rate_limited; canceled → cancelled; anything else → http with the code's
// status. `context` is what we were doing ("run command in sandbox i123").
// Note: "unavailable/unknown on a dead sandbox → sandbox_gone" needs a health
// probe; api::run does that on top.
api_error connect_error_to_api_error(const connect_error& error, std::string_view context);
// The end-stream message of a streaming call: nullopt when it carries no error.
std::optional<api_error> end_stream_to_error(const end_stream_message& end, std::string_view context);

// Follows the body of one process.Process/Start (or Connect) response: Connect
// envelopes (in chunks of any size) → events → the output callbacks and the
// final outcome. No I/O; api::run feeds it.
class process_stream {
public:
    using output = std::function<void(std::string_view)>;
    // on_start (may be empty) is called with the pid when the start event arrives.
    process_stream(output on_stdout, output on_stderr, std::function<void(std::uint32_t)> on_start = {});

    void feed(std::string_view bytes);

    bool started() const noexcept { return pid_.has_value(); }
    // When the start event arrived (steady clock).
    std::optional<std::chrono::steady_clock::time_point> started_at() const noexcept { return started_at_; }
    std::uint32_t pid() const noexcept { return pid_.value_or(0); }
    bool finished() const noexcept { return end_stream_.has_value(); }  // the end-stream frame arrived
    const std::optional<run_result>& end_event() const noexcept { return end_; }
    const std::string& protocol_error() const noexcept { return error_; }  // "" = none so far

    // Once the body ended: the run_result, or the error (a protocol error, the
    // end-stream error, "missing EndStreamResponse", "exited without a result").
    api_result<run_result> outcome(std::string_view context) const;
    // The end-stream's Connect error, if any.
    std::optional<connect_error> end_stream_error() const;

private:
    void handle(const envelope& frame);

    output on_stdout_;
    output on_stderr_;
    std::function<void(std::uint32_t)> on_start_;
    envelope_decoder decoder_;
    std::optional<std::uint32_t> pid_;
    std::optional<std::chrono::steady_clock::time_point> started_at_;
    std::optional<run_result> end_;
    std::optional<end_stream_message> end_stream_;
    std::string error_;
};

enum class plane { control, envd };
// A non-success HTTP answer → api_error. Control plane: 401/403 unauthorized,
// 404 not_found, 429 rate_limited, else http. envd: the same, plus 502 with
// "The sandbox was not found" → sandbox_gone, and Connect error bodies are
// understood. The server's message (JSON `message`, else the raw body) is quoted.
api_error classify_http_error(plane p, unsigned status, std::string_view body, std::string_view context);

// Quotes a server message for api_error::message: single line, at most ~300
// characters (with "…" when cut), JSON-escaped quotes.
std::string quote_server_message(std::string_view text);

// ---- the client -------------------------------------------------------------------------

// Waits `d`; the default uses a steady_timer on the api's executor. Tests inject
// one that returns at once (and records the delays).
using sleeper = std::function<boost::asio::awaitable<void>(std::chrono::milliseconds)>;

// The api must outlive every call it started (its coroutines use it); the
// http::client inside is shared with them and closes when the api goes.
//
// Cancellation: every call honours the awaiting coroutine's terminal
// cancellation (co_spawn with bind_cancellation_slot, or an awaitable operator)
// and api::close(); it then fails with kind::cancelled. Calls never throw
// (except std::bad_alloc). A cancelled run() does not stop the command in the
// sandbox: kill the sandbox, or send_signal() when the pid is known.
class api {
public:
    // Throws std::invalid_argument (message without secrets) when
    // validate_settings() complains or the CA file cannot be loaded.
    api(boost::asio::any_io_executor ex, api_settings settings, sleeper sleep = {});
    ~api();
    api(const api&) = delete;
    api& operator=(const api&) = delete;

    const api_settings& settings() const noexcept { return settings_; }
    http::client& transport() noexcept { return *http_; }
    // Aborts every request in flight (they fail with kind::cancelled) and closes
    // pooled connections. The api stays usable.
    void close();
    // The sandbox is gone: closes idle connections to its own envd host (none to
    // close when envd is reached through a shared host or settings.sandbox_url).
    void forget(const sandbox_handle& sb);
    // Idle pooled connections to the sandbox's envd: requests that can be sent
    // at once without opening a connection.
    std::size_t idle_envd_connections(const sandbox_handle& sb) const;

    // ---- control plane ----
    // POST /v2/sandboxes (fallback POST /sandboxes with "secure":true on 404/405,
    // remembered). One request per call: the caller owns the retries (429/503 come
    // back with their Retry-After); a request that may have reached the server
    // without a usable answer gives kind::maybe_created.
    boost::asio::awaitable<api_result<sandbox_handle>> create(std::string template_id, std::chrono::seconds timeout,
                                                              std::map<std::string, std::string> metadata,
                                                              std::map<std::string, std::string> env_vars);
    // DELETE /sandboxes/{id}: true = killed, false = it did not exist (404).
    boost::asio::awaitable<api_result<bool>> kill(std::string sandbox_id);
    // POST /sandboxes/{id}/timeout: the sandbox expires `timeout` from now.
    boost::asio::awaitable<api_status> set_timeout(std::string sandbox_id, std::chrono::seconds timeout);
    // GET /v2/sandboxes?metadata=…&limit=100 with X-Next-Token paging (fallback
    // GET /sandboxes on 404). Empty filter = all sandboxes of the team.
    boost::asio::awaitable<api_result<std::vector<sandbox_summary>>> list(std::map<std::string, std::string> metadata);

    // ---- envd ----
    // POST /files?path=… with the raw bytes (application/octet-stream); falls back
    // to multipart/form-data on 400/415 (envd < 0.5.7), remembered per api.
    boost::asio::awaitable<api_status> upload(sandbox_handle sb, std::string sandbox_path, std::string bytes);
    // One multipart/form-data POST /files for all of `files` (no `path` query:
    // each part's filename is its destination), as the SDK's files.write([...])
    // does; a single file goes through upload().
    boost::asio::awaitable<api_status> upload_files(sandbox_handle sb, std::vector<upload_file> files);
    // GET /files?path=… (Accept-Encoding: identity): the exact bytes. 404 → not_found.
    boost::asio::awaitable<api_result<std::string>> download(sandbox_handle sb, std::string sandbox_path);
    // filesystem.Filesystem/ListDir (depth 1 = direct children).
    boost::asio::awaitable<api_result<std::vector<dir_entry>>> list_dir(sandbox_handle sb, std::string path,
                                                                        std::uint32_t depth = 1);
    // filesystem.Filesystem/MakeDir (with parents); an existing directory is success.
    boost::asio::awaitable<api_status> make_dir(sandbox_handle sb, std::string path);
    // process.Process/Start of `/bin/bash -l -c <command_line>` (stdin /dev/null),
    // streaming output to the callbacks (raw bytes, chunks of any size, possibly
    // split UTF-8). A non-zero exit is NOT an error: see run_result. Errors:
    // timeout (deadline passed: envd killed the command; also enforced locally
    // with a margin), sandbox_gone, transport (stream cut), protocol (no end
    // event), not_found/http (e.g. bad cwd: invalid_argument → http 400).
    // Retried only before the `start` event, and only when nothing can have run.
    // After a local deadline or a cut stream on a live sandbox, the process is
    // sent SIGKILL (best effort, awaited kill_signal_wait at most) before the error
    // is returned.
    // `timeout` nullopt or 0 = no limit (only the stream_idle timeout then applies).
    // The local deadline is timeout + a margin after the start event; an attempt
    // whose start event has not come that long after its request is a transport
    // error (the command never ran as far as we know), not the command's timeout.
    // A slow request (refusals, a slow handshake) so never shortens the command's
    // own time. on_start, if set, is called with the
    // pid when the command starts (once: the start event of the attempt that ran).
    boost::asio::awaitable<api_result<run_result>> run(sandbox_handle sb, std::string command_line, std::string cwd,
                                                       std::map<std::string, std::string> envs,
                                                       std::optional<std::chrono::milliseconds> timeout,
                                                       std::function<void(std::string_view)> on_stdout,
                                                       std::function<void(std::string_view)> on_stderr,
                                                       std::function<void(std::uint32_t)> on_start = {});
    // process.Process/SendSignal: true = sent, false = no such process.
    boost::asio::awaitable<api_result<bool>> send_signal(sandbox_handle sb, std::uint32_t pid,
                                                         signal_kind sig = signal_kind::sigkill);
    // GET /health: true = envd answers (204), false = the sandbox is gone (502).
    boost::asio::awaitable<api_result<bool>> health(sandbox_handle sb);

private:
    struct call_policy {
        bool idempotent = true;  // may be repeated even when it reached the server
        bool create = false;     // a lost answer means kind::maybe_created
        bool retry = true;       // false: one attempt only (health probes, creates: their caller retries)
    };
    // One request with the retry policy: the response (2xx, or a status that is
    // not retried: the caller interprets it) or the error that ended the attempts.
    boost::asio::awaitable<api_result<http::response>> perform(http::origin o, http::request req, plane p,
                                                               std::string context, call_policy policy);
    boost::asio::awaitable<api_result<http::response>> control_call(boost::beast::http::verb method,
                                                                    std::string target, std::string body,
                                                                    std::string context, call_policy policy);
    boost::asio::awaitable<api_result<http::response>> envd_call(const sandbox_handle& sb, http::request req,
                                                                 std::string context, call_policy policy);
    // A unary Connect call (JSON): POST /<service>/<method>.
    boost::asio::awaitable<api_result<http::response>> rpc_call(const sandbox_handle& sb, std::string method,
                                                                std::string json_body, std::string context,
                                                                call_policy policy);
    struct run_attempt;
    boost::asio::awaitable<run_attempt> run_once(sandbox_handle sb, http::request req, std::string context,
                                                 std::optional<std::chrono::milliseconds> local_deadline,
                                                 const std::function<void(std::string_view)>& on_stdout,
                                                 const std::function<void(std::string_view)>& on_stderr,
                                                 const std::function<void(std::uint32_t)>& on_start);
    boost::asio::awaitable<api_error> explain_broken_stream(const sandbox_handle& sb, api_error error);
    boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds d);
    boost::asio::awaitable<bool> cancelled(std::uint64_t generation_at_start) const;
    std::optional<http::origin> envd_origin(const sandbox_handle& sb, std::string& why) const;
    std::vector<std::pair<std::string, std::string>> control_headers(bool json_body) const;
    std::vector<std::pair<std::string, std::string>> envd_headers(const sandbox_handle& sb) const;

    api_settings settings_;
    sleeper sleep_;
    std::unique_ptr<http::client> http_;
    http::origin api_origin_;
    std::optional<http::origin> sandbox_override_;  // parsed settings.sandbox_url
    std::string user_agent_;
    std::uint64_t generation_ = 0;                   // bumped by close()
    std::set<boost::asio::steady_timer*> sleeping_;  // default sleeper's timers (close() cancels them)
    bool legacy_create_ = false;                     // POST /v2/sandboxes is missing, /sandboxes worked
    bool legacy_list_ = false;                       // GET /v2/sandboxes answered 404 once
    bool multipart_upload_ = false;                  // octet-stream upload refused, multipart worked
};

}  // namespace genesis::launch::detail::e2b
