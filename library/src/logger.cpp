#include "genesis/launch/logger.hpp"

#include <cstdio>
#include <mutex>
#include <string>

namespace genesis::launch {

const char* to_string(log_level l) noexcept {
    switch (l) {
        case log_level::trace: return "trace";
        case log_level::debug: return "debug";
        case log_level::info: return "info";
        case log_level::warning: return "warning";
        case log_level::error: return "error";
        case log_level::off: return "off";
    }
    return "?";
}

logger make_stderr_logger(log_level level) {
    logger l;
    l.level = level;
    l.sink = [](log_level lv, std::string_view msg) {
        static std::mutex m;
        std::string line = "[genesis-launch] ";
        line += to_string(lv);
        line += ": ";
        line += msg;
        line += '\n';
        std::lock_guard lock(m);
        std::fwrite(line.data(), 1, line.size(), stderr);
    };
    return l;
}

}  // namespace genesis::launch
