// The local backend's sweep of escaped processes (kill_marked_processes) on real
// processes: the pids it probes directly instead of listing /proc, and the other
// jobs' leaders it leaves out.
#include "local/child_process.hpp"
#include "test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <vector>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace gd = genesis::launch::detail;
using namespace std::chrono_literals;

namespace {

// Starts `argv` (in a new session with `setsid`, marked with `marker` unless empty).
pid_t start(std::vector<std::string> argv, const std::string& marker, bool setsid) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    if (!marker.empty()) env.push_back(std::string(gd::job_marker_variable) + "=" + marker);
    std::vector<char*> args, envp;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawnattr_t attr;
    ::posix_spawnattr_init(&attr);
    if (setsid) ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    pid_t pid = 0;
    const int err = ::posix_spawn(&pid, args[0], nullptr, &attr, args.data(), envp.data());
    ::posix_spawnattr_destroy(&attr);
    return err == 0 ? pid : -1;
}

// Once started, a process's environment reads empty until exec has set up its new
// stack: a marked one is returned once its marker can be seen.
pid_t sleeper(const std::string& marker = "", bool setsid = false) {
    const pid_t pid = start({"/bin/sleep", "600"}, marker, setsid);
    if (pid > 0 && !marker.empty())
        genesis_test::eventually([&] {
            return genesis_test::read_proc_file("/proc/" + std::to_string(pid) + "/environ").find(marker) !=
                   std::string::npos;
        });
    return pid;
}

// A job's leader that has already exited and been waited for, as when the sweep runs.
pid_t reaped_leader(gd::launched_pids& ours) {
    const pid_t pid = start({"/bin/true"}, "", false);
    ours.add(pid);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return pid;
}

// SIGKILLed (and waited for) now, or still running (then killed and waited for here).
bool was_killed(pid_t pid) {
    const bool running = genesis_test::eventually([&] { return !genesis_test::process_running(pid); }, 1s) == false;
    if (running) ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return !running && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

}  // namespace

// probe_limit 64: the pids after the leader are probed one by one; 0: /proc is listed.
class LocalSweep : public ::testing::TestWithParam<int> {};

TEST_P(LocalSweep, AnEscapedProcessIsKilledAmongOtherJobsLeaders) {
    gd::launched_pids ours;
    const std::string marker = gd::make_job_marker();
    const pid_t leader = reaped_leader(ours);
    const pid_t other = sleeper();  // another job's leader, started after this one
    ours.add(other);
    const pid_t escaped = sleeper(marker, true);  // a daemon of this job: no longer in its group
    const pid_t later = sleeper();
    ours.add(later);
    ASSERT_GT(other, 0);
    ASSERT_GT(escaped, 0);
    ASSERT_GT(later, 0);
    const auto swept = gd::kill_marked_processes(marker, leader, true, &ours, GetParam());
    EXPECT_EQ(swept.escaped, 1u);
    EXPECT_EQ(swept.in_group, 0u);
    EXPECT_TRUE(was_killed(escaped));
    EXPECT_FALSE(was_killed(other));  // unmarked: left alone
    EXPECT_FALSE(was_killed(later));
}

TEST_P(LocalSweep, AMarkedProcessWithThreadsIsKilledOnce) {
    // Threads' ids come from the same counter as pids: /proc/<tid> answers like its
    // process, but only the process is killed (and counted).
    gd::launched_pids ours;
    const std::string marker = gd::make_job_marker();
    const pid_t leader = reaped_leader(ours);
    const pid_t threaded = start({GENESIS_TEST_PYTHON, "-c",
                                  "import threading, time\n"
                                  "for _ in range(4): threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
                                  "time.sleep(600)\n"},
                                 marker, true);
    ASSERT_GT(threaded, 0);
    const auto task = "/proc/" + std::to_string(threaded) + "/task";
    ASSERT_TRUE(genesis_test::eventually([&] {
        std::error_code ec;
        std::size_t n = 0;
        for (std::filesystem::directory_iterator it(task, ec), end; !ec && it != end; it.increment(ec)) ++n;
        return n >= 5;
    }));
    const auto swept = gd::kill_marked_processes(marker, leader, true, &ours, GetParam());
    EXPECT_EQ(swept.escaped, 1u);
    EXPECT_TRUE(was_killed(threaded));
}

INSTANTIATE_TEST_SUITE_P(Local, LocalSweep, ::testing::Values(64, 0),
                         [](const auto& info) { return info.param ? "Probing" : "Listing"; });

TEST(LocalSweepLeaders, LeadersStartedAfterTheJobsAreLeftOut) {
    // Another job's leader is never this job's process, even when (against the rules)
    // it carries this job's marker: with the launcher's leaders known it is left out,
    // without them it is killed.
    const std::string marker = gd::make_job_marker();
    for (bool known : {true, false}) {
        gd::launched_pids ours;
        const pid_t leader = reaped_leader(ours);
        const pid_t other = sleeper(marker, true);
        ASSERT_GT(other, 0);
        ours.add(other);
        const auto swept = gd::kill_marked_processes(marker, leader, true, known ? &ours : nullptr);
        EXPECT_EQ(swept.escaped, known ? 0u : 1u) << known;
        EXPECT_EQ(was_killed(other), !known) << known;
    }
}
