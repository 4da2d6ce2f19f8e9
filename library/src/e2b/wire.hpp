// wire.hpp - the E2B API's wire shapes, with no I/O: request bodies as the SDKs
// send them, the parsing of responses, and the small text and JSON helpers the
// client, its error classification and the process stream share. Unit-tested
// through e2b_api_test.cpp; used only by the e2b/ sources.
#pragma once

#include "e2b/e2b_api.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace genesis::launch::detail::e2b {

// Longest server message quoted in an error (bytes).
inline constexpr std::size_t max_quoted_message = 300;

// ---- small text and JSON helpers ----

// A URL path or query component: every byte but RFC 3986's unreserved ones percent-encoded.
std::string encode_component(std::string_view text);
bool contains_ignoring_case(std::string_view haystack, std::string_view needle);
// The JSON value of `text`, or nullopt when it is not JSON.
std::optional<boost::json::value> parse_json(std::string_view text);
// o[key] when it is a string, else "".
std::string string_field(const boost::json::object& o, std::string_view key);
// An integer given as a JSON number or as a decimal string (protobuf int64).
std::optional<std::int64_t> integer_of(const boost::json::value& v);
// The server's own words from an error body: the JSON `message`, else the raw text.
std::string server_message(std::string_view body);
api_error make_error(api_error::kind k, unsigned status, std::string message);
api_error cancelled_error(std::string_view context);
api_error make_protocol_error(std::string_view context, std::string_view what);
// A failed HTTP exchange (no response) as an api_error; one line without secrets.
api_error transport_error(const http::result& r, std::string_view context);
// Transport failures worth another attempt (a wrong certificate is not).
bool retryable_transport(http::failure f);
bool success_status(unsigned status);

// ---- request bodies (ordinary functions: GCC 12 mis-compiles JSON literals in coroutines) ----

boost::json::object string_map(const std::map<std::string, std::string>& map);
// POST /v2/sandboxes (or the legacy POST /sandboxes).
std::string create_body(const std::string& template_id, std::chrono::seconds timeout,
                        const std::map<std::string, std::string>& metadata,
                        const std::map<std::string, std::string>& env_vars, bool legacy);
std::string timeout_body(std::chrono::seconds timeout);
std::string path_body(const std::string& path);
std::string list_dir_body(const std::string& path, std::uint32_t depth);
std::string signal_body(std::uint32_t pid, signal_kind sig);
// StartRequest of `/bin/bash -l -c <command>` as the SDKs send it.
std::string start_request_body(const std::string& command, const std::string& cwd,
                               const std::map<std::string, std::string>& envs);
// A multipart boundary that occurs in none of `contents`.
std::string unique_boundary(const std::vector<const std::string*>& contents);
void append_part(std::string& body, const std::string& boundary, const std::string& path, const std::string& bytes);
// True when `path` travels unchanged as a multipart `filename`: printable ASCII
// other than `"`, `\` and `%`. Servers and clients differ on how the others are
// escaped (`"` as %22 or \", `\` as an escape character, %XX decoded or not), so
// such a file is uploaded on its own, its path in the query string.
bool multipart_safe_name(std::string_view path) noexcept;
std::string multipart_body(const std::string& path, const std::string& bytes, const std::string& boundary);

// ---- response parsing ----

api_result<sandbox_handle> parse_sandbox(std::string_view body, std::string_view context);
// Appends the sandboxes of one listing page; the problem when the body is not one.
std::optional<std::string> append_summaries(std::string_view body, std::vector<sandbox_summary>& out);
file_type parse_file_type(const boost::json::value& v);
api_result<std::vector<dir_entry>> parse_entries(std::string_view body, std::string_view context);
// A server that wants multipart uploads (older envd) answers octet-stream with this.
bool refuses_octet_stream(const http::response& res);
// The numeric `code` of a JSON error body.
std::optional<std::int64_t> body_code(std::string_view body);

}  // namespace genesis::launch::detail::e2b
