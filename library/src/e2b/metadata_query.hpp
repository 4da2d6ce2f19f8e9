// metadata_query.hpp - the `metadata` filter of E2B's list endpoints
// (GET /sandboxes, GET /v2/sandboxes), encoded exactly as the JS SDK does and
// read by the E2B API server as the emulator does (emulator/src/connect_wire.*).
//
// The SDK encodes in three layers:
//   1. every key and value with encodeURIComponent,
//   2. the pairs joined by URLSearchParams (which percent-encodes the '%' again),
//   3. the whole string once more as the value of the `metadata` query parameter.
// The server undoes the query encoding, query-unescapes the whole string, splits
// it on '&' and '=', and query-unescapes every key and value.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace genesis::launch::detail::e2b {

// Layers 1 and 2: the value of the `metadata` parameter before the query
// serializer encodes it, e.g. {"job":"demo-42"} -> "job=demo-42".
std::string encode_metadata_filter(const std::map<std::string, std::string>& metadata);

// All three layers: "metadata=<value>", ready to append after '?' or '&'.
// {"a b":"c&d=e/ü"} -> "metadata=a%252520b%3Dc%252526d%25253De%25252F%2525C3%2525BC".
std::string metadata_query_parameter(const std::map<std::string, std::string>& metadata);

}  // namespace genesis::launch::detail::e2b
