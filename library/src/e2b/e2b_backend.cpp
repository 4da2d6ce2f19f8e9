// e2b_backend.cpp - the E2B backend as launcher_core sees it (run one job, drain),
// the end of every attempt (cleanup: the sandbox is killed on every path), the
// sweeps of leftover sandboxes, the API client's settings, and the pure helpers
// of e2b_backend.hpp. One job's steps are in lifecycle.cpp and download.cpp.
#include "e2b/engine.hpp"

#include "outcome.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <utility>

#include <boost/asio/io_context.hpp>

namespace genesis::launch::detail {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using boost::system::error_code;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// ---- pure helpers ---------------------------------------------------------------------

namespace e2b_support {

std::string shell_quote(std::string_view text) {
    auto safe = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               std::string_view("_./=:,+@%-").find(c) != std::string_view::npos;
    };
    if (!text.empty() && std::all_of(text.begin(), text.end(), safe)) return std::string(text);
    std::string out = "'";
    for (char c : text) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    out += '\'';
    return out;
}

std::chrono::seconds sandbox_lifetime(const e2b_params& p, milliseconds evaluation) {
    const milliseconds install = p.dependencies.empty() ? milliseconds(0) : milliseconds(p.install_timeout);
    const milliseconds total = install + evaluation + milliseconds(120s);
    return std::chrono::seconds((total.count() + 999) / 1000);
}

std::optional<fs::path> relative_result_path(std::string_view folder, std::string_view sandbox_path) {
    while (folder.size() > 1 && folder.back() == '/') folder.remove_suffix(1);
    if (sandbox_path.size() <= folder.size() + 1 || sandbox_path.substr(0, folder.size()) != folder ||
        sandbox_path[folder.size()] != '/')
        return std::nullopt;
    std::string_view rest = sandbox_path.substr(folder.size() + 1);
    if (rest.empty() || rest.front() == '/' || rest.size() > max_result_path_bytes) return std::nullopt;
    // No control characters (NUL, newlines, escapes): such names are refused, not mangled.
    if (std::any_of(rest.begin(), rest.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
        return std::nullopt;
    fs::path out;
    while (!rest.empty()) {
        const auto slash = rest.find('/');
        const std::string_view part = rest.substr(0, slash);
        if (part.empty() || part == "." || part == ".." || part.size() > max_result_name_bytes) return std::nullopt;
        out /= std::string(part);
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
        if (rest.empty()) return std::nullopt;  // trailing slash
    }
    return out;
}

std::string printable_name(std::string_view name) {
    constexpr std::size_t shown = 200;
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < name.size() && i < shown; ++i) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (c < 0x20 || c == 0x7f || c == '\\') {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (name.size() > shown) out += "... (" + std::to_string(name.size()) + " bytes)";
    return out;
}

}  // namespace e2b_support

namespace e2b {

// ---- cleanup -----------------------------------------------------------------------------------

// Ends an attempt: its sandbox is killed (cleanup), and the job's result waits for
// that cleanup_wait at most. A slower kill (a busy or failing service) goes on after
// the result: the time limit is a promise to the engine, the kill is our cleanup.
asio::awaitable<void> engine::end_attempt(std::shared_ptr<job_run> j) {
    if (!j->sandbox && !j->create_in_flight) co_return;
    auto ticket = std::make_shared<cleanup_ticket>(asio::any_io_executor(strand_));
    ++cleanups_;
    asio::co_spawn(strand_, cleanup(j, ticket), [self = shared_from_this(), ticket](std::exception_ptr) {
        ticket->finished = true;
        ticket->done.cancel();
        if (--self->cleanups_ == 0) self->cleanups_done_.cancel();
    });
    if (!ticket->finished) {
        using namespace asio::experimental::awaitable_operators;
        asio::steady_timer limit(strand_);
        limit.expires_after(cleanup_wait);
        co_await (ticket->done.async_wait(asio::as_tuple(asio::use_awaitable)) ||
                  limit.async_wait(asio::as_tuple(asio::use_awaitable)));
    }
    if (ticket->finished) co_return;
    ticket->detached = true;
    job_log(log_level::info, *j,
            "the sandbox's kill is still under way after " + seconds_text(cleanup_wait) +
                "; the result does not wait for it (shutdown does)");
}

asio::awaitable<void> engine::cleanup(std::shared_ptr<job_run> j, std::shared_ptr<cleanup_ticket> ticket) {
    if (j->create_in_flight) {
        // Stopped while a create was in flight: it may have made a sandbox.
        auto tags = std::move(*j->create_in_flight);
        j->create_in_flight.reset();
        try {
            co_await kill_lost(j, tags, j->create_sent, ticket);
        } catch (const std::exception&) {
        }
    }
    if (!j->sandbox) co_return;
    const auto t_cleanup = clock::now();
    const e2b::sandbox_handle gone = *j->sandbox;
    std::string id = gone.id;
    j->sandbox.reset();
    // Billed until the kill; counted until it is asked for (the result may not wait for its answer).
    j->r.sandbox_seconds += seconds_between(j->sandbox_since, t_cleanup);
    std::string problem;
    job_log(log_level::debug, *j, "killing sandbox " + id);
    try {
        auto killed = co_await api_->kill(id);
        if (!killed) problem = killed.error->message;
    } catch (const std::exception& e) {
        problem = e.what();
    }
    api_->forget(gone);
    --live_;
    slot_freed_.cancel();  // wakes creates waiting for a slot
    if (!ticket->detached) j->r.timings.cleanup += since(t_cleanup);
    if (!problem.empty()) {
        unkilled_.insert(id);
        const std::string message = "could not kill sandbox " + id + " (" + problem +
                                    "); the shutdown sweep tries again, else it expires at the end of its lifetime";
        job_log(log_level::warning, *j, message);
        if (!ticket->detached) j->r.warnings.push_back(message);
    } else {
        job_log(log_level::debug, *j, "sandbox " + id + " killed");
    }
}

// Kills every sandbox tagged with this launcher's run tag, and those whose kill failed.
asio::awaitable<void> engine::sweep(std::string reason) {
    std::set<std::string> ids = std::move(unkilled_);
    unkilled_.clear();
    std::map<std::string, std::string> filter;
    filter["genesis_run"] = run_tag_;
    try {
        auto listed = co_await api_->list(filter);
        if (!listed)
            log(log_level::warning, "E2B " + reason + " sweep: cannot list sandboxes tagged genesis_run=" + run_tag_ +
                                        " (" + listed.error->message + "); leftovers expire at the end of their lifetime");
        else
            for (const auto& s : *listed) ids.insert(s.id);
        std::size_t killed = 0;
        for (const auto& id : ids) {
            std::string sandbox_id = id;
            auto k = co_await api_->kill(sandbox_id);
            if (k && *k) ++killed;
            if (!k)
                log(log_level::warning, "E2B " + reason + " sweep: cannot kill sandbox " + id + " (" +
                                            k.error->message + ")");
        }
        if (killed)
            log(log_level::warning, "E2B " + reason + " sweep: killed " + std::to_string(killed) +
                                        " leftover sandbox(es) tagged genesis_run=" + run_tag_);
    } catch (const std::exception& e) {
        log(log_level::warning, "E2B " + reason + " sweep failed: " + std::string(e.what()));
    }
}

asio::awaitable<void> engine::startup_sweep() { co_await sweep("start-up"); }

}  // namespace e2b

namespace {

using e2b::engine;
using e2b::job_run;

// ---- the backend ---------------------------------------------------------------------------------

class e2b_backend final : public backend {
public:
    e2b_backend(strand_type strand, const launcher_config& cfg, const logger& log,
                std::unique_ptr<e2b::sandbox_api> api, e2b::backoff_params create_backoff)
        : strand_(strand), engine_(std::make_shared<engine>(strand, cfg, log, std::move(api), create_backoff)) {
        if (cfg.e2b.sweep_on_start && !cfg.e2b.run_tag.empty()) engine_->start_startup_sweep();
    }
    ~e2b_backend() override { engine_->forget_logger(); }

    std::string_view name() const override { return "e2b"; }

    void run(std::shared_ptr<job_context> ctx, std::function<void(job_result)> done) override {
        // Said once, when the launcher's logger is in place (it is not at construction).
        if (!tls_warning_given_ && !engine_->tls_verify()) {
            tls_warning_given_ = true;
            engine_->warn("TLS certificate and host-name verification is OFF (job_config.tls_verify=false)");
        }
        auto j = std::make_shared<job_run>(ctx, asio::any_io_executor(strand_));
        // The completion keeps the engine alive until the job is reported.
        asio::co_spawn(strand_, engine_->lifecycle(j),
                       [e = engine_, complete = job_completion(ctx, "e2b", std::move(done))](
                           std::exception_ptr ep, job_result r) { complete(ep, std::move(r)); });
    }

    void drain(std::function<void()> done) override {
        asio::co_spawn(strand_, engine_->shutdown_sweep(), [e = engine_, done = std::move(done)](std::exception_ptr) {
            e->close_connections();
            done();
        });
    }

private:
    bool tls_warning_given_ = false;
    strand_type strand_;
    std::shared_ptr<engine> engine_;
};

// The HTTP client as the lifecycle's sandbox_api. The calls return the client's
// own awaitables: no coroutine frame of their own.
class http_sandbox_api final : public e2b::sandbox_api {
public:
    http_sandbox_api(asio::any_io_executor ex, e2b::api_settings settings) : api_(std::move(ex), std::move(settings)) {}

    asio::awaitable<e2b::api_result<e2b::sandbox_handle>> create(std::string template_id, std::chrono::seconds timeout,
                                                                 std::map<std::string, std::string> metadata,
                                                                 std::map<std::string, std::string> env) override {
        return api_.create(std::move(template_id), timeout, std::move(metadata), std::move(env));
    }
    asio::awaitable<e2b::api_result<bool>> kill(std::string id) override { return api_.kill(std::move(id)); }
    asio::awaitable<e2b::api_result<std::vector<e2b::sandbox_summary>>> list(
        std::map<std::string, std::string> metadata) override {
        return api_.list(std::move(metadata));
    }
    asio::awaitable<e2b::api_status> upload_files(e2b::sandbox_handle sb, std::vector<e2b::upload_file> files) override {
        return api_.upload_files(std::move(sb), std::move(files));
    }
    asio::awaitable<e2b::api_result<std::string>> download(e2b::sandbox_handle sb, std::string path) override {
        return api_.download(std::move(sb), std::move(path));
    }
    asio::awaitable<e2b::api_result<std::vector<e2b::dir_entry>>> list_dir(e2b::sandbox_handle sb, std::string path,
                                                                          std::uint32_t depth) override {
        return api_.list_dir(std::move(sb), std::move(path), depth);
    }
    asio::awaitable<e2b::api_result<e2b::run_result>> run(e2b::sandbox_handle sb, std::string command_line,
                                                          std::string cwd, std::map<std::string, std::string> envs,
                                                          std::optional<milliseconds> timeout,
                                                          std::function<void(std::string_view)> on_stdout,
                                                          std::function<void(std::string_view)> on_stderr,
                                                          std::function<void(std::uint32_t)> on_start) override {
        return api_.run(std::move(sb), std::move(command_line), std::move(cwd), std::move(envs), timeout,
                        std::move(on_stdout), std::move(on_stderr), std::move(on_start));
    }
    void close() override { api_.close(); }
    void forget(const e2b::sandbox_handle& sb) override { api_.forget(sb); }
    std::size_t idle_envd_connections(const e2b::sandbox_handle& sb) const override {
        return api_.idle_envd_connections(sb);
    }

private:
    e2b::api api_;
};

}  // namespace

std::unique_ptr<backend> make_e2b_backend(strand_type strand, const launcher_config& cfg, const logger& log) {
    auto api = std::make_unique<http_sandbox_api>(asio::any_io_executor(strand), make_api_settings(cfg));
    return std::make_unique<e2b_backend>(std::move(strand), cfg, log, std::move(api), e2b::backoff_params{});
}

backend_factory e2b_backend_factory(sandbox_api_factory make_api, std::optional<e2b::backoff_params> create_backoff) {
    return [make_api = std::move(make_api), create_backoff](strand_type strand, const launcher_config& cfg,
                                                             const logger& log) -> std::unique_ptr<backend> {
        auto api = make_api(asio::any_io_executor(strand), cfg);
        return std::make_unique<e2b_backend>(std::move(strand), cfg, log, std::move(api),
                                             create_backoff.value_or(e2b::backoff_params{}));
    };
}

e2b::api_settings make_api_settings(const launcher_config& cfg) {
    e2b::api_settings s;
    s.api_key = cfg.e2b.api_key;
    s.domain = cfg.e2b.domain;
    s.api_url = cfg.e2b.api_url;
    s.sandbox_url = cfg.e2b.sandbox_url;
    s.tls.verify_peer = cfg.e2b.tls_verify;
    s.tls.ca_file = cfg.e2b.ca_file;
    s.retry.max_attempts = std::max(1, cfg.e2b.max_retries);
    // A job has at most three requests in flight (the results download), all to
    // the same host when envd is reached through a shared one.
    s.max_idle_per_origin = std::max<std::size_t>(http::client::default_max_idle_per_origin,
                                                  3 * static_cast<std::size_t>(std::max(1, cfg.max_parallel_jobs)) + 8);
    return s;
}

std::optional<std::string> check_e2b_config(const launcher_config& cfg) {
    const auto settings = make_api_settings(cfg);
    if (!cfg.e2b.ca_file.empty()) {
        std::error_code ec;
        if (!fs::is_regular_file(cfg.e2b.ca_file, ec))
            return "job_config.ca_file: " + cfg.e2b.ca_file + " is not a file";
        asio::io_context io;
        http::client probe(io.get_executor(), settings.tls);
        if (!probe.tls_error().empty()) return "job_config.ca_file: " + probe.tls_error();
    }
    if (auto why = e2b::validate_settings(settings); !why.empty()) return why;
    // Value ranges are validate()'s (config/schema.cpp), which make_launcher runs first.
    return std::nullopt;
}

}  // namespace genesis::launch::detail

