// local_limits_test.cpp - the local backend's limit and isolation keys: how the
// loader reads them, and which setrlimit calls they plan for the child.
#include "genesis/launch/config.hpp"
#include "local/child_process.hpp"
#include "output_sink.hpp"
#include "test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <optional>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>

namespace gl = genesis::launch;
namespace gd = genesis::launch::detail;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

namespace {

class LocalLimitsConfig : public ::testing::Test {
protected:
    void SetUp() override {
        genesis_test::write_file(dir / "configs" / "config.yaml",
                                 "job_config:\n  eval_program_path: evaluate.py\nevo_config:\n  job_type: local\n");
    }

    gl::loaded_config load(std::vector<std::string> overrides, boost::system::error_code& ec, gl::diagnostics& diag) {
        gl::load_options options;
        options.config_dir = dir / "configs";
        options.working_dir = dir.path();
        options.overrides = std::move(overrides);
        options.getenv = [](const std::string&) { return std::optional<std::string>(); };
        return gl::load_config(options, ec, diag);
    }

    std::string error_of(std::vector<std::string> overrides) {
        boost::system::error_code ec;
        gl::diagnostics diag;
        load(std::move(overrides), ec, diag);
        EXPECT_TRUE(ec);
        return diag.client_message;
    }

    genesis_test::temp_dir dir;
};

TEST_F(LocalLimitsConfig, DefaultsHardenWithoutLimiting) {
    boost::system::error_code ec;
    gl::diagnostics diag;
    const auto cfg = load({}, ec, diag).launcher;
    ASSERT_FALSE(ec) << diag.client_message;
    EXPECT_FALSE(cfg.local.memory_mb);
    EXPECT_FALSE(cfg.local.cpu_seconds);
    EXPECT_FALSE(cfg.local.max_file_mb);
    EXPECT_FALSE(cfg.local.max_open_files);
    EXPECT_FALSE(cfg.local.log_limit_mb);
    EXPECT_FALSE(cfg.local.core_dumps);
    EXPECT_TRUE(cfg.local.private_tmp);
    EXPECT_TRUE(cfg.local.kill_escaped);
    EXPECT_TRUE(cfg.local.kill_on_parent_exit);
    EXPECT_TRUE(cfg.local.network);
    EXPECT_FALSE(cfg.local.max_processes);
    EXPECT_EQ(cfg.local.isolation, gl::local_isolation::none);
}

TEST_F(LocalLimitsConfig, EveryKeyIsRead) {
    boost::system::error_code ec;
    gl::diagnostics diag;
    const auto cfg = load({"+job_config.memory_mb=2048", "+job_config.cpu_seconds=00:01:30",
                           "+job_config.log_limit_mb=100",
                           "+job_config.max_file_mb=64", "+job_config.max_open_files=512",
                           "+job_config.core_dumps=true", "+job_config.private_tmp=false",
                           "+job_config.kill_escaped=false", "+job_config.kill_on_parent_exit=false",
                           "+job_config.network=false", "+job_config.max_processes=64",
                           "+job_config.isolation=bwrap"},
                          ec, diag)
                         .launcher;
    ASSERT_FALSE(ec) << diag.client_message;
    EXPECT_EQ(cfg.local.memory_mb, 2048u);
    EXPECT_EQ(cfg.local.cpu_seconds, 90s);
    EXPECT_EQ(cfg.local.max_file_mb, 64u);
    EXPECT_EQ(cfg.local.max_open_files, 512u);
    EXPECT_EQ(cfg.local.log_limit_mb, 100u);
    EXPECT_TRUE(cfg.local.core_dumps);
    EXPECT_FALSE(cfg.local.private_tmp);
    EXPECT_FALSE(cfg.local.kill_escaped);
    EXPECT_FALSE(cfg.local.kill_on_parent_exit);
    EXPECT_FALSE(cfg.local.network);
    EXPECT_EQ(cfg.local.max_processes, 64u);
    EXPECT_EQ(cfg.local.isolation, gl::local_isolation::bwrap);
    // For the local backend memory_mb is a limit, not the E2B sandbox size.
    EXPECT_FALSE(cfg.e2b.memory_mb);
}

TEST_F(LocalLimitsConfig, MemoryMbIsTheSandboxSizeForE2b) {
    boost::system::error_code ec;
    gl::diagnostics diag;
    const auto cfg = load({"evo_config.job_type=e2b", "+job_config.memory_mb=1024"}, ec, diag).launcher;
    ASSERT_FALSE(ec) << diag.client_message;
    EXPECT_EQ(cfg.e2b.memory_mb, 1024);
    EXPECT_FALSE(cfg.local.memory_mb);
}

TEST_F(LocalLimitsConfig, CpuTimeRoundsUpToWholeSecondsAndNullClears) {
    boost::system::error_code ec;
    gl::diagnostics diag;
    EXPECT_EQ(load({"+job_config.cpu_seconds=1.2"}, ec, diag).launcher.local.cpu_seconds, 2s);
    EXPECT_FALSE(load({"+job_config.memory_mb=null"}, ec, diag).launcher.local.memory_mb);
    EXPECT_FALSE(ec) << diag.client_message;
}

TEST_F(LocalLimitsConfig, BadValuesAreOneLineErrors) {
    EXPECT_THAT(error_of({"+job_config.memory_mb=0"}), HasSubstr("job_config.memory_mb: expected an integer >= 1"));
    EXPECT_THAT(error_of({"+job_config.max_open_files=many"}), HasSubstr("job_config.max_open_files: expected an integer"));
    EXPECT_THAT(error_of({"+job_config.max_file_mb=99999999999999"}), HasSubstr("value too large"));
    EXPECT_THAT(error_of({"+job_config.cpu_seconds=0"}), HasSubstr("job_config.cpu_seconds"));
    EXPECT_THAT(error_of({"+job_config.network=maybe"}), HasSubstr("job_config.network: expected true or false"));
    EXPECT_THAT(error_of({"+job_config.memory_limit=1"}), HasSubstr("did you mean 'memory_mb'"));
    EXPECT_THAT(error_of({"+job_config.isolation=docker"}),
                HasSubstr("job_config.isolation: expected none or bwrap, got"));
    EXPECT_THAT(error_of({"+job_config.max_processes=0"}), HasSubstr("job_config.max_processes: expected an integer >= 1"));
}

const gd::rlimit_setting* find(const gd::child_limits& limits, int resource) {
    for (std::size_t i = 0; i < limits.count; ++i)
        if (limits.settings[i].resource == resource) return &limits.settings[i];
    return nullptr;
}

TEST(LocalLimitsPlan, NothingButCoreDumpsByDefault) {
    gd::child_limits limits;
    EXPECT_EQ(gd::plan_limits({}, limits), "");
    ASSERT_EQ(limits.count, 1u);
    EXPECT_EQ(limits.settings[0].resource, RLIMIT_CORE);
    EXPECT_EQ(limits.settings[0].soft, 0u);

    gl::local_params allow;
    allow.core_dumps = true;
    EXPECT_EQ(gd::plan_limits(allow, limits), "");
    EXPECT_EQ(limits.count, 0u);
}

TEST(LocalLimitsPlan, UnitsAndTheCpuGraceSecond) {
    gl::local_params p;
    p.memory_mb = 300;
    p.cpu_seconds = 7s;
    p.max_file_mb = 2;
    p.max_open_files = 64;
    gd::child_limits limits;
    ASSERT_EQ(gd::plan_limits(p, limits), "");
    const rlim_t mib = 1024 * 1024;
    ASSERT_TRUE(find(limits, RLIMIT_AS));
    EXPECT_EQ(find(limits, RLIMIT_AS)->soft, 300 * mib);
    EXPECT_EQ(find(limits, RLIMIT_AS)->hard, 300 * mib);
    ASSERT_TRUE(find(limits, RLIMIT_CPU));
    EXPECT_EQ(find(limits, RLIMIT_CPU)->soft, 7u);
    EXPECT_EQ(find(limits, RLIMIT_CPU)->hard, 8u);
    ASSERT_TRUE(find(limits, RLIMIT_FSIZE));
    EXPECT_EQ(find(limits, RLIMIT_FSIZE)->hard, 2 * mib);
    ASSERT_TRUE(find(limits, RLIMIT_NOFILE));
    EXPECT_EQ(find(limits, RLIMIT_NOFILE)->soft, 64u);
    EXPECT_TRUE(find(limits, RLIMIT_CORE));
}

TEST(LocalLimitsPlan, AboveOurHardLimitIsRefusedWhenNotRoot) {
    if (::geteuid() == 0) GTEST_SKIP() << "root may raise hard limits";
    rlimit own{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &own), 0);
    if (own.rlim_max == RLIM_INFINITY) GTEST_SKIP() << "no hard limit on open files here";
    gl::local_params p;
    p.max_open_files = static_cast<std::uint64_t>(own.rlim_max) + 1;
    gd::child_limits limits;
    EXPECT_THAT(gd::plan_limits(p, limits),
                HasSubstr("job_config.max_open_files = " + std::to_string(own.rlim_max + 1) +
                          " is above this process's hard limit of " + std::to_string(own.rlim_max)));
    EXPECT_EQ(limits.count, 0u);
}

