// emulator_fixture.hpp - the E2B emulator for tests: started in-process on its
// own io_context thread (or as the genesis_e2b_emulator program), a throwaway
// TLS CA made with the openssl CLI, and thread-safe access to the emulator's
// stats, knobs and sandboxes.
//
// Only usable when the emulator library is linked in (check
// `__has_include("emulator.hpp")` before including this header).
#pragma once

#include "emulator.hpp"
#include "faults.hpp"
#include "sandbox_runtime.hpp"
#include "test_support.hpp"

#if __has_include(<genesis/launch/job_launcher.hpp>)
#include <genesis/launch/job_launcher.hpp>
#endif

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace genesis_test {

namespace emu = genesis::e2b_emulator;

inline bool openssl_available() { return std::system("openssl version >/dev/null 2>&1") == 0; }

// bubblewrap is installed and may create namespaces here (sandboxes run commands in it).
inline bool bubblewrap_works() {
    return emu::check_bubblewrap().empty() &&
           std::system("bwrap --ro-bind / / --unshare-pid --proc /proc --dev /dev true >/dev/null 2>&1") == 0;
}

// A throwaway CA (ca.crt) and a certificate for 127.0.0.1 signed by it
// (server.crt, server.key) in `dir`, made with the openssl CLI.
inline bool make_test_pki(const std::filesystem::path& dir) {
    auto q = [](const std::filesystem::path& p) { return "'" + p.string() + "'"; };
    write_file(dir / "server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n");
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    const std::string commands =
        "openssl req -x509" + ec + "-keyout " + q(dir / "ca.key") + " -out " + q(dir / "ca.crt") +
        " -days 1 -subj /CN=genesis-test-ca && openssl req" + ec + "-keyout " + q(dir / "server.key") + " -out " +
        q(dir / "server.csr") + " -subj /CN=127.0.0.1 && openssl x509 -req -in " + q(dir / "server.csr") + " -CA " +
        q(dir / "ca.crt") + " -CAkey " + q(dir / "ca.key") + " -CAcreateserial -out " + q(dir / "server.crt") +
        " -days 1 -extfile " + q(dir / "server.ext");
    return std::system(("(" + commands + ") >/dev/null 2>&1").c_str()) == 0;
}

// What the emulator knew about a sandbox when it ended.
struct ended_sandbox {
    std::string id;
    std::string template_id;
    std::string access_token;
    std::map<std::string, std::string> metadata;
    std::map<std::string, std::string> env_vars;
};

// The emulator on its own io_context thread. Everything that touches the
// emulator goes through on_thread(), which runs on that thread and waits.
class emulator_thread {
public:
    explicit emulator_thread(emu::emulator_options options = {})
        : emulator_(io_.get_executor(), std::move(options)) {}
    ~emulator_thread() { stop(); }
    emulator_thread(const emulator_thread&) = delete;
    emulator_thread& operator=(const emulator_thread&) = delete;

    bool start(std::string& error) {
        if (!emulator_.start(error)) return false;
        // Peak of live sandboxes: between two ends the count only grows, so its
        // maximum is the count just before an end (the hook runs after the
        // sandbox left the registry: size() + 1), or the count now.
        auto& st = emulator_.state();
        auto previous = std::move(st.sandboxes.on_destroy);
        st.sandboxes.on_destroy = [this, &st, previous = std::move(previous)](emu::sandbox& sb) {
            peak_ = std::max(peak_, st.sandboxes.size() + 1);
            ended_.push_back({sb.id, sb.template_id, sb.access_token, sb.metadata, sb.env_vars});
            if (previous) previous(sb);
        };
        url_ = emulator_.api_url();
        key_ = emulator_.api_key();
        thread_ = std::thread([this] { io_.run(); });
        return true;
    }

    void stop() {
        if (!thread_.joinable()) return;
        boost::asio::post(io_, [this] {
            emulator_.stop();
            io_.stop();
        });
        thread_.join();
    }

    const std::string& url() const { return url_; }
    const std::string& api_key() const { return key_; }

    // Runs f(emulator) on the emulator's thread; waits at most 30 s.
    template <class F>
    auto on_thread(F f) -> decltype(f(std::declval<emu::emulator&>())) {
        using R = decltype(f(std::declval<emu::emulator&>()));
        auto task = std::make_shared<std::packaged_task<R()>>([this, f = std::move(f)]() mutable { return f(emulator_); });
        auto future = task->get_future();
        boost::asio::post(io_, [task] { (*task)(); });
        if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready)
            throw std::runtime_error("the emulator's thread did not answer within 30 s");
        return future.get();
    }

    boost::json::object stats() {
        return on_thread([](emu::emulator& e) { return e.stats(); });
    }
    std::int64_t stat(const char* name) { return stats().at(name).to_number<std::int64_t>(); }
    std::int64_t requests(const char* endpoint) {
        auto s = stats();
        const auto& by = s.at("requests").at("by_endpoint").as_object();
        const auto* n = by.if_contains(endpoint);
        return n ? n->to_number<std::int64_t>() : 0;
    }

    // Replaces the fault rules (budgets restart).
    void set_faults(std::vector<emu::fault_rule> rules) {
        on_thread([rules = std::move(rules)](emu::emulator& e) mutable {
            e.state().options.faults = std::move(rules);
            emu::reset_fault_budgets(e.state());
            return 0;
        });
    }
    // Changes other knobs (latency, limits).
    void configure(std::function<void(emu::emulator_options&)> change) {
        on_thread([change = std::move(change)](emu::emulator& e) {
            change(e.state().options);
            return 0;
        });
    }

    // The most sandboxes that were alive at once since start.
    std::size_t peak_live() {
        return on_thread([this](emu::emulator& e) { return std::max(peak_, e.state().sandboxes.size()); });
    }
    std::vector<ended_sandbox> ended() {
        return on_thread([this](emu::emulator&) { return ended_; });
    }
    // Metadata of the sandboxes alive now.
    std::vector<std::map<std::string, std::string>> live_metadata() {
        return on_thread([](emu::emulator& e) {
            std::vector<std::map<std::string, std::string>> out;
            for (const auto& sb : e.state().sandboxes.list()) out.push_back(sb->metadata);
            return out;
        });
    }
    // A sandbox made directly in the registry (as if another process had created it).
    std::string plant_sandbox(std::map<std::string, std::string> metadata, std::chrono::seconds lifetime) {
        return on_thread([&](emu::emulator& e) {
            auto& st = e.state();
            std::map<std::string, std::string> no_env;
            auto sb = st.sandboxes.create(st.options.templates.at("base"), lifetime, metadata, no_env, false);
            return sb->id;
        });
    }

    // live == 0 and every sandbox created was killed, expired or vanished.
    ::testing::AssertionResult no_leaks() {
        auto s = stats();
        const auto live = s.at("live").to_number<std::int64_t>();
        const auto created = s.at("created").to_number<std::int64_t>();
        const auto ended = s.at("killed").to_number<std::int64_t>() + s.at("expired").to_number<std::int64_t>() +
                           s.at("vanished").to_number<std::int64_t>();
        if (live == 0 && created == ended) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "leak: " << boost::json::serialize(s);
    }

private:
    boost::asio::io_context io_;
    emu::emulator emulator_;
    std::thread thread_;
    std::string url_, key_;
    // Emulator thread only:
    std::size_t peak_ = 0;
    std::vector<ended_sandbox> ended_;
};

