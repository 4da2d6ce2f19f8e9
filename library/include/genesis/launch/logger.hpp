// logger.hpp - a value-type logger: a minimum level and a callback.
#pragma once

#include <functional>
#include <string_view>

namespace genesis::launch {

enum class log_level { trace = 0, debug, info, warning, error, off };

const char* to_string(log_level) noexcept;

struct logger {
    log_level level = log_level::warning;
    std::function<void(log_level, std::string_view message)> sink;

    bool enabled(log_level l) const noexcept { return sink && l >= level && level != log_level::off; }
    void log(log_level l, std::string_view message) const {
        if (enabled(l)) sink(l, message);
    }
};

// A logger that writes "[genesis-launch] level: message" lines to stderr.
logger make_stderr_logger(log_level level = log_level::warning);

}  // namespace genesis::launch
