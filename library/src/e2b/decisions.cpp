#include "e2b/decisions.hpp"

#include "outcome.hpp"

namespace genesis::launch::detail::e2b {
using kind = api_error::kind;

std::string_view phase_name(phase p) {
    switch (p) {
        case phase::prepare: return "preparation";
        case phase::create: return "sandbox creation";
        case phase::upload: return "upload";
        case phase::install: return "dependency install";
        case phase::run: return "the evaluation";
        case phase::download: return "the download of results";
    }
    return "?";
}

create_verdict judge_create_error(const api_error& e, bool held, std::string_view template_id,
                                  std::chrono::seconds lifetime) {
    using action = create_verdict::action;
    auto fail = [](outcome o, std::string message) { return create_verdict{action::fail, o, std::move(message)}; };
    switch (e.k) {
        case kind::maybe_created:
            // The sandbox may exist without us knowing its id: find it by its tags
            // and kill it (using it would need its access token, which a listing
            // does not give), then create another.
            return {action::look_up_lost, outcome::infra_error, e.message};
        case kind::rate_limited:
            // E2B's concurrency limit (or request rate) while this launcher holds
            // sandboxes: one of them ending frees a slot, and waiting for that does
            // not use up the job's budget.
            return {held ? action::wait_for_slot : action::retry, outcome::infra_error, e.message};
        case kind::unauthorized:
            return fail(outcome::infra_error, "E2B rejected the API key (E2B_API_KEY): " + e.message);
        case kind::not_found:
            return fail(outcome::setup_failed, "E2B cannot create a sandbox from template '" + std::string(template_id) +
                                                   "' (job_config.template): " + e.message);
        case kind::http:
            if (e.status == 400 || e.status == 404 || e.status == 422)
                return fail(outcome::setup_failed, "E2B refused to create a sandbox (template '" +
                                                       std::string(template_id) + "', lifetime " +
                                                       std::to_string(lifetime.count()) + "s): " + e.message);
            break;
        default:
            break;
    }
    if (!e.transient()) return fail(outcome::infra_error, "could not create a sandbox: " + e.message);
    return {action::retry, outcome::infra_error, e.message};
}

envd_verdict judge_envd_error(phase current, const api_error& e, std::string_view what) {
    const std::string where(what);
    envd_verdict v;
    switch (e.k) {
        case kind::sandbox_gone:
            v.sandbox_lost = true;
            v.message = where + ": " + e.message;
            return v;
        case kind::transport:
        case kind::protocol:
            // The command's stream broke (reset, cut, no end event) while the
            // sandbox lives: the network's fault, not the candidate's. The command
            // is not reattached; the attempt is lost like a vanished sandbox.
            if (current != phase::run && current != phase::install) break;
            v.sandbox_lost = true;
            v.connection_broke = true;
            v.message = where + ": " + e.message;
            return v;
        case kind::unauthorized:
            v.message = where + ": the sandbox refused its access token: " + e.message;
            return v;
        case kind::http:
            // A request the sandbox refused for what it asked (a path outside the
            // allowed folders, ...) is a setup problem; server trouble is not.
            if (current == phase::upload && e.status >= 400 && e.status < 500 && e.status != 408 && e.status != 429) {
                v.result = outcome::setup_failed;
                v.message = where + ": " + e.message;
                return v;
            }
            break;
        default:
            break;
    }
    v.message = where + ": " + e.message;
    return v;
}

lost_verdict judge_lost_sandbox(int attempts_made, bool retry_vanished, phase current, bool connection_broke,
                                std::string_view sandbox_id, std::string_view why) {
    const std::string during(phase_name(current));
    const std::string what = connection_broke
                                 ? "the connection to sandbox " + std::string(sandbox_id) + " broke during " + during
                                 : "sandbox " + std::string(sandbox_id) + " vanished during " + during;
    const int budget = retry_vanished ? max_sandbox_attempts : 1;
    if (attempts_made < budget) return {true, what + " (" + std::string(why) + "); retried on a new sandbox"};
    return {false, what + " (" + std::string(why) + ")" +
                       (retry_vanished ? "; no more retries: " + std::to_string(budget) + " sandboxes were lost mid-job"
                                       : "; not retried (job_config.retry_vanished is false)")};
}

stop_verdict judge_stop(stop_reason why, phase current, std::string_view sandbox_id,
                        std::chrono::milliseconds install_timeout, std::chrono::milliseconds eval_limit) {
    const std::string killed = sandbox_id.empty() ? "" : "; sandbox " + std::string(sandbox_id) + " killed";
    if (why == stop_reason::cancel)
        return {outcome::cancelled, "cancelled during " + std::string(phase_name(current)) + killed};
    if (current == phase::install)
        return {outcome::setup_failed, "dependency install did not finish within job_config.install_timeout (" +
                                           seconds_text(install_timeout) + ")" + killed};
    return {outcome::timeout, "time limit of " + seconds_text(eval_limit) +
                                  " exceeded and the sandbox did not report the end of the command" + killed};
}

}  // namespace genesis::launch::detail::e2b