// The genesis_e2b_emulator program as a child process; reads its ready line.
class emulator_process {
public:
    emulator_process(const std::string& program, const std::vector<std::string>& args) {
        int out[2];
        if (::pipe2(out, O_CLOEXEC) != 0) return;
        std::vector<std::string> argv_storage{program};
        argv_storage.insert(argv_storage.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_storage) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], STDOUT_FILENO);
            const int null = ::open("/dev/null", O_WRONLY);
            if (null >= 0) ::dup2(null, STDERR_FILENO);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(out[1]);
        // The ready line, within 20 s.
        std::string line;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
            pollfd p{out[0], POLLIN, 0};
            if (::poll(&p, 1, 200) <= 0) continue;
            char buf[512];
            const ssize_t n = ::read(out[0], buf, sizeof buf);
            if (n <= 0) break;
            line.append(buf, static_cast<std::size_t>(n));
        }
        ::close(out[0]);
        boost::system::error_code ec;
        auto v = boost::json::parse(line.substr(0, line.find('\n')), ec);
        if (!ec && v.is_object()) ready_ = v.as_object();
    }
    ~emulator_process() { stop(); }
    emulator_process(const emulator_process&) = delete;
    emulator_process& operator=(const emulator_process&) = delete;

    bool ready() const { return !ready_.empty(); }
    std::string field(const char* name) const {
        const auto* v = ready_.if_contains(name);
        return v && v->is_string() ? std::string(v->as_string()) : std::string();
    }
    // SIGTERM, then waits (at most 20 s, then SIGKILL); the exit status.
    int stop() {
        if (pid_ <= 0) return status_;
        ::kill(pid_, SIGTERM);
        int status = 0;
        const bool ended = eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                                      std::chrono::seconds(20));
        if (!ended) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
        }
        pid_ = -1;
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return status_;
    }

