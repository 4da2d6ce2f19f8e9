#include "faults.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <cstdint>

namespace genesis::e2b_emulator {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 6> fault_kinds = {"status", "reset", "cut_stream", "lose_response", "vanish",
                                                         "stall"};
constexpr std::array<std::string_view, 7> control_endpoints = {"create", "kill",    "set_timeout", "get",
                                                               "list",   "connect", "health"};

bool is_rpc(std::string_view endpoint) {
    return endpoint.starts_with("process.") || endpoint.starts_with("filesystem.");
}

bool is_streaming_process_rpc(std::string_view endpoint) {
    return endpoint == "process.start" || endpoint == "process.connect";
}

// Known endpoint names (control plane) or an envd family prefix; guards against typos.
bool plausible_endpoint(std::string_view e) {
    if (e == "*") return true;
    for (auto name : control_endpoints)
        if (e == name) return true;
    return e.starts_with("files.") || e.starts_with("process.") || e.starts_with("filesystem.") ||
           e.starts_with("envd.");
}

std::string default_message(int status) {
    switch (status) {
        case 400:
            return "Bad request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not found";
        case 409:
            return "Conflict";
        case 429:
            return "Rate limit exceeded";
        case 500:
            return "Internal server error";
        case 502:
            return "Bad gateway";
        case 503:
            return "Service is busy, please try again later";
        case 504:
            return "upstream request timeout";
        case 507:
            return "not enough disk space available";
        default:
            return std::string(http::obsolete_reason(static_cast<http::status>(status)));
    }
}

// The Connect code a Connect server would pair with an HTTP status.
std::string_view connect_code_for(int status) {
    switch (status) {
        case 400:
            return "invalid_argument";
        case 401:
            return "unauthenticated";
        case 403:
            return "permission_denied";
        case 404:
            return "not_found";
        case 409:
            return "aborted";
        case 429:
            return "resource_exhausted";
        case 499:
            return "canceled";
        case 501:
            return "unimplemented";
        case 502:
        case 503:
            return "unavailable";
        case 504:
            return "deadline_exceeded";
        case 500:
            return "internal";
        default:
            return "unknown";
    }
}

// Reads an integer member into `out`; an error message naming `key` otherwise.
std::string read_int(const json::value& v, std::string_view key, int& out) {
    if (v.is_int64() && v.as_int64() >= INT32_MIN && v.as_int64() <= INT32_MAX) {
        out = static_cast<int>(v.as_int64());
        return {};
    }
    if (v.is_uint64() && v.as_uint64() <= INT32_MAX) {
        out = static_cast<int>(v.as_uint64());
        return {};
    }
    return "'" + std::string(key) + "' must be an integer";
}

std::string read_string(const json::value& v, std::string_view key, std::string& out) {
    if (!v.is_string()) return "'" + std::string(key) + "' must be a string";
    out = std::string(v.as_string());
    return {};
}

}  // namespace

response error_response(const request& req, int status, std::string_view message) {
    json::object body{{"code", status}, {"message", message}};
    return make_response(req, static_cast<http::status>(status), json::serialize(body));
}

bool fault_applies(const fault_rule& rule, std::string_view endpoint) {
    if (rule.endpoint != "*" && rule.endpoint != endpoint) return false;
    if (rule.kind == "lose_response" || rule.kind == "vanish") return endpoint == "create";
    if (rule.kind == "cut_stream") return is_streaming_process_rpc(endpoint);
    return true;
}

std::string fault_label(const fault_rule& rule) {
    return rule.kind == "status" ? "status_" + std::to_string(rule.status) : rule.kind;
}

std::optional<fault_rule> take_fault(emulator_state& st, std::string_view endpoint, const fault_subject& subject) {
    auto& rules = st.options.faults;
    if (st.fault_skips.size() != rules.size() || st.fault_counts.size() != rules.size()) reset_fault_budgets(st);
    std::optional<double> draw;  // drawn once, when the first probabilistic rule is reached
    double below = 0;            // the draw must fall in [below, below + p) for that rule
    for (std::size_t i = 0; i < rules.size(); ++i) {
        if (!fault_applies(rules[i], endpoint)) continue;
        if (st.fault_skips[i] > 0) {
            --st.fault_skips[i];
            continue;
        }
        if (st.fault_counts[i] == 0) continue;
        if (rules[i].probability < 1.0) {
            if (!draw) draw = std::uniform_real_distribution<double>(0.0, 1.0)(st.fault_rng);
            const bool hit = *draw >= below && *draw < below + rules[i].probability;
            below += rules[i].probability;
            if (!hit) continue;
        }
        if (st.fault_counts[i] > 0) --st.fault_counts[i];
        ++st.requests.faults_injected;
        const std::string label = fault_label(rules[i]);
        ++st.requests.faults_by_kind[label];
        st.fault_log.push_back({st.requests.total, label, std::string(endpoint), subject.sandbox_id, subject.job});
        return rules[i];
    }
    return std::nullopt;
}

