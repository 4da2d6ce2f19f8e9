// e2b_api.cpp - the API client itself (see e2b_api.hpp): one retry layer per
// request (perform), the control plane (create, kill, list, timeouts) and envd
// (files, directories, signals, health, and running a command). Wire shapes are
// in wire.cpp, error classification in api_errors.cpp, the process stream in
// process_stream.cpp.
#include "e2b/e2b_api.hpp"
#include "e2b/wire.hpp"
#include "coro_support.hpp"

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
constexpr int max_list_pages = 1000;

// Time allowed on top of a command's own deadline before the call gives up
// locally (envd normally ends the stream at the deadline itself).
milliseconds local_margin(milliseconds timeout) {
    return std::clamp(timeout / 4, milliseconds(500), milliseconds(2000));
}

// The SIGKILL sent to a command that outlived its local deadline is awaited this
// long at most: the sandbox's kill follows anyway, and the job's result is due.
constexpr milliseconds kill_signal_wait{1000};

// A command's local deadline: `limit` after its start event, or after the request
// when no start event has come by then. The timer starts armed for the latter.
asio::awaitable<void> local_deadline_wait(asio::steady_timer& timer, std::shared_ptr<process_stream> reader,
                                          milliseconds limit) {
    for (;;) {
        co_await timer.async_wait(asio::use_awaitable);  // throws when cancelled
        const auto started = reader->started_at();
        if (!started || *started + limit <= std::chrono::steady_clock::now()) co_return;
        timer.expires_at(*started + limit);
    }
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
            error.message += " (gave up after " + std::to_string(retries.attempts()) + " attempts: " +
                             retries.gave_up_because() + ")";
        }
        error.retry_after = retry_after;
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
    // One attempt per call: the launcher's create loop is the one retry layer for
    // creates (it also waits for a free slot and looks up lost sandboxes), so a
    // steady 503 costs max_retries requests, not max_retries squared.
    call_policy policy;
    policy.idempotent = false;
    policy.create = true;
    policy.retry = false;
    bool legacy = legacy_create_;
    for (;;) {
        std::string body = create_body(template_id, timeout, metadata, env_vars, legacy);
        std::string target = legacy ? "/sandboxes" : "/v2/sandboxes";
        auto res = co_await control_call(bhttp::verb::post, std::move(target), std::move(body), context, policy);
        if (!res) co_return result_t::failure(std::move(*res.error));
        if (!legacy && (res->status == 404 || res->status == 405)) {
            legacy = true;  // an API without POST /v2/sandboxes (docs/e2b-wire.md, "Create")
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
    // A name that a multipart filename cannot carry unchanged goes on its own, its
    // path in the query string (one more request, for unusual names only).
    std::vector<upload_file> alone;
    std::erase_if(files, [&](upload_file& f) {
        if (multipart_safe_name(f.path)) return false;
        alone.push_back(std::move(f));
        return true;
    });
    for (auto& f : alone) {
        auto sent = co_await upload(sb, std::move(f.path), std::move(f.bytes));
        if (!sent) co_return sent;
    }
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
    // A stream that broke is a network blip or a dead sandbox: ask envd (docs/e2b-wire.md, "How the SDKs wait").
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
                                                const std::function<void(std::string_view)>& on_stderr,
                                                const std::function<void(std::uint32_t)>& on_start) {
    using namespace asio::experimental::awaitable_operators;
    run_attempt out;
    std::string why;
    auto o = envd_origin(sb, why);
    if (!o) {
        out.error = make_protocol_error(context, why);
        co_return out;
    }
    auto reader = std::make_shared<process_stream>(on_stdout, on_stderr, on_start);
    std::function<void(std::string_view)> sink = [reader](std::string_view bytes) { reader->feed(bytes); };

    http::result r;
    bool deadline_passed = false;
    if (local_deadline) {
        try {
            asio::steady_timer timer(http_->get_executor(), *local_deadline);
            auto streaming = http_->stream(std::move(*o), std::move(req), std::move(sink));
            auto winner = co_await (std::move(streaming) || local_deadline_wait(timer, reader, *local_deadline));
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
        if (!out.started) {
            // Nothing ran as far as we know: the connection or envd failed us, not the command.
            out.error = make_error(api_error::kind::transport, 0,
                                   context + ": the command did not start within " +
                                       std::to_string(local_deadline->count()) + " ms");
            co_return out;
        }
        out.may_still_run = true;
        out.error = make_error(api_error::kind::timeout, 504,
                               context + ": no result within " + std::to_string(local_deadline->count()) +
                                   " ms of its start (the command's time limit plus a margin)");
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
                                                 std::function<void(std::string_view)> on_stderr,
                                                 std::function<void(std::uint32_t)> on_start) {
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
        run_attempt a = co_await run_once(sb, std::move(attempt_request), context, local_deadline, on_stdout, on_stderr,
                                      on_start);
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
        // The command may still be running (a local deadline, a cut stream): stop it,
        // without waiting long on a slow service.
        if (a.may_still_run && a.pid != 0) {
            using namespace asio::experimental::awaitable_operators;
            asio::steady_timer limit(http_->get_executor(), kill_signal_wait);
            (void)co_await (send_signal(sb, a.pid, signal_kind::sigkill) ||
                            limit.async_wait(asio::as_tuple(asio::use_awaitable)));
        }
        co_return result_t::failure(std::move(*a.error));
    }
}

}  // namespace genesis::launch::detail::e2b

