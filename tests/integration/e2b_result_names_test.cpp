// e2b_result_names_test.cpp - result files with hostile names, from the
// evaluator (symlinks, newlines, escape sequences) and from a hostile envd whose
// directory listing names paths outside the results folder: the E2B backend
// writes nothing outside the local results directory, says what it skipped, and
// judges the job as usual.
#if __has_include("emulator.hpp")

#include "emulator_fixture.hpp"
#include "test_support.hpp"

#include <genesis/launch/job_launcher.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace gl = genesis::launch;
namespace emu = genesis::e2b_emulator;
using namespace std::chrono_literals;
using genesis_test::e2b_harness;
using genesis_test::read_file;
using genesis_test::temp_dir;
using genesis_test::write_file;
using ::testing::HasSubstr;

// Real files with awkward names next to the usual results.
constexpr const char* awkward_py = R"PY(import os, sys
a = sys.argv[1:]
out = a[a.index("--results_dir") + 1]
os.makedirs(out, exist_ok=True)
def put(name, text):
    with open(os.path.join(out, name), "w") as f:
        f.write(text)
put("metrics.json", '{"combined_score": 7}')
put("correct.json", '{"correct": true, "error": null}')
put("ok.txt", "fine")
put("n" * 255, "long but legal")
put("new\nline.txt", "EVIL")
put("esc\x1b[31m.txt", "EVIL")
put("del\x7f.txt", "EVIL")
os.symlink("/etc/passwd", os.path.join(out, "link_to_passwd"))
os.symlink("/", os.path.join(out, "link_to_root"))
os.symlink(os.path.join(out, "ok.txt"), os.path.join(out, "link_to_ok"))
os.symlink("/home/user", os.path.join(out, "link_to_home"))
os.symlink("/nonexistent", os.path.join(out, "dangling"))
)PY";

emu::fake_entry fake(std::string path, std::string type = "file") {
    emu::fake_entry e;
    e.path = std::move(path);
    e.type = std::move(type);
    e.content = "EVIL";
    return e;
}

// Every regular file below `dir` whose content is "EVIL".
std::vector<fs::path> evil_files(const fs::path& dir) {
    std::vector<fs::path> found;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (it->is_regular_file(ec) && !it->is_symlink(ec) && read_file(it->path()) == "EVIL")
            found.push_back(it->path());
    }
    return found;
}

