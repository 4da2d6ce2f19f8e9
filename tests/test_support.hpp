// test_support.hpp - small helpers shared by the test programs.
#pragma once

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>
#include <vector>

namespace genesis_test {

// A fresh directory under the system temp dir, removed at scope exit.
class temp_dir {
public:
    temp_dir() {
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() /
                ("genesis-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

private:
    std::filesystem::path path_;
};

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << text;
}

// `s` as a single-quoted YAML scalar (quotes doubled).
inline std::string yaml_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
}

// A /proc file's bytes, or what could be read of them: a process that exits
// mid-read makes read() fail with ESRCH, which std::filebuf reports by throwing.
inline std::string read_proc_file(const std::filesystem::path& p) {
    std::string out;
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

// True while `pid` exists and is not a zombie.
inline bool process_running(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return false;
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) return false;
    char state = line[close + 2];
    return state != 'Z' && state != 'X';
}

// Live processes (not zombies, not this one) whose command line, or with
// `environment_too` whose environment, holds `needle` (NULs read as spaces).
inline std::vector<pid_t> processes_mentioning(const std::string& needle, bool environment_too = false) {
    std::vector<pid_t> found;
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        const pid_t pid = static_cast<pid_t>(std::stol(name));
        if (pid == ::getpid()) continue;
        auto holds = [&](const char* file) {
            std::string text = read_proc_file(it->path() / file);
            for (char& c : text)
                if (c == '\0') c = ' ';
            return text.find(needle) != std::string::npos;
        };
        if ((holds("cmdline") || (environment_too && holds("environ"))) && process_running(pid)) found.push_back(pid);
    }
    return found;
}

// Polls `pred` until it holds or `limit` passes (a bound, not a wait-and-hope).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
}

// A positive integer from the environment (test sizes scaled by the build), else `fallback`.
inline int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    return end && *end == '\0' && n > 0 && n < 1'000'000 ? static_cast<int>(n) : fallback;
}

// Counts a batch of jobs down as they finish. wait() returns when all have, or false
// once none has finished for `stall`: a hang guard that holds on a machine of any
// speed (a slow machine finishes jobs slowly, a hung launcher finishes none).
class batch_progress {
public:
    explicit batch_progress(int jobs) : remaining_(jobs) {}
    void one_done() {
        std::lock_guard lock(m_);
        --remaining_;
        cv_.notify_all();
    }
    bool wait(std::chrono::seconds stall) {
        std::unique_lock lock(m_);
        while (remaining_ > 0) {
            const int before = remaining_;
            if (!cv_.wait_for(lock, stall, [&] { return remaining_ != before; })) return false;
        }
        return true;
    }
    int remaining() const {
        std::lock_guard lock(m_);
        return remaining_;
    }

private:
    mutable std::mutex m_;
    std::condition_variable cv_;
    int remaining_;
};

inline std::filesystem::path data_dir() { return GENESIS_TEST_DATA_DIR; }
inline std::filesystem::path evaluator(const std::string& name) { return data_dir() / "evaluators" / name; }
inline std::filesystem::path program(const std::string& name) { return data_dir() / "programs" / name; }

using env_list = std::vector<std::pair<std::string, std::string>>;

// A program as a child process: stdin /dev/null, stdout and stderr to files in
// `log_dir`, extra environment variables, a working directory. Killed at scope exit.
class logged_process {
public:
    logged_process(const std::string& program, const std::vector<std::string>& args, const std::filesystem::path& cwd,
                   const std::filesystem::path& log_dir, const env_list& env = {}) {
        static int counter = 0;
        const std::string stem = std::filesystem::path(program).filename().string() + "-" + std::to_string(++counter);
        out_path_ = log_dir / (stem + ".out");
        err_path_ = log_dir / (stem + ".err");
        std::filesystem::create_directories(log_dir);

        // Everything the child needs is prepared before fork().
        std::vector<std::string> argv_storage{program};
        argv_storage.insert(argv_storage.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_storage) argv.push_back(a.data());
        argv.push_back(nullptr);
        const std::string cwd_s = cwd.string(), out_s = out_path_.string(), err_s = err_path_.string();

        pid_ = ::fork();
        if (pid_ == 0) {
            for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
            const int in = ::open("/dev/null", O_RDONLY);
            const int out = ::open(out_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            const int err = ::open(err_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (in < 0 || out < 0 || err < 0 || ::chdir(cwd_s.c_str()) != 0) ::_exit(126);
            ::dup2(in, STDIN_FILENO);
            ::dup2(out, STDOUT_FILENO);
            ::dup2(err, STDERR_FILENO);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
    }

    ~logged_process() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }

    logged_process(const logged_process&) = delete;
    logged_process& operator=(const logged_process&) = delete;

    pid_t pid() const { return pid_; }

    // Waits at most `limit` for the process to end; false (and the process killed) on timeout.
    bool wait(std::chrono::milliseconds limit) {
        if (reaped_) return true;
        const bool ended = eventually(
            [&] {
                int status = 0;
                if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
                status_ = status;
                reaped_ = true;
                return true;
            },
            limit);
        if (!ended) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status_, 0);
            reaped_ = true;
        }
        return ended;
    }

    // The exit status, or -1 when a signal ended the process.
    int exit_code() const { return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1; }
    std::string out() const { return read_file(out_path_); }
    std::string err() const { return read_file(err_path_); }

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
    int status_ = 0;
    std::filesystem::path out_path_, err_path_;
};


}  // namespace genesis_test
