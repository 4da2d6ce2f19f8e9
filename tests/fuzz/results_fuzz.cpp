// Fuzz target: read_results (metrics.json + correct.json of a results folder).
//
// The input up to the first NUL byte is written as metrics.json, the rest as
// correct.json; without a NUL the whole input is correct.json and there is no
// metrics.json. Files go into a private temporary folder. Properties: it never
// throws, it reports correct only when the input says `true`, it warns when
// metrics.json is missing, and it lists exactly the files written.
#include "genesis/launch/results.hpp"
#include "fuzz_check.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <unistd.h>

namespace fs = std::filesystem;
using genesis_fuzz::check;

namespace {

struct scratch_dir {
    fs::path path;
    scratch_dir() {
        std::string pattern = (fs::temp_directory_path() / "genesis_results_fuzz.XXXXXX").string();
        if (!::mkdtemp(pattern.data())) genesis_fuzz::fail("mkdtemp");
        path = pattern;
    }
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

void write_file(const fs::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    check(static_cast<bool>(out), "cannot write the scratch file");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static scratch_dir dir;  // one folder per process, removed at exit
    const auto input = genesis_fuzz::as_text(data, size);
    const auto metrics = dir.path / "metrics.json";
    const auto correct = dir.path / "correct.json";
    std::error_code ec;
    fs::remove(metrics, ec);
    fs::remove(correct, ec);

    std::size_t expected_files = 1;
    if (const auto nul = input.find('\0'); nul != std::string_view::npos) {
        write_file(metrics, input.substr(0, nul));
        write_file(correct, input.substr(nul + 1));
        expected_files = 2;
    } else {
        write_file(correct, input);
    }

    const auto r = genesis::launch::read_results(dir.path);
    check(r.files.size() == expected_files, "files listed do not match the files written");
    if (r.correct) check(input.find("true") != std::string_view::npos, "correct without a `true` in the input");
    if (expected_files == 1) check(!r.warnings.empty(), "no warning for a missing metrics.json");
    return 0;
}
