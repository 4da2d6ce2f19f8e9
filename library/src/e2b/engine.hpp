// engine.hpp - the E2B backend's insides, shared by its source files: one job's
// state (job_run) and the engine that runs every job of one launcher. The
// decisions the engine acts on are in decisions.hpp; the steps are in
// lifecycle.cpp (prepare, create, upload, install, run), download.cpp (results)
// and e2b_backend.cpp (cleanup, sweeps, the backend interface).
#pragma once

#include "config/schema.hpp"
#include "e2b/decisions.hpp"
#include "e2b/e2b_api.hpp"
#include "e2b/e2b_backend.hpp"
#include "e2b/sandbox_api.hpp"
#include "launcher_core.hpp"
#include "output_sink.hpp"
#include "posix_io.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace genesis::launch::detail::e2b {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using boost::system::error_code;
using std::chrono::milliseconds;
using namespace std::chrono_literals;


using e2b_support::shell_quote;

constexpr std::string_view home_dir = "/home/user";
constexpr std::string_view results_folder = "/home/user/results";
constexpr std::string_view evaluator_target = "/home/user/evaluate.py";
// Our own watchdog fires this long after a command's limit (envd's deadline and
// the API client's local deadline normally end the command first).
constexpr auto watchdog_margin = 15s;
// A job's result waits this long at most for its sandbox's kill; a slower kill goes
// on after the result (shutdown() waits for it, the sweep catches what it missed).
constexpr auto cleanup_wait = 2s;
// An evaluator stopped at its time limit: what it wrote is fetched within
// kill_grace + this, or not at all (the result is due, whatever the service does).
constexpr auto results_margin = 2s;
constexpr std::uint32_t listing_depth = 64;
constexpr std::size_t pip_capture_bytes = 8 * 1024;

inline milliseconds since(clock::time_point t) { return std::chrono::duration_cast<milliseconds>(clock::now() - t); }

inline double seconds_between(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

inline std::string random_hex(std::size_t digits) {
    static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                            static_cast<std::uint64_t>(clock::now().time_since_epoch().count())};
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(digits);
    for (std::size_t i = 0; i < digits; ++i) out += hex[rng() & 0xf];
    return out;
}


// One open, one fstat and the reads (no separate existence checks).
inline bool read_whole_file(const fs::path& path, std::string& out, std::string& why) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        why = errno == ENOENT ? "not found" : std::string("cannot be read: ") + std::strerror(errno);
        return false;
    }
    struct ::stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        why = "not a regular file";
        return false;
    }
    out.clear();
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    char more[4096];  // past the size fstat gave: the file grew meanwhile
    for (;;) {
        const bool inside = done < out.size();
        const ssize_t n = inside ? ::read(fd, out.data() + done, out.size() - done) : ::read(fd, more, sizeof more);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ::close(fd);
            why = "read error";
            return false;
        }
        if (n == 0) break;
        if (!inside) out.append(more, static_cast<std::size_t>(n));
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    out.resize(done);
    return true;
}

// job_log.out / job_log.err: every byte of pip's and the evaluator's output, as
// it arrives (so `tail -f` works), with a header line before each command.
// A plain descriptor: each chunk is one write(2), and no stdio buffer is held
// per job (hundreds of jobs are in flight at once).
class log_file {
public:
    log_file() = default;
    ~log_file() { close(); }
    log_file(const log_file&) = delete;
    log_file& operator=(const log_file&) = delete;

    std::error_code open(const fs::path& path) {
        close();
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) return {errno, std::generic_category()};
        return {};
    }
    void write(std::string_view bytes) {
        if (fd_ >= 0) (void)write_all(fd_, bytes);  // a full disk loses log bytes, never the job
    }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

using e2b::phase;
using e2b::phase_name;
using e2b::stop_reason;
// How a phase ended: go on; the job is decided (r.result set, or a stop); the
// sandbox vanished (maybe retried on a new one).
enum class step { ok, failed, gone };
enum class attempt_end { done, retry };

// One attempt's cleanup, which may outlive the job's result.
struct cleanup_ticket {
    explicit cleanup_ticket(asio::any_io_executor ex) : done(std::move(ex), clock::time_point::max()) {}
    asio::steady_timer done;  // cancelled when the cleanup ends
    bool finished = false;
    bool detached = false;  // the result went without it: it writes nothing into the job's result
};

struct upload_item {
    std::string target;  // absolute sandbox path
    std::shared_ptr<const std::string> bytes;  // shared by the jobs that upload the same file
    std::string source;  // local path, for messages
};

