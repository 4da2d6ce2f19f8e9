// faults.hpp - fault injection (which rule fires for a request, and how a
// `status` fault is answered) and the E2B error bodies shared by the router and
// the control plane.
#pragma once

#include "emulator.hpp"

#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace genesis::e2b_emulator {

// The E2B REST error answer: `status` with {"code":status,"message":...}, JSON.
response error_response(const request& req, int status, std::string_view message);

// Whether `rule` can fire for `endpoint`: the endpoint matches ("*" matches all),
// and the kind makes sense there (lose_response and vanish only for "create",
// cut_stream only for the streaming process RPCs).
bool fault_applies(const fault_rule& rule, std::string_view endpoint);

// The first applicable rule whose budget lets it fire now. Each applicable rule
// first lets `skip` requests through, then fires `count` times (-1 = always),
// each time with its `probability` (one draw per request for all rules below 1:
// the draw falls into at most one of their consecutive intervals). Counts
// st.requests.faults_injected and faults_by_kind, and logs a fault_event.
std::optional<fault_rule> take_fault(emulator_state& st, std::string_view endpoint, const fault_subject& subject = {});

// "status_<code>" for status faults, else the kind.
std::string fault_label(const fault_rule& rule);

// Restores every rule's skip/count budget and reseeds the RNG (after the rules changed).
void reset_fault_budgets(emulator_state& st);

// Checks a rule's fields; an error message, or empty when it is valid.
std::string validate_fault(const fault_rule& rule);

// A rule from its JSON form (the keys of the YAML config's `faults` items).
// An error message naming the key, or empty.
std::string parse_fault(const boost::json::value& v, fault_rule& out);

// Answers a `status` fault in the form the client expects for `endpoint`:
// control plane and envd /files: {"code":N,"message":...}; Connect RPCs:
// {"code":"<connect code>","message":...}. Adds Retry-After for 429 when set.
asio::awaitable<void> answer_status_fault(const fault_rule& rule, std::string_view endpoint, const request& req,
                                          response_writer& out);

// The cut_stream fault the router armed for this envd request, if any (see
// emulator_state::pending_cuts). For envd's streaming handlers.
std::optional<fault_rule> pending_cut(const emulator_state& st, const request& req);

}  // namespace genesis::e2b_emulator
