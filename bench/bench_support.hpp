// bench_support.hpp - what the benchmark programs share: failing with a message,
// reading "--option value" command lines, random names for temp folders.
#pragma once

#include <cstdlib>
#include <exception>
#include <iostream>
#include <random>
#include <string>

namespace genesis_bench {

// "<program>: <message>" on stderr, then exit(status): 1 = the benchmark failed,
// 2 = bad command line.
[[noreturn]] inline void fail(const char* program, const std::string& message, int status = 1) {
    std::cerr << program << ": " << message << "\n";
    std::exit(status);
}

// Walks argv; next() gives each option, value() and number() its argument.
// Bad or missing arguments exit with status 2.
class arguments {
public:
    arguments(const char* program, int argc, char** argv) : program_(program), argc_(argc), argv_(argv) {}

    bool next() {
        if (++i_ >= argc_) return false;
        option_ = argv_[i_];
        return true;
    }
    const std::string& option() const { return option_; }
    std::string value() {
        if (i_ + 1 >= argc_) usage(option_ + " needs a value");
        return argv_[++i_];
    }
    int number() {
        const std::string v = value();
        try {
            std::size_t used = 0;
            const int n = std::stoi(v, &used);
            if (used == v.size()) return n;
        } catch (const std::exception&) {
        }
        usage(option_ + ": '" + v + "' is not a number");
    }
    [[noreturn]] void usage(const std::string& message) const { fail(program_, message, 2); }

private:
    const char* program_;
    int argc_;
    char** argv_;
    int i_ = 0;
    std::string option_;
};

inline std::string random_hex(int n) {
    std::random_device rd;
    std::string s;
    for (int i = 0; i < n; ++i) s += "0123456789abcdef"[rd() % 16];
    return s;
}

}  // namespace genesis_bench