// The evaluator and job_config.additional_files, read once and shared by every job
// while the file stays the same (device, inode, size, modification and change
// times): one stat per file and job instead of reading it again, and one copy in
// memory however many jobs are in flight. The candidate programs are read per job.
class input_cache {
public:
    // The file's bytes, or nullptr and `why`.
    std::shared_ptr<const std::string> get(const fs::path& path, std::string& why) {
        struct ::stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            why = errno == ENOENT ? "not found" : std::string("cannot be read: ") + std::strerror(errno);
            return nullptr;
        }
        if (!S_ISREG(st.st_mode)) {
            why = "not a regular file";
            return nullptr;
        }
        const std::string key = path.string();
        if (auto it = entries_.find(key); it != entries_.end() && same(it->second.st, st)) return it->second.bytes;
        std::string bytes;
        if (!read_whole_file(path, bytes, why)) return nullptr;
        if (entries_.size() >= max_entries) entries_.clear();  // a bound, not a policy: a few files are expected
        auto shared = std::make_shared<const std::string>(std::move(bytes));
        entries_[key] = entry{st, shared};
        return shared;
    }

    static constexpr std::size_t max_entries = 256;

private:
    struct entry {
        struct ::stat st;
        std::shared_ptr<const std::string> bytes;
    };
    static bool same(const struct ::stat& a, const struct ::stat& b) {
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
               a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
               a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
    }
    std::map<std::string, entry> entries_;
};

// Everything about one job; shared by its coroutines and its cancel hook.
struct job_run {
    job_run(std::shared_ptr<job_context> c, asio::any_io_executor ex) : ctx(std::move(c)), watchdog(std::move(ex)) {}

    std::shared_ptr<job_context> ctx;
    job_result r;

    stop_reason stop = stop_reason::none;
    phase current = phase::prepare;
    asio::cancellation_signal cancel_phases;  // cancels the attempt's phases, never its cleanup
    asio::steady_timer watchdog;              // a command's local deadline

    // Prepared locally.
    std::vector<upload_item> uploads;
    // metrics.json / correct.json as written into the results folder by this
    // attempt's download (finalize() then need not read them back).
    std::optional<std::string> metrics_written, correct_written;
    // The results folder was made for this job: then every file in it is one the
    // launcher wrote (listed here), and it need not be listed again at the end.
    bool results_dir_made = false;
    std::vector<fs::path> files_written;
    std::string program_target;
    std::map<std::string, std::string> env;
    milliseconds eval_limit{0};
    log_file out_log, err_log;
    bool installed = false;  // pip ran in this attempt (a header then marks the evaluator's output)

    // The evaluator's output of the current attempt.
    std::unique_ptr<output_sink> out, err;

    // The sandbox of the current attempt.
    std::optional<e2b::sandbox_handle> sandbox;
    clock::time_point sandbox_since{};
    int attempts = 0;
    std::string gone_message;  // why the sandbox was considered gone
    bool connection_broke = false;  // gone because the command's connection broke (the sandbox may live)
    // Tags of a create request in flight (set while it is awaited): when the job
    // is stopped meanwhile, cleanup looks for the sandbox it may have made.
    std::optional<std::map<std::string, std::string>> create_in_flight;
    clock::time_point create_sent{};

    void request_stop(stop_reason why) {
        if (stop != stop_reason::none) return;
        stop = why;
        watchdog.cancel();
        cancel_phases.emit(asio::cancellation_type::terminal);
    }

    void log_both(std::string_view line) {
        out_log.write(line);
        err_log.write(line);
    }
};

// ---- the engine: everything shared by the jobs of one launcher --------------------------

class engine : public std::enable_shared_from_this<engine> {
public:
    // `create_backoff`: the waits between creates (max_attempts comes from max_retries).
    engine(strand_type strand, const launcher_config& cfg, const logger& log, std::unique_ptr<sandbox_api> api,
           backoff_params create_backoff)
        : strand_(strand),
          cfg_(cfg),
          log_(&log),
          api_(std::move(api)),
          create_backoff_(create_backoff),
          run_tag_(cfg.e2b.run_tag.empty() ? "genesis-" + random_hex(16) : cfg.e2b.run_tag),
          pacer_(cfg.e2b.create_rate, clock::now()),
          gate_(strand),
          slot_freed_(strand),
          cleanups_done_(strand) {
        gate_.expires_at(clock::time_point::max());
        slot_freed_.expires_at(clock::time_point::max());
        cleanups_done_.expires_at(clock::time_point::max());
    }

    void forget_logger() { log_ = nullptr; }
    bool tls_verify() const noexcept { return cfg_.e2b.tls_verify; }
    void warn(const std::string& message) const { log(log_level::warning, message); }
    const std::string& run_tag() const noexcept { return run_tag_; }