TEST(E2bResultNames, HostileNamesAreRefusedNothingLandsOutsideAndTheJobIsJudgedNormally) {
    temp_dir outside;  // where an absolute local path in the listing points
    const std::string results = "/home/user/results";
    emu::emulator_options options;
    options.fake_entries = {
        fake(results + "/../evil_up.txt"),
        fake(results + "/../../../../evil_root.txt"),
        fake(results + "/sub/../../evil_mid.txt"),
        fake("../evil_relative.txt"),
        fake("/etc/evil_absolute.txt"),
        fake((outside.path() / "evil_local_absolute.txt").string()),
        fake(results + "/" + std::string(300, 'x')),
        fake(results + "/" + [] {
            std::string deep;
            for (int i = 0; i < 600; ++i) deep += "d/";
            return deep + "evil.txt";
        }()),
        fake(results + "/fake\nnewline.txt"),
        fake(results + "/nul"),  // + NUL + "byte.txt", below
        fake(results + "/fake_link", "symlink"),
        fake(results + "/metrics.json/inner.txt"),  // a file where the listing implies a folder
        fake(results + "/./dot.txt"),
        fake(results + "//double_slash.txt"),
        fake(results + "/job_log.out"),
    };
    // The embedded NUL: build that one by hand.
    options.fake_entries[9].path = results + "/nul" + std::string(1, '\0') + "byte.txt";
    e2b_harness h(options);
    std::string error;
    if (!h.start(error)) GTEST_SKIP() << error;
    write_file(h.dir() / "awkward.py", awkward_py);
    auto cfg = h.config();
    cfg.eval_program_path = h.dir() / "awkward.py";
    auto& l = h.make(cfg);
    auto handle = l.submit(h.spec("hostile"));
    ASSERT_EQ(handle.result.wait_for(120s), std::future_status::ready);
    auto r = handle.result.get();
    l.shutdown();

    // Judged as usual.
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    EXPECT_TRUE(r.correct) << r.error;
    EXPECT_EQ(r.combined_score, 7.0);

    // Exactly the safe files arrived.
    const fs::path dir = h.dir() / "jobs" / "hostile";
    std::set<std::string> names;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        names.insert(fs::relative(entry.path(), dir).string());
    const std::set<std::string> expected = {"metrics.json", "correct.json", "ok.txt",    std::string(255, 'n'),
                                            "job_log.out",  "job_log.err"};
    EXPECT_EQ(names, expected);
    EXPECT_EQ(read_file(dir / "job_log.out").find("EVIL"), std::string::npos);

    // Nothing written outside (nor inside) from a hostile name.
    EXPECT_TRUE(evil_files(h.dir()).empty()) << evil_files(h.dir()).front();
    EXPECT_TRUE(evil_files(outside.path()).empty());
    EXPECT_FALSE(fs::exists("/etc/evil_absolute.txt"));
    EXPECT_FALSE(fs::exists("/evil_root.txt"));
    EXPECT_FALSE(fs::exists(h.dir() / "jobs" / "evil_up.txt"));
    EXPECT_FALSE(fs::exists(h.dir() / "jobs" / "evil_mid.txt"));

    // Each refusal is a warning that quotes the name harmlessly (one line, no escapes).
    auto warned = [&](const std::string& part) {
        return std::count_if(r.warnings.begin(), r.warnings.end(),
                             [&](const std::string& w) { return w.find(part) != std::string::npos; });
    };
    std::string all_warnings;
    for (const auto& w : r.warnings) all_warnings += "\n  " + w;
    SCOPED_TRACE("warnings:" + all_warnings);
    for (const auto& w : r.warnings) {
        EXPECT_EQ(w.find('\n'), std::string::npos) << w;
        EXPECT_EQ(w.find('\x1b'), std::string::npos) << w;
        EXPECT_EQ(w.find('\0'), std::string::npos);
        EXPECT_LT(w.size(), 600u) << w;
    }
    EXPECT_EQ(warned("/evil_up.txt (not a safe name"), 1);
    EXPECT_EQ(warned("evil_root.txt (not a safe name"), 1);
    EXPECT_EQ(warned("evil_mid.txt (not a safe name"), 1);
    EXPECT_EQ(warned("evil_relative.txt (not a safe name"), 1);
    EXPECT_EQ(warned("not downloaded: /etc/evil_absolute.txt (not a safe name"), 1);
    EXPECT_EQ(warned("evil_local_absolute.txt (not a safe name"), 1);
    EXPECT_EQ(warned(std::string(181, 'x') + "... (319 bytes) (not a safe name"), 1);
    EXPECT_EQ(warned("d/d/d/d/"), 1);
    EXPECT_EQ(warned("fake\\x0anewline.txt (not a safe name"), 1);
    EXPECT_EQ(warned("nul\\x00byte.txt (not a safe name"), 1);
    EXPECT_EQ(warned("new\\x0aline.txt (not a safe name"), 1);
    EXPECT_EQ(warned("esc\\x1b[31m.txt (not a safe name"), 1);
    EXPECT_EQ(warned("del\\x7f.txt (not a safe name"), 1);
    EXPECT_EQ(warned("/fake_link (a symbolic link)"), 1);
    // A link envd resolves is reported with its target's type and the target:
    // refused as a link. One it cannot resolve (outside what the sandbox may
    // see, or dangling) has no type at all.
    EXPECT_EQ(warned("/link_to_ok (a symbolic link)"), 1);
    EXPECT_EQ(warned("/link_to_home (a symbolic link)"), 1);
    EXPECT_EQ(warned("/link_to_passwd (a symbolic link)") + warned("/link_to_passwd (not a regular file)"), 1);
    EXPECT_EQ(warned("/link_to_root (a symbolic link)") + warned("/link_to_root (not a regular file)"), 1);
    EXPECT_EQ(warned("/dangling (not a regular file)"), 1);
    EXPECT_EQ(warned("metrics.json/inner.txt (cannot create"), 1);
    EXPECT_EQ(warned("/./dot.txt (not a safe name"), 1);
    EXPECT_EQ(warned("//double_slash.txt (not a safe name"), 1);
    EXPECT_EQ(warned("/job_log.out (the launcher writes job_log.out)"), 1);
    EXPECT_TRUE(h.emulator().no_leaks());
}

}  // namespace

#endif
