// fuzz_check.hpp - shared bits of the fuzz targets.
//
// Every target defines LLVMFuzzerTestOneInput. With GENESIS_LAUNCH_FUZZ=ON (Clang)
// it is linked against libFuzzer; in every other build replay_main.cpp feeds it
// each file of the checked-in corpus and regression folders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace genesis_fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// A broken property is a finding: abort so libFuzzer saves the input and the
// replay test fails.
[[noreturn]] inline void fail(const char* what) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    std::abort();
}

inline void check(bool ok, const char* what) {
    if (!ok) fail(what);
}

}  // namespace genesis_fuzz