    // Kills sandboxes a previous process left with the same run tag, before the
    // first job creates one.
    void start_startup_sweep() {
        startup_pending_ = true;
        asio::co_spawn(strand_, startup_sweep(), [self = shared_from_this()](std::exception_ptr) {
            self->startup_pending_ = false;
            self->gate_.cancel();
        });
    }

    asio::awaitable<job_result> lifecycle(std::shared_ptr<job_run> j);
    asio::awaitable<void> sweep(std::string reason);
    // The sweep of drain(), after a start-up sweep still in progress.
    // Kills still under way go first: the sweep then finds only what they missed.
    asio::awaitable<void> shutdown_sweep() {
        co_await wait_ready();
        while (cleanups_ > 0) co_await cleanups_done_.async_wait(asio::as_tuple(asio::use_awaitable));
        co_await sweep("shutdown");
    }
    // After the shutdown sweep: closes pooled connections (and the pool's idle
    // sweep timer), so the io_context's run() can return.
    void close_connections() { api_->close(); }

private:
    void log(log_level level, const std::string& message) const {
        if (log_) log_->log(level, message);
    }
    void job_log(log_level level, const job_run& j, const std::string& message) const {
        if (log_ && log_->enabled(level)) log_->log(level, "job " + j.ctx->job.job_id + ": " + message);
    }
    // The job moves on to phase p (a debug line tells where each job is; the text
    // is only built when debug lines are wanted).
    void enter(job_run& j, phase p) const {
        j.current = p;
        if (!log_ || !log_->enabled(log_level::debug)) return;
        std::string where(phase_name(p));
        if (!j.r.sandbox_id.empty()) where += " (sandbox " + j.r.sandbox_id + ")";
        job_log(log_level::debug, j, where);
    }

    std::optional<std::string> prepare_local(job_run& j);
    asio::awaitable<attempt_end> attempt(std::shared_ptr<job_run> j);
    asio::awaitable<step> phases(std::shared_ptr<job_run> j);
    asio::awaitable<step> create(std::shared_ptr<job_run> j);
    asio::awaitable<step> create_sandbox(std::shared_ptr<job_run> j);
    asio::awaitable<void> kill_lost(std::shared_ptr<job_run> j, std::map<std::string, std::string> tags,
                                    clock::time_point sent, std::shared_ptr<cleanup_ticket> ticket = nullptr);
    asio::awaitable<step> upload(std::shared_ptr<job_run> j);
    asio::awaitable<step> install(std::shared_ptr<job_run> j);
    asio::awaitable<step> run_evaluator(std::shared_ptr<job_run> j);
    asio::awaitable<step> download(std::shared_ptr<job_run> j);
    asio::awaitable<step> download_after_timeout(std::shared_ptr<job_run> j);
    asio::awaitable<void> end_attempt(std::shared_ptr<job_run> j);
    asio::awaitable<void> cleanup(std::shared_ptr<job_run> j, std::shared_ptr<cleanup_ticket> ticket);
    asio::awaitable<void> startup_sweep();
    asio::awaitable<void> pace();
    asio::awaitable<void> wait_ready();
    // Until one of this launcher's sandboxes ends, or `at_most`.
    asio::awaitable<void> wait_for_slot(milliseconds at_most);
    asio::awaitable<void> sleep_for(milliseconds d);

    step fail(job_run& j, outcome o, std::string why) const;
    step envd_failure(job_run& j, const e2b::api_error& e, const std::string& what) const;
    std::function<void(std::uint32_t)> watchdog_from_start(const std::shared_ptr<job_run>& j, milliseconds limit);
    void set_stopped(job_run& j) const;
    void finalize(job_run& j) const;

    strand_type strand_;
    launcher_config cfg_;
    const logger* log_;
    std::unique_ptr<sandbox_api> api_;
    backoff_params create_backoff_;
    std::string run_tag_;
    input_cache inputs_;  // the evaluator and additional_files, shared by the jobs

    // One create per 1/create_rate seconds for the whole launcher.
    e2b::create_pacer<clock> pacer_;

    // Start-up sweep: jobs wait on gate_ (cancelled when the sweep is over).
    bool startup_pending_ = false;
    asio::steady_timer gate_;

    // Sandboxes whose kill failed; the shutdown sweep tries again.
    std::set<std::string> unkilled_;

    // Sandboxes of this launcher's jobs (created, not yet killed) and creates in
    // flight; slot_freed_ wakes creates refused by a concurrency limit when a
    // sandbox ends or a create returns.
    int live_ = 0;
    int creating_ = 0;
    asio::steady_timer slot_freed_;

    // Cleanups (kills) still running, some after their job's result; the shutdown
    // sweep waits for them (cleanups_done_ is cancelled when the last one ends).
    int cleanups_ = 0;
    asio::steady_timer cleanups_done_;
};

}  // namespace genesis::launch::detail::e2b
