// results_detail.hpp - read_results() for a backend that already holds the
// bytes of metrics.json / correct.json (it just wrote them), so they are not
// read back from disk; the folder is still listed for result_files.
#pragma once

#include "genesis/launch/results.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace genesis::launch::detail {

// As read_results(dir), with the files' contents given (nullopt: read from `dir`).
evaluation_results read_results(const std::filesystem::path& dir, std::optional<std::string> metrics_text,
                                std::optional<std::string> correct_text);

}  // namespace genesis::launch::detail
