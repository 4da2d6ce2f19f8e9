// results.hpp - the evaluation contract's rules for reading a results directory,
// shared by every backend.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace genesis::launch {

struct evaluation_results {
    bool correct = false;
    std::string error;
    boost::json::object metrics;
    double combined_score = 0.0;
    std::vector<std::filesystem::path> files;  // every regular file, sorted
    std::vector<std::string> warnings;
};

// Reads metrics.json and correct.json from `dir`:
//  - metrics.json missing or not a JSON object -> {} and a warning;
//  - correct.json missing -> correct=false, error says so;
//  - correct.json malformed -> correct=false, error explains what is wrong.
// Never throws for file content.
evaluation_results read_results(const std::filesystem::path& dir);

// The evaluator's argv after the interpreter:
//   <evaluator> --program_path P --results_dir R [--key value ...]
// true adds `--key`, false/null add nothing, strings are passed as they are,
// other values as compact JSON.
std::vector<std::string> evaluator_arguments(const std::filesystem::path& evaluator,
                                             const std::filesystem::path& program,
                                             const std::filesystem::path& results_dir,
                                             const boost::json::object& extra_args);

}  // namespace genesis::launch