TEST(LocalLimitsPlan, NetworkIsolationKeepsOurIds) {
    EXPECT_FALSE(gd::plan_network_isolation(true).enabled);
    const auto plan = gd::plan_network_isolation(false);
    EXPECT_TRUE(plan.enabled);
    EXPECT_EQ(plan.user_namespace, ::geteuid() != 0);
    if (plan.user_namespace)
        EXPECT_EQ(plan.uid_map, std::to_string(::geteuid()) + " " + std::to_string(::geteuid()) + " 1\n");
}

TEST(LocalLimitsPlan, MarkersAreDistinctHex) {
    const auto a = gd::make_job_marker(), b = gd::make_job_marker();
    EXPECT_EQ(a.size(), 32u);
    EXPECT_NE(a, b);
    EXPECT_TRUE(std::all_of(a.begin(), a.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }));
}

// ---- the job log cap (output_sink) ----

TEST(LocalLogLimit, ExactlyTheLimitIsNotTruncated) {
    genesis_test::temp_dir dir;
    gd::output_sink sink(1024, {});
    ASSERT_FALSE(sink.open_file(dir / "log", 10));
    sink.write("01234");
    sink.write("56789");
    sink.finish();
    EXPECT_FALSE(sink.file_truncated());
    EXPECT_EQ(genesis_test::read_file(dir / "log"), "0123456789");
}