void reset_fault_budgets(emulator_state& st) {
    st.fault_rng.seed(st.options.seed);
    st.fault_skips.clear();
    st.fault_counts.clear();
    for (const auto& rule : st.options.faults) {
        st.fault_skips.push_back(rule.skip);
        st.fault_counts.push_back(rule.count);
    }
}

std::string validate_fault(const fault_rule& rule) {
    if (!plausible_endpoint(rule.endpoint)) return "unknown endpoint '" + rule.endpoint + "'";
    if (std::find(fault_kinds.begin(), fault_kinds.end(), rule.kind) == fault_kinds.end())
        return "unknown kind '" + rule.kind + "' (status, reset, cut_stream, lose_response, vanish or stall)";
    if (rule.kind == "status" && (rule.status < 400 || rule.status > 599))
        return "'status' must be an HTTP error status (400-599)";
    if (rule.retry_after && *rule.retry_after < 0) return "'retry_after' must be >= 0";
    if (rule.skip < 0) return "'skip' must be >= 0";
    if (rule.count < -1) return "'count' must be >= 0, or -1 for always";
    if (rule.after_events < 0) return "'after_events' must be >= 0";
    if (rule.after_ms < 0) return "'after_ms' must be >= 0";
    if (!(rule.probability > 0.0 && rule.probability <= 1.0)) return "'probability' must be in (0, 1]";
    return {};
}

std::string parse_fault(const json::value& v, fault_rule& out) {
    if (!v.is_object()) return "a fault must be an object";
    fault_rule rule;
    bool has_endpoint = false;
    for (const auto& [key, value] : v.as_object()) {
        std::string err;
        if (key == "endpoint") {
            err = read_string(value, key, rule.endpoint);
            has_endpoint = true;
        } else if (key == "kind") {
            err = read_string(value, key, rule.kind);
        } else if (key == "status") {
            err = read_int(value, key, rule.status);
        } else if (key == "retry_after") {
            int seconds = 0;
            err = read_int(value, key, seconds);
            rule.retry_after = seconds;
        } else if (key == "message") {
            err = read_string(value, key, rule.message);
        } else if (key == "skip") {
            err = read_int(value, key, rule.skip);
        } else if (key == "count") {
            err = read_int(value, key, rule.count);
        } else if (key == "after_events") {
            err = read_int(value, key, rule.after_events);
        } else if (key == "after_ms") {
            err = read_int(value, key, rule.after_ms);
        } else if (key == "probability") {
            if (!value.is_number()) err = "'probability' must be a number";
            else rule.probability = value.to_number<double>();
        } else {
            err = "unknown key '" + std::string(key) + "'";
        }
        if (!err.empty()) return err;
    }
    if (!has_endpoint) return "'endpoint' is required";
    if (auto err = validate_fault(rule); !err.empty()) return err;
    out = std::move(rule);
    return {};
}

asio::awaitable<void> answer_status_fault(const fault_rule& rule, std::string_view endpoint, const request& req,
                                          response_writer& out) {
    std::string message = rule.message.empty() ? default_message(rule.status) : rule.message;
    response res;
    if (is_rpc(endpoint)) {
        // Unary calls read this Connect error; streaming calls only look at the status.
        json::object body{{"code", connect_code_for(rule.status)}, {"message", message}};
        res = make_response(req, static_cast<http::status>(rule.status), json::serialize(body));
    } else {
        res = error_response(req, rule.status, message);
    }
    if (rule.status == 429 && rule.retry_after) res.set(http::field::retry_after, std::to_string(*rule.retry_after));
    co_await out.send(std::move(res));
}

std::optional<fault_rule> pending_cut(const emulator_state& st, const request& req) {
    auto it = st.pending_cuts.find(&req);
    if (it == st.pending_cuts.end()) return std::nullopt;
    return it->second;
}

}  // namespace genesis::e2b_emulator