private:
    pid_t pid_ = -1;
    int status_ = -1;
    boost::json::object ready_;
};

#if __has_include(<genesis/launch/job_launcher.hpp>)
// An emulator (HTTPS with a throwaway CA when openssl is there) plus launchers
// on one io_context thread of their own: what the E2B launcher tests share.
class e2b_harness {
public:
    explicit e2b_harness(emu::emulator_options options = {}) : options_(std::move(options)) {}
    ~e2b_harness() { stop(); }
    e2b_harness(const e2b_harness&) = delete;
    e2b_harness& operator=(const e2b_harness&) = delete;

    // False + why when it cannot run here (no bubblewrap) or did not start.
    bool start(std::string& error) {
        if (!bubblewrap_works()) {
            error = "bubblewrap cannot run sandboxes here";
            return false;
        }
        if (openssl_available() && make_test_pki(pki_.path())) {
            options_.tls_cert = pki_.path() / "server.crt";
            options_.tls_key = pki_.path() / "server.key";
            tls_ = true;
        }
        emulator_ = std::make_unique<emulator_thread>(options_);
        if (!emulator_->start(error)) return false;
        io_thread_ = std::thread([this] { io_.run(); });
        return true;
    }

    // Shuts every launcher down (their drain sweeps included), then the emulator.
    void stop() {
        shutdown_launchers();
        work_.reset();
        if (io_thread_.joinable()) io_thread_.join();
        emulator_.reset();
    }
    void shutdown_launchers() {
        for (auto& l : launchers_)
            if (l) {
                try {
                    l->shutdown();
                } catch (...) {
                }
            }
        launchers_.clear();
    }

    emulator_thread& emulator() { return *emulator_; }
    boost::asio::io_context& io() { return io_; }
    const std::filesystem::path& dir() const { return tmp_.path(); }

    genesis::launch::launcher_config config() const {
        genesis::launch::launcher_config cfg;
        cfg.type = genesis::launch::job_type::e2b;
        cfg.max_parallel_jobs = 4;
        cfg.eval_program_path = evaluator("ok.py");
        cfg.results_dir = tmp_.path() / "results";
        cfg.e2b.api_url = emulator_->url();
        cfg.e2b.sandbox_url = emulator_->url();
        cfg.e2b.api_key = emulator_->api_key();
        if (tls_) cfg.e2b.ca_file = (pki_.path() / "ca.crt").string();
        cfg.e2b.create_rate = 1000;
        cfg.e2b.timeout = std::chrono::seconds(60);
        return cfg;
    }

    // A launcher on the harness's thread; its log lines go to log().
    genesis::launch::JobLauncher& make(const genesis::launch::launcher_config& cfg,
                                       genesis::launch::log_level level = genesis::launch::log_level::info) {
        launchers_.push_back(genesis::launch::make_launcher(cfg, io_.get_executor()));
        auto& l = *launchers_.back();
        l.set_logger(genesis::launch::logger{level, [this](genesis::launch::log_level, std::string_view m) {
                                                 std::lock_guard lock(log_mutex_);
                                                 log_ += std::string(m) + "\n";
                                             }});
        return l;
    }
    std::string log() {
        std::lock_guard lock(log_mutex_);
        return log_;
    }

    genesis::launch::job_spec spec(const std::string& id, const std::filesystem::path& prog = program("good.py")) const {
        genesis::launch::job_spec s;
        s.job_id = id;
        s.program_path = prog;
        s.results_dir = tmp_.path() / "jobs" / id;
        return s;
    }

private:
    emu::emulator_options options_;
    temp_dir pki_;
    temp_dir tmp_;
    bool tls_ = false;
    std::unique_ptr<emulator_thread> emulator_;
    boost::asio::io_context io_;  // the launchers': one thread
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
    std::thread io_thread_;
    std::vector<std::unique_ptr<genesis::launch::JobLauncher>> launchers_;
    std::mutex log_mutex_;
    std::string log_;
};
#endif

}  // namespace genesis_test
