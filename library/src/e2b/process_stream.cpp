// process_stream.cpp - the Connect stream of a process.Process/Start call: frames
// reassembled from the body as it arrives, each message read as a start, data,
// end or keepalive event, and the end-of-stream message as success or an error.
#include "e2b/e2b_api.hpp"
#include "e2b/wire.hpp"

#include <boost/json/parse.hpp>

namespace genesis::launch::detail::e2b {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;
using std::chrono::milliseconds;

// ---- process events -------------------------------------------------------------------------

std::optional<process_event> parse_process_event(const json::value& message, std::string& why) {
    const auto* root = message.if_object();
    const json::value* event = root ? root->if_contains("event") : nullptr;
    if (!event || !event->is_object()) {
        why = "a stream message without an `event` object";
        return std::nullopt;
    }
    const auto& e = event->get_object();
    process_event out;
    if (const auto* start = e.if_contains("start")) {
        out.t = process_event::type::start;
        const auto* pid = start->is_object() ? start->get_object().if_contains("pid") : nullptr;
        auto n = pid ? integer_of(*pid) : std::optional<std::int64_t>(0);
        if (!n || *n < 0 || *n > std::numeric_limits<std::uint32_t>::max()) {
            why = "a start event with an invalid pid";
            return std::nullopt;
        }
        out.pid = static_cast<std::uint32_t>(*n);
    } else if (const auto* data = e.if_contains("data")) {
        out.t = process_event::type::data;
        if (!data->is_object()) {
            why = "a data event that is not an object";
            return std::nullopt;
        }
        for (const auto& [name, value] : data->get_object()) {
            const auto* text = value.if_string();
            auto bytes = text ? base64_decode(*text) : std::nullopt;
            if (!bytes) {
                why = "a data event with invalid base64 in `" + std::string(name) + "`";
                return std::nullopt;
            }
            if (name == "stdout" || name == "pty")
                out.stdout_bytes += *bytes;
            else if (name == "stderr")
                out.stderr_bytes += *bytes;
        }
    } else if (const auto* end = e.if_contains("end")) {
        out.t = process_event::type::end;
        if (!end->is_object()) {
            why = "an end event that is not an object";
            return std::nullopt;
        }
        const auto& o = end->get_object();
        const json::value* code = o.if_contains("exitCode");
        if (!code) code = o.if_contains("exit_code");
        if (code) {
            auto n = integer_of(*code);
            if (!n || *n < std::numeric_limits<int>::min() || *n > std::numeric_limits<int>::max()) {
                why = "an end event with an invalid exit code";
                return std::nullopt;
            }
            out.end.exit_code = static_cast<int>(*n);
        }
        if (const auto* exited = o.if_contains("exited")) out.end.exited = exited->is_bool() && exited->get_bool();
        out.end.status = string_field(o, "status");
        out.end.error = string_field(o, "error");
    } else if (e.contains("keepalive")) {
        out.t = process_event::type::keepalive;
    }
    return out;
}

process_stream::process_stream(output on_stdout, output on_stderr, std::function<void(std::uint32_t)> on_start)
    : on_stdout_(std::move(on_stdout)), on_stderr_(std::move(on_stderr)), on_start_(std::move(on_start)) {}

void process_stream::feed(std::string_view bytes) {
    if (!error_.empty()) return;
    decoder_.feed(bytes);
    while (error_.empty()) {
        auto frame = decoder_.next();
        if (!frame) break;
        handle(*frame);
    }
    if (decoder_.failed() && error_.empty()) error_ = "bad Connect envelope: " + decoder_.error();
}

void process_stream::handle(const envelope& frame) {
    if (finished()) return;  // nothing may follow the end-stream message
    if (frame.end_stream()) {
        std::string why;
        auto end = parse_end_stream(frame.payload, &why);
        if (!end)
            error_ = "bad end-stream message: " + why;
        else
            end_stream_ = std::move(*end);
        return;
    }
    auto message = parse_json(frame.payload);
    if (!message) {
        error_ = "a stream message is not JSON";
        return;
    }
    std::string why;
    auto event = parse_process_event(*message, why);
    if (!event) {
        error_ = why;
        return;
    }
    switch (event->t) {
    case process_event::type::start:
        if (pid_) break;  // only the first start event counts
        pid_ = event->pid;
        started_at_ = std::chrono::steady_clock::now();
        if (on_start_) on_start_(*pid_);
        break;
    case process_event::type::data:
        if (!event->stdout_bytes.empty() && on_stdout_) on_stdout_(event->stdout_bytes);
        if (!event->stderr_bytes.empty() && on_stderr_) on_stderr_(event->stderr_bytes);
        break;
    case process_event::type::end:
        end_ = std::move(event->end);
        end_->pid = pid();
        break;
    default: break;  // keepalive, or an event kind this client does not know
    }
}

std::optional<connect_error> process_stream::end_stream_error() const {
    if (!end_stream_) return std::nullopt;
    return end_stream_->error;
}

api_result<run_result> process_stream::outcome(std::string_view context) const {
    using result_t = api_result<run_result>;
    if (!error_.empty()) return result_t::failure(make_protocol_error(context, "protocol error: " + error_));
    if (!end_stream_)
        return result_t::failure(make_protocol_error(
            context, decoder_.idle() ? "the stream ended without an EndStreamResponse"
                                     : "the stream ended in the middle of a message"));
    if (auto e = end_stream_to_error(*end_stream_, context)) return result_t::failure(std::move(*e));
    if (!end_) return result_t::failure(make_protocol_error(context, "the process exited without a result (no end event)"));
    return result_t::success(*end_);
}

}  // namespace genesis::launch::detail::e2b