TEST(LocalLogLimit, PastTheLimitOneMarkEndsTheFile) {
    genesis_test::temp_dir dir;
    std::vector<std::string> lines;
    gd::output_sink sink(1024, [&](std::string_view l) { lines.emplace_back(l); });
    ASSERT_FALSE(sink.open_file(dir / "log", 10));
    sink.write("0123456\n");
    sink.write("789ab\n");
    sink.write("more\n");
    sink.finish();
    EXPECT_TRUE(sink.file_truncated());
    EXPECT_EQ(genesis_test::read_file(dir / "log"),
              "0123456\n78\n[... log limit of 10 bytes reached; the rest is not logged ...]\n");
    EXPECT_EQ(lines, (std::vector<std::string>{"0123456", "789ab", "more"}));
    EXPECT_EQ(sink.capture().text(), "0123456\n789ab\nmore\n");
}

TEST(LocalLogLimit, TheLogFileIsCloseOnExec) {
    genesis_test::temp_dir dir;
    gd::output_sink sink(16, {});
    ASSERT_FALSE(sink.open_file(dir / "log"));
    std::string flags;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        if (std::filesystem::read_symlink(entry.path(), ec) != dir / "log") continue;
        std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
        for (std::string line; std::getline(info, line);)
            if (line.starts_with("flags:")) flags = line.substr(6);
    }
    ASSERT_FALSE(flags.empty()) << "the log file's descriptor was not found";
    EXPECT_NE(std::stoul(flags, nullptr, 8) & O_CLOEXEC, 0u) << flags;
    sink.finish();
}

TEST(LocalBwrap, CommandLineConfinesAndKeepsTheJobsPathsReadable) {
    gd::bwrap_layout layout;
    layout.private_tmp = "/var/tmp/genesis-job-1";
    layout.results_dir = "/tmp/run/results/job-1";
    layout.cwd = "/home/u/project";
    layout.readable = {"/tmp/run/programs", "/home/u/project", "/tmp", "/", "/usr/bin"};
    const auto a = gd::bwrap_arguments(layout);
    auto joined = std::string();
    for (const auto& arg : a) joined += arg + " ";
    EXPECT_THAT(joined, ::testing::StartsWith("--unshare-all --die-with-parent --cap-drop ALL --ro-bind / / --dev /dev "
                                              "--proc /proc --bind /var/tmp/genesis-job-1 /tmp "));
    // Read-only paths after the private /tmp (one each; none that would cover it), then the
    // writable results folder, the working folder, and the end of the options.
    EXPECT_THAT(joined, HasSubstr("/tmp --ro-bind /home/u/project /home/u/project --ro-bind /tmp/run/programs "
                                  "/tmp/run/programs --ro-bind /usr/bin /usr/bin --bind /tmp/run/results/job-1 "
                                  "/tmp/run/results/job-1 --chdir /home/u/project -- "));
    EXPECT_EQ(a.back(), "--");
}

