// json_text.hpp - JSON text as people and Python's json module write it.
//
// Boost.JSON's serialize() writes doubles in scientific form (2.5E0, 1E1). The
// CLI's --json lines, --print-config and the evaluator's command line use these
// functions instead, so that a number reads the same everywhere: 2.5, 10.0, 1e-07.
#pragma once

#include <boost/json/value.hpp>

#include <string>

namespace genesis::launch {

// A double as Python's repr() writes it: the shortest text that reads back as the
// same value, fixed notation from 1e-4 up to 1e16, ".0" on whole numbers ("10.0",
// "0.1", "1e-07", "1e+16"); "nan", "inf", "-inf" for non-finite values.
std::string number_text(double d);

// Compact JSON (one line) with numbers as number_text() writes them; non-finite
// doubles become null.
std::string json_text(const boost::json::value& v);

// Indented JSON (two spaces, a trailing newline), numbers as in json_text().
std::string json_text_pretty(const boost::json::value& v);

}  // namespace genesis::launch
