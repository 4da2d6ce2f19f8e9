// sweep.cpp - genesis::launch::sweep_sandboxes: list the sandboxes tagged by
// genesis-launch, kill them (see sweep.hpp).
#include "genesis/launch/sweep.hpp"

#include "e2b/e2b_api.hpp"
#include "e2b/e2b_backend.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <exception>
#include <optional>
#include <utility>

namespace genesis::launch {

namespace {

namespace asio = boost::asio;
namespace e2b = detail::e2b;

constexpr const char* run_key = "genesis_run";
constexpr const char* job_key = "genesis_job";

std::string value_of(const std::map<std::string, std::string>& m, const char* key) {
    auto it = m.find(key);
    return it == m.end() ? std::string() : it->second;
}

struct outcome_of_sweep {
    sweep_report report;
    std::optional<e2b::api_error> list_error;
};

asio::awaitable<outcome_of_sweep> run_sweep(e2b::api& api, sweep_options options) {
    outcome_of_sweep out;
    std::map<std::string, std::string> filter;
    if (!options.run_tag.empty()) filter[run_key] = options.run_tag;
    auto listed = co_await api.list(filter);
    if (!listed) {
        out.list_error = *listed.error;
        co_return out;
    }
    for (const auto& s : *listed) {
        auto tag = s.metadata.find(run_key);
        if (tag == s.metadata.end()) continue;  // not ours
        if (!options.run_tag.empty() && tag->second != options.run_tag) continue;
        swept_sandbox entry;
        entry.id = s.id;
        entry.template_id = s.template_id;
        entry.run_tag = tag->second;
        entry.job_id = value_of(s.metadata, job_key);
        out.report.sandboxes.push_back(std::move(entry));
    }
    std::sort(out.report.sandboxes.begin(), out.report.sandboxes.end(),
              [](const swept_sandbox& a, const swept_sandbox& b) { return a.id < b.id; });
    if (options.dry_run) co_return out;
    for (auto& entry : out.report.sandboxes) {
        std::string id = entry.id;
        auto k = co_await api.kill(id);
        if (!k) {
            entry.error = k.error->message;
            ++out.report.failed;
        } else if (*k) {
            entry.killed = true;
            ++out.report.killed;
        }
    }
    co_return out;
}

// Checks the settings, builds an api on a private io_context and runs `body(api)`
// to completion. Returns nullopt (ec/diag set) when the settings are unusable.
template <class T, class Body>
std::optional<T> with_api(const launcher_config& cfg, boost::system::error_code& ec, diagnostics& diag, Body body) {
    ec = {};
    diag.clear();
    if (cfg.e2b.api_key.empty()) {
        ec = make_error_code(errc::missing_credentials);
        diag.client_message =
            "E2B_API_KEY is not set (set it in the environment or in a .env file in the working directory or a parent)";
        return std::nullopt;
    }
    launcher_config checked = cfg;
    checked.e2b.sweep_on_start = false;  // irrelevant here
    if (auto why = detail::check_e2b_config(checked)) {
        ec = make_error_code(errc::config_error);
        diag.client_message = std::move(*why);
        return std::nullopt;
    }
    asio::io_context io;
    std::optional<e2b::api> api;
    try {
        api.emplace(io.get_executor(), detail::make_api_settings(cfg));
    } catch (const std::exception& e) {  // the message never holds the key
        ec = make_error_code(errc::config_error);
        diag.client_message = e.what();
        return std::nullopt;
    }
    std::optional<T> result;
    std::exception_ptr failure;
    asio::co_spawn(io, body(*api), [&](std::exception_ptr ep, T r) {
        if (ep)
            failure = ep;
        else
            result = std::move(r);
        // Pooled connections and the pool's idle timer would keep run() going.
        api->close();
    });
    io.run();
    if (failure) std::rethrow_exception(failure);
    return result;
}

asio::awaitable<std::optional<e2b::api_error>> probe(e2b::api& api) {
    std::map<std::string, std::string> filter;
    filter[run_key] = "genesis-launch-access-check";
    auto listed = co_await api.list(filter);
    if (listed) co_return std::nullopt;
    co_return *listed.error;
}

}  // namespace

sweep_report sweep_sandboxes(const launcher_config& cfg, const sweep_options& options,
                             boost::system::error_code& ec, diagnostics& diag) {
    auto result = with_api<outcome_of_sweep>(cfg, ec, diag, [&](e2b::api& api) { return run_sweep(api, options); });
    if (ec) return {};
    if (!result || result->list_error) {
        const bool rejected = result && result->list_error->k == e2b::api_error::kind::unauthorized;
        ec = make_error_code(rejected ? errc::missing_credentials : errc::io_error);
        diag.client_message = (rejected ? "E2B rejected the API key (E2B_API_KEY): " : "cannot list E2B sandboxes: ") +
                              (result ? result->list_error->message : std::string("no answer"));
        return {};
    }
    return std::move(result->report);
}

void check_e2b_access(const launcher_config& cfg, boost::system::error_code& ec, diagnostics& diag) {
    auto result = with_api<std::optional<e2b::api_error>>(cfg, ec, diag, [](e2b::api& api) { return probe(api); });
    if (ec) return;
    if (!result) {
        ec = make_error_code(errc::io_error);
        diag.client_message = "cannot reach the E2B service: no answer";
        return;
    }
    if (!*result) return;
    const e2b::api_error& error = **result;
    if (error.k == e2b::api_error::kind::unauthorized) {
        ec = make_error_code(errc::missing_credentials);
        diag.client_message = "E2B rejected the API key (E2B_API_KEY): " + error.message;
    } else {
        ec = make_error_code(errc::io_error);
        diag.client_message = "cannot reach the E2B service: " + error.message;
    }
}

}  // namespace genesis::launch