TEST(LocalPidsCgroup, NoUsableFolderIsAOneLineReason) {
    genesis_test::temp_dir dir;
    gd::pids_cgroup cgroup;
    // A plain folder is no cgroup: the job folder is created, has no pids.max, and goes again.
    const auto why = cgroup.create(8, {(dir / "plain").string(), dir.path().string()});
    EXPECT_FALSE(cgroup.active());
    EXPECT_THAT(why, HasSubstr("no writable pids cgroup (cannot write " + dir.path().string() + "/genesis-launch-"));
    EXPECT_EQ(why.find('\n'), std::string::npos);
    EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace

// ---- the jobs' temp folders ----

TEST(LocalTmpJanitor, AFolderIsGoneAtOnceAndDeletedWithEverythingInIt) {
    genesis_test::temp_dir dir;
    namespace fs = std::filesystem;
    const fs::path job_tmp = dir / "genesis-job-1-abcdef";
    genesis_test::write_file(job_tmp / "data.bin", std::string(4096, 'x'));
    genesis_test::write_file(job_tmp / "locked" / "inside.txt", "x");
    fs::permissions(job_tmp / "locked", fs::perms::owner_read, fs::perm_options::replace);  // no write, no search
    fs::path trash;
    {
        gd::tmp_janitor janitor;
        ASSERT_TRUE(janitor.dispose(job_tmp));
        EXPECT_FALSE(fs::exists(job_tmp));  // before any result would be delivered
        trash = janitor.trash();
        EXPECT_EQ(trash.parent_path(), dir.path());
        EXPECT_THAT(trash.filename().string(), ::testing::StartsWith("genesis-launch-trash-"));
    }
    // The destructor waited for the deletion and removed the trash folder.
    EXPECT_FALSE(fs::exists(trash));
    EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(LocalTmpJanitor, AFolderElsewhereIsLeftToTheCaller) {
    genesis_test::temp_dir dir;
    namespace fs = std::filesystem;
    fs::create_directories(dir / "a" / "job-1");
    fs::create_directories(dir / "b" / "job-2");
    gd::tmp_janitor janitor;
    ASSERT_TRUE(janitor.dispose(dir / "a" / "job-1"));
    // The trash is next to the first folder; a rename cannot cross to another parent safely.
    EXPECT_FALSE(janitor.dispose(dir / "b" / "job-2"));
    EXPECT_TRUE(fs::is_directory(dir / "b" / "job-2"));
    EXPECT_FALSE(janitor.dispose(dir / "a" / "no-such-folder"));
    EXPECT_EQ(janitor.take_error(), "");
}

namespace {

// A folder as the backend makes one for a job (mkdtemp: mode 0700), in `parent`.
std::filesystem::path private_folder(const std::filesystem::path& parent, const std::string& prefix) {
    std::string templ = (parent / (prefix + "-XXXXXX")).string();
    if (!::mkdtemp(templ.data())) return {};
    return templ;
}

std::uint64_t inode_of(const std::filesystem::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

TEST(LocalTmpJanitor, AnEmptyPrivateFolderServesTheNextJobUnderANewName) {
    genesis_test::temp_dir dir;
    namespace fs = std::filesystem;
    fs::path reused;
    {
        gd::tmp_janitor janitor;
        EXPECT_EQ(janitor.reuse(dir.path(), "genesis-job-1"), fs::path());  // nothing idle yet
        const fs::path first = private_folder(dir.path(), "genesis-job-1");
        ASSERT_FALSE(first.empty());
        ASSERT_TRUE(gd::reusable_tmp_folder(first));
        const auto ino = inode_of(first);
        ASSERT_TRUE(janitor.dispose(first, true));
        EXPECT_FALSE(fs::exists(first));  // gone from its path, as a deleted one
        EXPECT_EQ(janitor.idle(), 1u);
        EXPECT_EQ(janitor.reuse(dir.path() / "elsewhere", "genesis-job-2"), fs::path());  // another parent
        reused = janitor.reuse(dir.path(), "genesis-job-2");
        ASSERT_FALSE(reused.empty());
        EXPECT_EQ(reused.parent_path(), dir.path());
        EXPECT_THAT(reused.filename().string(), ::testing::StartsWith("genesis-job-2-"));
        EXPECT_EQ(reused.filename().string().size(), std::string("genesis-job-2-XXXXXX").size());
        EXPECT_EQ(inode_of(reused), ino);  // the same folder
        EXPECT_TRUE(fs::is_empty(reused));
        EXPECT_EQ(fs::status(reused).permissions(), fs::perms::owner_all);
        EXPECT_EQ(janitor.idle(), 0u);
        // Back idle again; the destructor removes it.
        ASSERT_TRUE(janitor.dispose(reused, true));
        EXPECT_EQ(janitor.idle(), 1u);
        // Without may_reuse it is deleted even when empty.
        const fs::path other = private_folder(dir.path(), "genesis-job-3");
        ASSERT_TRUE(janitor.dispose(other, false));
        EXPECT_EQ(janitor.idle(), 1u);
    }
    EXPECT_FALSE(fs::exists(reused));
    EXPECT_TRUE(fs::is_empty(dir.path()));  // no idle folder, no trash left
}

TEST(LocalTmpJanitor, OnlyAnEmptyPrivateFolderIsReused) {
    genesis_test::temp_dir dir;
    namespace fs = std::filesystem;
    {
        gd::tmp_janitor janitor;
        // A file, a subfolder, a mode other than 0700, a symbolic link: deleted, never idle.
        const fs::path with_file = private_folder(dir.path(), "genesis-job-file");
        genesis_test::write_file(with_file / "left.txt", "x");
        const fs::path with_folder = private_folder(dir.path(), "genesis-job-folder");
        fs::create_directory(with_folder / "sub");
        const fs::path opened = private_folder(dir.path(), "genesis-job-open");
        fs::permissions(opened, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
        const fs::path target = private_folder(dir.path(), "target");
        const fs::path link = dir / "genesis-job-link";
        fs::create_directory_symlink(target, link);
        EXPECT_FALSE(gd::reusable_tmp_folder(with_file));
        EXPECT_FALSE(gd::reusable_tmp_folder(with_folder));
        EXPECT_FALSE(gd::reusable_tmp_folder(opened));
        EXPECT_FALSE(gd::reusable_tmp_folder(link));
        EXPECT_FALSE(gd::reusable_tmp_folder(dir / "no-such-folder"));
        EXPECT_TRUE(gd::reusable_tmp_folder(target));
        // An extended attribute (an ACL would be one) also rules it out, where the file system has them.
        const fs::path with_xattr = private_folder(dir.path(), "genesis-job-xattr");
        if (::setxattr(with_xattr.c_str(), "user.genesis", "1", 1, 0) == 0)
            EXPECT_FALSE(gd::reusable_tmp_folder(with_xattr));
        for (const auto& p : {with_file, with_folder, opened}) {
            ASSERT_TRUE(janitor.dispose(p, true)) << p;
            EXPECT_FALSE(fs::exists(p));
        }
        EXPECT_EQ(janitor.idle(), 0u);
        EXPECT_EQ(janitor.reuse(dir.path(), "genesis-job-next"), fs::path());
        fs::remove(link);
        fs::remove(target);
        fs::remove(with_xattr);

        // Checked again when taken: a folder that got a file while idle is deleted instead.
        const fs::path empty = private_folder(dir.path(), "genesis-job-late");
        ASSERT_TRUE(janitor.dispose(empty, true));
        ASSERT_EQ(janitor.idle(), 1u);
        const fs::path idle = janitor.trash() / empty.filename();
        ASSERT_TRUE(fs::is_directory(idle));
        genesis_test::write_file(idle / "late.txt", "written after its job ended");
        EXPECT_EQ(janitor.reuse(dir.path(), "genesis-job-next"), fs::path());
        EXPECT_EQ(janitor.idle(), 0u);
    }
    EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(LocalSweepLeaders, OnlyLeadersAddedAfterTheJobsCount) {
    gd::launched_pids ours;
    ours.add(100);
    ours.add(101);
    ours.add(103);
    EXPECT_TRUE(ours.started_after(100, 101));
    EXPECT_TRUE(ours.started_after(100, 103));
    EXPECT_FALSE(ours.started_after(100, 102));  // not ours
    EXPECT_FALSE(ours.started_after(101, 100));  // ours, but older
    EXPECT_FALSE(ours.started_after(99, 101));   // the job's leader is not known: nothing counts
    // A pid handed out again after a wrap of the counter is judged by its latest start.
    ours.add(100);
    EXPECT_FALSE(ours.started_after(101, 105));
    EXPECT_TRUE(ours.started_after(103, 100));
    EXPECT_FALSE(ours.started_after(100, 101));
    // The last 1024 leaders are kept.
    for (pid_t p = 1000; p < 1000 + 1024; ++p) ours.add(p);
    EXPECT_FALSE(ours.started_after(100, 1000));
    EXPECT_TRUE(ours.started_after(1000, 2023));
    EXPECT_GT(ours.last_handed_out(), 0);
}
