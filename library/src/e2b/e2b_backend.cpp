// e2b_backend.cpp - one E2B job as a coroutine on the launcher's strand:
//
//   prepare (local files, no sandbox yet)
//   attempt:  [ create -> upload -> install -> run -> download ]  (cancellable child coroutine)
//             cleanup: kill the sandbox                             (always, never cancelled)
//   a sandbox lost mid-job (it vanished, or the evaluator's command stream broke):
//   another attempt on a new sandbox, up to max_sandbox_attempts (retry_vanished)
//   finalize (read_results)
//
// Destructors cannot co_await, so the "scope guard" is structural: the phases
// run in a child coroutine spawned with its own cancellation slot; whatever
// way it ends (result, exception, cancellation, timeout), the parent then
// co_awaits cleanup(), which kills the sandbox. Only if the io_context itself is
// destroyed mid-job does a sandbox survive, and then only until its lifetime
// (timeout + margins) runs out; the shutdown sweep in drain() catches what a
// failed kill left behind.
#include "e2b/e2b_backend.hpp"

#include "e2b/e2b_api.hpp"
#include "e2b/retry.hpp"
#include "genesis/launch/results.hpp"
#include "output_sink.hpp"
#include "results_detail.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace genesis::launch::detail {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using boost::system::error_code;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// ---- pure helpers ---------------------------------------------------------------------

namespace e2b_support {

std::string shell_quote(std::string_view text) {
    auto safe = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               std::string_view("_./=:,+@%-").find(c) != std::string_view::npos;
    };
    if (!text.empty() && std::all_of(text.begin(), text.end(), safe)) return std::string(text);
    std::string out = "'";
    for (char c : text) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    out += '\'';
    return out;
}

std::chrono::seconds sandbox_lifetime(const e2b_params& p, milliseconds evaluation) {
    const milliseconds install = p.dependencies.empty() ? milliseconds(0) : milliseconds(p.install_timeout);
    const milliseconds total = install + evaluation + milliseconds(120s);
    return std::chrono::seconds((total.count() + 999) / 1000);
}

std::optional<fs::path> relative_result_path(std::string_view folder, std::string_view sandbox_path) {
    while (folder.size() > 1 && folder.back() == '/') folder.remove_suffix(1);
    if (sandbox_path.size() <= folder.size() + 1 || sandbox_path.substr(0, folder.size()) != folder ||
        sandbox_path[folder.size()] != '/')
        return std::nullopt;
    std::string_view rest = sandbox_path.substr(folder.size() + 1);
    if (rest.empty() || rest.front() == '/' || rest.size() > max_result_path_bytes) return std::nullopt;
    // No control characters (NUL, newlines, escapes): such names are refused, not mangled.
    if (std::any_of(rest.begin(), rest.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
        return std::nullopt;
    fs::path out;
    while (!rest.empty()) {
        const auto slash = rest.find('/');
        const std::string_view part = rest.substr(0, slash);
        if (part.empty() || part == "." || part == ".." || part.size() > max_result_name_bytes) return std::nullopt;
        out /= std::string(part);
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
        if (rest.empty()) return std::nullopt;  // trailing slash
    }
    return out;
}

std::string printable_name(std::string_view name) {
    constexpr std::size_t shown = 200;
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < name.size() && i < shown; ++i) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (c < 0x20 || c == 0x7f || c == '\\') {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (name.size() > shown) out += "... (" + std::to_string(name.size()) + " bytes)";
    return out;
}

}  // namespace e2b_support

namespace {

using e2b_support::shell_quote;

constexpr std::string_view home_dir = "/home/user";
constexpr std::string_view results_folder = "/home/user/results";
constexpr std::string_view evaluator_target = "/home/user/evaluate.py";
// Our own watchdog fires this long after a command's limit (envd's deadline and
// the API client's local deadline normally end the command first).
constexpr auto watchdog_margin = 15s;
constexpr std::uint32_t listing_depth = 64;
// Sandboxes one job may use when they are lost mid-job (vanished, or the
// evaluator's connection broke); retry_vanished: false means 1.
constexpr int max_sandbox_attempts = 3;
constexpr std::size_t pip_capture_bytes = 8 * 1024;

milliseconds since(clock::time_point t) { return std::chrono::duration_cast<milliseconds>(clock::now() - t); }

double seconds_between(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

std::string seconds_text(milliseconds d) {
    char buf[32];
    if (d.count() % 1000 == 0)
        std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(d.count() / 1000));
    else
        std::snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(d.count()) / 1000.0);
    return buf;
}

std::string random_hex(std::size_t digits) {
    static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                            static_cast<std::uint64_t>(clock::now().time_since_epoch().count())};
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(digits);
    for (std::size_t i = 0; i < digits; ++i) out += hex[rng() & 0xf];
    return out;
}


// Go's names of signals ("signal: killed") -> numbers.
std::optional<int> signal_from_status(std::string_view status) {
    constexpr std::string_view prefix = "signal: ";
    if (!status.starts_with(prefix)) return std::nullopt;
    std::string_view name = status.substr(prefix.size());
    if (auto paren = name.find(" ("); paren != std::string_view::npos) name = name.substr(0, paren);
    static constexpr std::pair<std::string_view, int> names[] = {
        {"hangup", SIGHUP},           {"interrupt", SIGINT},
        {"quit", SIGQUIT},            {"illegal instruction", SIGILL},
        {"trace/breakpoint trap", SIGTRAP}, {"aborted", SIGABRT},
        {"bus error", SIGBUS},        {"floating point exception", SIGFPE},
        {"killed", SIGKILL},          {"user defined signal 1", SIGUSR1},
        {"segmentation fault", SIGSEGV}, {"user defined signal 2", SIGUSR2},
        {"broken pipe", SIGPIPE},     {"alarm clock", SIGALRM},
        {"terminated", SIGTERM},      {"CPU time limit exceeded", SIGXCPU},
        {"file size limit exceeded", SIGXFSZ},
    };
    for (const auto& [n, number] : names)
        if (name == n) return number;
    return std::nullopt;
}

std::string signal_name(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// A sandbox path from the configuration: relative paths are under /home/user.
std::optional<std::string> sandbox_target(std::string_view configured) {
    if (configured.empty()) return std::nullopt;
    fs::path p = configured.front() == '/' ? fs::path(configured) : fs::path(home_dir) / fs::path(configured);
    const std::string text = p.lexically_normal().generic_string();
    if (text.empty() || text.front() != '/' || text.back() == '/' || text == "/") return std::nullopt;
    return text;
}

// One open, one fstat and the reads (no separate existence checks).
bool read_whole_file(const fs::path& path, std::string& out, std::string& why) {
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
        while (fd_ >= 0 && !bytes.empty()) {
            const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;  // a full disk loses log bytes, never the job
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

enum class stop_reason { none, cancel, timeout };
enum class phase { prepare, create, upload, install, run, download };
// How a phase ended: go on; the job is decided (r.result set, or a stop); the
// sandbox vanished (maybe retried on a new one).
enum class step { ok, failed, gone };
enum class attempt_end { done, retry };

std::string_view phase_name(phase p) {
    switch (p) {
        case phase::prepare: return "preparation";
        case phase::create: return "sandbox creation";
        case phase::upload: return "upload";
        case phase::install: return "dependency install";
        case phase::run: return "the evaluation";
        case phase::download: return "the download of results";
    }
    return "?";
}

struct upload_item {
    std::string target;  // absolute sandbox path
    std::string bytes;
    std::string source;  // local path, for messages
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
    engine(strand_type strand, const launcher_config& cfg, const logger& log)
        : strand_(strand),
          cfg_(cfg),
          log_(&log),
          api_(std::make_unique<e2b::api>(asio::any_io_executor(strand), make_api_settings(cfg))),
          run_tag_(cfg.e2b.run_tag.empty() ? "genesis-" + random_hex(16) : cfg.e2b.run_tag),
          gate_(strand),
          slot_freed_(strand) {
        const double rate = cfg.e2b.create_rate > 0 && std::isfinite(cfg.e2b.create_rate) ? cfg.e2b.create_rate : 1.0;
        create_interval_ = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(1.0 / rate));
        next_create_ = clock::now();
        gate_.expires_at(clock::time_point::max());
        slot_freed_.expires_at(clock::time_point::max());
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
    asio::awaitable<void> shutdown_sweep() {
        co_await wait_ready();
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

    std::optional<std::string> prepare_local(job_run& j);
    asio::awaitable<attempt_end> attempt(std::shared_ptr<job_run> j);
    asio::awaitable<step> phases(std::shared_ptr<job_run> j);
    asio::awaitable<step> create(std::shared_ptr<job_run> j);
    asio::awaitable<step> create_sandbox(std::shared_ptr<job_run> j);
    asio::awaitable<void> kill_lost(std::shared_ptr<job_run> j, std::map<std::string, std::string> tags,
                                    clock::time_point sent);
    asio::awaitable<step> upload(std::shared_ptr<job_run> j);
    asio::awaitable<step> install(std::shared_ptr<job_run> j);
    asio::awaitable<step> run_evaluator(std::shared_ptr<job_run> j);
    asio::awaitable<step> download(std::shared_ptr<job_run> j);
    asio::awaitable<void> cleanup(std::shared_ptr<job_run> j);
    asio::awaitable<void> startup_sweep();
    asio::awaitable<void> pace();
    asio::awaitable<void> wait_ready();
    // Until one of this launcher's sandboxes ends, or `at_most`.
    asio::awaitable<void> wait_for_slot(milliseconds at_most);
    asio::awaitable<void> sleep_for(milliseconds d);

    step fail(job_run& j, outcome o, std::string why) const;
    step envd_failure(job_run& j, const e2b::api_error& e, const std::string& what) const;
    void arm_watchdog(const std::shared_ptr<job_run>& j, milliseconds limit);
    void set_stopped(job_run& j) const;
    void finalize(job_run& j) const;

    strand_type strand_;
    launcher_config cfg_;
    const logger* log_;
    std::unique_ptr<e2b::api> api_;
    std::string run_tag_;

    // Creation pacer: the earliest time the next create may be sent.
    clock::duration create_interval_{};
    clock::time_point next_create_{};

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
};

// ---- small coroutines --------------------------------------------------------------------

asio::awaitable<void> engine::sleep_for(milliseconds d) {
    asio::steady_timer t(strand_);
    t.expires_after(d);
    co_await t.async_wait(asio::use_awaitable);
}

// One create per create_interval_ for the whole launcher; a job takes the next
// free slot and waits for it.
asio::awaitable<void> engine::pace() {
    const auto now = clock::now();
    const auto slot = std::max(now, next_create_);
    next_create_ = slot + create_interval_;
    if (slot > now) {
        asio::steady_timer t(strand_);
        t.expires_at(slot);
        co_await t.async_wait(asio::use_awaitable);
    }
}

asio::awaitable<void> engine::wait_for_slot(milliseconds at_most) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer limit(strand_);
    limit.expires_after(at_most);
    co_await (slot_freed_.async_wait(asio::as_tuple(asio::use_awaitable)) ||
              limit.async_wait(asio::as_tuple(asio::use_awaitable)));
}

asio::awaitable<void> engine::wait_ready() {
    if (!startup_pending_) co_return;
    co_await gate_.async_wait(asio::as_tuple(asio::use_awaitable));
}

void engine::arm_watchdog(const std::shared_ptr<job_run>& j, milliseconds limit) {
    j->watchdog.expires_after(limit + milliseconds(watchdog_margin));
    j->watchdog.async_wait([w = std::weak_ptr<job_run>(j)](error_code ec) {
        if (ec) return;
        if (auto job = w.lock()) job->request_stop(stop_reason::timeout);
    });
}

// ---- outcomes ------------------------------------------------------------------------------

step engine::fail(job_run& j, outcome o, std::string why) const {
    j.r.result = o;
    j.r.diagnostic = std::move(why);
    return step::failed;
}

// An envd call failed: what it means for the job.
step engine::envd_failure(job_run& j, const e2b::api_error& e, const std::string& what) const {
    using kind = e2b::api_error::kind;
    if (j.stop != stop_reason::none) return step::failed;  // attempt() reports the stop
    switch (e.k) {
        case kind::sandbox_gone:
            j.gone_message = what + ": " + e.message;
            j.connection_broke = false;
            return step::gone;
        case kind::transport:
        case kind::protocol:
            // The command's stream broke (reset, cut, no end event) while the
            // sandbox lives: the network's fault, not the candidate's. The
            // command is not reattached; the attempt is lost like a vanished sandbox.
            if (j.current != phase::run && j.current != phase::install) break;
            j.gone_message = what + ": " + e.message;
            j.connection_broke = true;
            return step::gone;
        case kind::unauthorized:
            return fail(j, outcome::infra_error, what + ": the sandbox refused its access token: " + e.message);
        case kind::http:
            // A request the sandbox refused for what it asked (a path outside the
            // allowed folders, ...) is a setup problem; server trouble is not.
            if (j.current == phase::upload && e.status >= 400 && e.status < 500 && e.status != 408 && e.status != 429)
                return fail(j, outcome::setup_failed, what + ": " + e.message);
            break;
        default:
            break;
    }
    return fail(j, outcome::infra_error, what + ": " + e.message);
}

void engine::set_stopped(job_run& j) const {
    const std::string where = std::string(phase_name(j.current));
    const std::string killed = j.r.sandbox_id.empty() ? "" : "; sandbox " + j.r.sandbox_id + " killed";
    if (j.stop == stop_reason::cancel) {
        j.r.result = outcome::cancelled;
        j.r.diagnostic = "cancelled during " + where + killed;
    } else if (j.current == phase::install) {
        j.r.result = outcome::setup_failed;
        j.r.diagnostic = "dependency install did not finish within job_config.install_timeout (" +
                         seconds_text(milliseconds(cfg_.e2b.install_timeout)) + ")" + killed;
    } else {
        j.r.result = outcome::timeout;
        j.r.diagnostic = "time limit of " + seconds_text(j.eval_limit) +
                         " exceeded and the sandbox did not report the end of the command" + killed;
    }
}

void engine::finalize(job_run& j) const {
    const prepared_job& job = j.ctx->job;
    std::error_code ec;
    if (fs::is_directory(job.results_dir, ec)) {
        auto results = detail::read_results(job.results_dir, std::move(j.metrics_written),
                                            std::move(j.correct_written));
        j.r.correct = results.correct;
        j.r.error = std::move(results.error);
        j.r.metrics = std::move(results.metrics);
        j.r.combined_score = results.combined_score;
        j.r.result_files = std::move(results.files);
        for (auto& w : results.warnings) j.r.warnings.push_back(std::move(w));
    }
    // When the evaluator never got to write correct.json, say why the job ended.
    if (j.r.result != outcome::ok && !j.r.correct && !fs::exists(job.results_dir / "correct.json", ec))
        j.r.error = j.r.diagnostic;
}

// ---- preparation (no sandbox yet) -------------------------------------------------------------

std::optional<std::string> engine::prepare_local(job_run& j) {
    const prepared_job& job = j.ctx->job;
    std::error_code ec;
    fs::create_directories(job.results_dir, ec);
    if (ec) return "cannot create results directory " + job.results_dir.string() + ": " + ec.message();

    std::string why;
    std::set<std::string> targets;
    auto add = [&](std::string target, const fs::path& local, const std::string& role) -> std::optional<std::string> {
        if (!targets.insert(target).second)
            return role + ": two files would be uploaded to " + target + " in the sandbox";
        upload_item item{std::move(target), {}, local.string()};
        if (!read_whole_file(local, item.bytes, why)) return role + " " + local.string() + ": " + why;
        j.uploads.push_back(std::move(item));
        return std::nullopt;
    };

    if (auto e = add(std::string(evaluator_target), job.evaluator, "evaluator")) return e;
    std::string name = job.program.filename().string();
    if (name.empty()) name = "main.py";
    j.program_target = std::string(home_dir) + "/" + name;
    if (j.program_target == evaluator_target)
        return "the candidate program is named evaluate.py, which is where the evaluator goes in the sandbox; "
               "rename the candidate";
    if (auto e = add(j.program_target, job.program, "candidate program")) return e;
    for (const auto& [sandbox_path, local] : cfg_.e2b.additional_files) {
        auto target = sandbox_target(sandbox_path);
        if (!target) return "job_config.additional_files: '" + sandbox_path + "' is not a file path";
        if (auto e = add(*target, local, "additional file (job_config.additional_files['" + sandbox_path + "'])"))
            return e;
    }

    if (auto e = j.out_log.open(job.results_dir / "job_log.out"))
        return "cannot write " + (job.results_dir / "job_log.out").string() + ": " + e.message();
    if (auto e = j.err_log.open(job.results_dir / "job_log.err"))
        return "cannot write " + (job.results_dir / "job_log.err").string() + ": " + e.message();

    j.env["PYTHONUNBUFFERED"] = "1";
    j.env["PYTHONIOENCODING"] = "utf-8";
    for (const auto& [k, v] : job.env) j.env[k] = v;
    j.eval_limit = job.timeout ? *job.timeout : milliseconds(cfg_.e2b.timeout);
    return std::nullopt;
}

// ---- the lifecycle -----------------------------------------------------------------------------

asio::awaitable<job_result> engine::lifecycle(std::shared_ptr<job_run> j) {
    j->r.backend = "e2b";
    j->r.results_dir = j->ctx->job.results_dir;
    const auto t_prepare = clock::now();
    if (auto why = prepare_local(*j)) {
        j->r.result = outcome::setup_failed;
        j->r.diagnostic = std::move(*why);
        j->r.timings.setup = since(t_prepare);
        j->r.error = j->r.diagnostic;
        j->out_log.close();
        j->err_log.close();
        co_return std::move(j->r);
    }
    j->r.timings.setup += since(t_prepare);

    j->ctx->on_cancel([w = std::weak_ptr<job_run>(j)] {
        if (auto job = w.lock()) job->request_stop(stop_reason::cancel);
    });
    while (co_await attempt(j) == attempt_end::retry) {
    }
    j->ctx->clear_on_cancel();
    j->out_log.close();
    j->err_log.close();
    finalize(*j);
    co_return std::move(j->r);
}

asio::awaitable<attempt_end> engine::attempt(std::shared_ptr<job_run> j) {
    ++j->attempts;
    if (j->stop != stop_reason::none) {
        set_stopped(*j);
        co_return attempt_end::done;
    }
    step result = step::failed;
    std::exception_ptr error;
    try {
        result = co_await asio::co_spawn(strand_, phases(j),
                                         asio::bind_cancellation_slot(j->cancel_phases.slot(), asio::use_awaitable));
    } catch (...) {
        error = std::current_exception();
    }
    j->cancel_phases.slot().clear();
    j->watchdog.cancel();
    const stop_reason stopped = j->stop;

    co_await cleanup(j);  // on every path

    if (stopped != stop_reason::none) {
        set_stopped(*j);
        co_return attempt_end::done;
    }
    if (error) {
        std::string what = "unknown error";
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        fail(*j, outcome::infra_error, "internal error in the E2B backend during " +
                                           std::string(phase_name(j->current)) + ": " + what);
        co_return attempt_end::done;
    }
    if (result != step::gone) co_return attempt_end::done;

    const std::string what = j->connection_broke
                                 ? "the connection to sandbox " + j->r.sandbox_id + " broke during " +
                                       std::string(phase_name(j->current))
                                 : "sandbox " + j->r.sandbox_id + " vanished during " +
                                       std::string(phase_name(j->current));
    const int budget = cfg_.e2b.retry_vanished ? max_sandbox_attempts : 1;
    if (j->attempts < budget) {
        const std::string message = what + " (" + j->gone_message + "); retried on a new sandbox";
        job_log(log_level::warning, *j, message);
        j->r.warnings.push_back(message);
        j->log_both("[genesis-launch] " + message + "\n");
        // The next attempt starts from scratch.
        j->r.result = outcome::infra_error;
        j->r.diagnostic.clear();
        j->r.exit_code.reset();
        j->r.signal.reset();
        j->r.stdout_text.clear();
        j->r.stderr_text.clear();
        j->r.stdout_truncated = j->r.stderr_truncated = false;
        j->out.reset();
        j->err.reset();
        j->metrics_written.reset();
        j->correct_written.reset();
        co_return attempt_end::retry;
    }
    fail(*j, outcome::infra_error,
         what + " (" + j->gone_message + ")" +
             (cfg_.e2b.retry_vanished ? "; no more retries: " + std::to_string(budget) +
                                            " sandboxes were lost mid-job"
                                      : "; not retried (job_config.retry_vanished is false)"));
    co_return attempt_end::done;
}

asio::awaitable<step> engine::phases(std::shared_ptr<job_run> j) {
    co_await wait_ready();
    step s = co_await create(j);
    if (s != step::ok) co_return s;
    const auto t_setup = clock::now();
    s = co_await upload(j);
    if (s == step::ok && !cfg_.e2b.dependencies.empty()) s = co_await install(j);
    j->r.timings.setup += since(t_setup);
    if (s != step::ok) co_return s;
    s = co_await run_evaluator(j);
    if (s != step::ok) co_return s;
    co_return co_await download(j);
}

// ---- create ------------------------------------------------------------------------------------

asio::awaitable<step> engine::create(std::shared_ptr<job_run> j) {
    j->current = phase::create;
    const auto t_create = clock::now();
    const step s = co_await create_sandbox(j);
    j->r.timings.create += since(t_create);
    co_return s;
}

asio::awaitable<step> engine::create_sandbox(std::shared_ptr<job_run> j) {
    using kind = e2b::api_error::kind;
    e2b::backoff_params backoff;
    backoff.max_attempts = std::max(1, cfg_.e2b.max_retries);
    e2b::retry_state retry(backoff);
    const auto lifetime = e2b_support::sandbox_lifetime(cfg_.e2b, j->eval_limit);
    std::string last_problem;

    for (;;) {
        co_await pace();
        std::map<std::string, std::string> tags;
        tags["genesis_run"] = run_tag_;
        tags["genesis_job"] = j->ctx->job.job_id;
        tags["genesis_attempt"] = random_hex(12);  // tells this create apart from any other
        std::string template_id = cfg_.e2b.template_id;
        std::map<std::string, std::string> metadata = tags;
        std::map<std::string, std::string> env = j->env;
        const auto sent = clock::now();
        j->create_in_flight = tags;
        j->create_sent = sent;
        ++creating_;
        auto created = co_await api_->create(template_id, lifetime, metadata, env);
        --creating_;
        slot_freed_.cancel();  // creates waiting on this one look again
        // A cancelled create may still have made a sandbox: cleanup looks for it.
        if (created || created.error->k != kind::cancelled) j->create_in_flight.reset();
        if (created) {
            ++live_;
            j->sandbox = std::move(*created.value);
            j->sandbox_since = sent;
            j->r.sandbox_id = j->sandbox->id;
            job_log(log_level::debug, *j,
                    "sandbox " + j->sandbox->id + " created (template " + cfg_.e2b.template_id + ", lifetime " +
                        std::to_string(lifetime.count()) + "s)");
            co_return step::ok;
        }
        const e2b::api_error& e = *created.error;
        if (j->stop != stop_reason::none || e.k == kind::cancelled) co_return step::failed;

        switch (e.k) {
            case kind::maybe_created:
                // The sandbox may exist without us knowing its id: find it by its
                // tags and kill it (using it would need its access token, which a
                // listing does not give), then create another.
                last_problem = e.message;
                co_await kill_lost(j, tags, sent);
                break;
            case kind::rate_limited:
                // E2B's concurrency limit (or request rate) while this launcher
                // holds sandboxes: one of them ending frees a slot. Waiting for
                // that does not use up the job's budget. Creates still in flight
                // count too (their sandboxes may hold the slots already).
                if (live_ > 0 || creating_ > 0) {
                    last_problem = e.message;
                    job_log(log_level::debug, *j, "create refused (" + e.message + "); waiting for a sandbox to end");
                    co_await wait_for_slot(backoff.maximum);
                    if (j->stop != stop_reason::none) co_return step::failed;
                    continue;
                }
                last_problem = e.message;
                break;
            case kind::unauthorized:
                co_return fail(*j, outcome::infra_error, "E2B rejected the API key (E2B_API_KEY): " + e.message);
            case kind::not_found:
                co_return fail(*j, outcome::setup_failed,
                               "E2B cannot create a sandbox from template '" + cfg_.e2b.template_id +
                                   "' (job_config.template): " + e.message);
            case kind::http:
                if (e.status == 400 || e.status == 404 || e.status == 422)
                    co_return fail(*j, outcome::setup_failed,
                                   "E2B refused to create a sandbox (template '" + cfg_.e2b.template_id +
                                       "', lifetime " + std::to_string(lifetime.count()) + "s): " + e.message);
                [[fallthrough]];
            default:
                if (!e.transient())
                    co_return fail(*j, outcome::infra_error, "could not create a sandbox: " + e.message);
                last_problem = e.message;
                break;
        }
        // Another create, within the job's budget.
        auto delay = retry.next_delay();
        if (!delay)
            co_return fail(*j, outcome::infra_error,
                           "could not create a sandbox after " + std::to_string(retry.attempts()) +
                               " attempts: " + last_problem);
        job_log(log_level::info, *j,
                "create failed (" + last_problem + "); trying again in " + seconds_text(*delay));
        co_await sleep_for(*delay);
    }
}

asio::awaitable<void> engine::kill_lost(std::shared_ptr<job_run> j, std::map<std::string, std::string> tags,
                                        clock::time_point sent) {
    auto found = co_await api_->list(tags);
    if (!found) {
        const std::string message = "a sandbox creation got no answer and the sandboxes tagged for it could not be "
                                    "listed (" + found.error->message + "); the shutdown sweep will look again";
        job_log(log_level::warning, *j, message);
        j->r.warnings.push_back(message);
        co_return;
    }
    for (const auto& s : *found) {
        std::string id = s.id;
        auto killed = co_await api_->kill(id);
        j->r.sandbox_seconds += seconds_between(sent, clock::now());
        const std::string message = "sandbox " + id + " was created without an answer reaching us; " +
                                    (killed ? "killed it" : "could not kill it (" + killed.error->message + ")");
        job_log(log_level::info, *j, message);
        j->r.warnings.push_back(message);
        if (!killed) unkilled_.insert(id);
    }
}

// ---- upload, install, run, download ---------------------------------------------------------------

asio::awaitable<step> engine::upload(std::shared_ptr<job_run> j) {
    j->current = phase::upload;
    if (j->stop != stop_reason::none) co_return step::failed;
    // Every file in one request (a copy: a retried attempt uploads them again).
    std::vector<e2b::upload_file> files;
    files.reserve(j->uploads.size());
    for (const auto& item : j->uploads) files.push_back(e2b::upload_file{item.target, item.bytes});
    e2b::sandbox_handle sb = *j->sandbox;
    auto sent = co_await api_->upload_files(sb, std::move(files));
    if (!sent) {
        std::string what = "upload of";
        for (std::size_t i = 0; i < j->uploads.size(); ++i)
            what += (i == 0 ? " " : ", ") + j->uploads[i].source;
        co_return envd_failure(*j, *sent.error, what);
    }
    co_return step::ok;
}

asio::awaitable<step> engine::install(std::shared_ptr<job_run> j) {
    j->current = phase::install;
    std::string command = "pip install";
    for (const auto& d : cfg_.e2b.dependencies) command += " " + shell_quote(d);
    j->log_both("[genesis-launch] $ " + command + "\n");
    j->installed = true;

    capture_buffer out(pip_capture_bytes), err(pip_capture_bytes);
    auto job = j;
    std::function<void(std::string_view)> on_out = [job, &out](std::string_view b) {
        job->out_log.write(b);
        out.append(b);
    };
    std::function<void(std::string_view)> on_err = [job, &err](std::string_view b) {
        job->err_log.write(b);
        err.append(b);
    };
    const milliseconds limit(cfg_.e2b.install_timeout);
    arm_watchdog(j, limit);
    e2b::sandbox_handle sb = *j->sandbox;
    std::string cwd(home_dir);
    std::map<std::string, std::string> envs;
    std::optional<milliseconds> timeout = limit;
    auto ran = co_await api_->run(sb, command, cwd, envs, timeout, on_out, on_err);
    j->watchdog.cancel();
    if (j->stop != stop_reason::none) co_return step::failed;

    auto with_output = [&](std::string text) {
        j->r.stdout_text = out.text();
        j->r.stderr_text = err.text();
        j->r.stdout_truncated = out.truncated();
        j->r.stderr_truncated = err.truncated();
        const std::string tail = err.text() + (out.text().empty() ? "" : "\n" + out.text());
        if (!tail.empty()) text += "\n" + tail;
        return text;
    };
    if (!ran) {
        if (ran.error->k == e2b::api_error::kind::timeout)
            co_return fail(*j, outcome::setup_failed,
                           with_output("dependency install (`" + command + "`) did not finish within " +
                                       seconds_text(limit) + " (job_config.install_timeout)"));
        co_return envd_failure(*j, *ran.error, "dependency install");
    }
    if (!ran->exited || ran->exit_code != 0)
        co_return fail(*j, outcome::setup_failed,
                       with_output("dependency install failed: `" + command + "` " +
                                   (ran->exited ? "exited with status " + std::to_string(ran->exit_code)
                                                : "ended with " + ran->status)));
    co_return step::ok;
}

asio::awaitable<step> engine::run_evaluator(std::shared_ptr<job_run> j) {
    j->current = phase::run;
    const prepared_job& job = j->ctx->job;
    std::string command = "mkdir -p results && exec python";
    for (const auto& arg : evaluator_arguments("evaluate.py", j->program_target, std::string(results_folder),
                                               job.extra_args))
        command += " " + shell_quote(arg);
    if (j->installed) j->log_both("[genesis-launch] $ " + command + "\n");

    j->out = std::make_unique<output_sink>(cfg_.output_capture_bytes, job.on_stdout);
    j->err = std::make_unique<output_sink>(cfg_.output_capture_bytes, job.on_stderr);
    auto sink = j;
    std::function<void(std::string_view)> on_out = [sink](std::string_view b) {
        sink->out_log.write(b);
        if (sink->out) sink->out->write(b);
    };
    std::function<void(std::string_view)> on_err = [sink](std::string_view b) {
        sink->err_log.write(b);
        if (sink->err) sink->err->write(b);
    };
    arm_watchdog(j, j->eval_limit);
    const auto t_run = clock::now();
    e2b::sandbox_handle sb = *j->sandbox;
    std::string cwd(home_dir);
    std::map<std::string, std::string> envs;
    std::optional<milliseconds> timeout = j->eval_limit;
    auto ran = co_await api_->run(sb, command, cwd, envs, timeout, on_out, on_err);
    j->watchdog.cancel();
    j->r.timings.run += since(t_run);
    j->out->finish();
    j->err->finish();
    j->r.stdout_text = j->out->capture().text();
    j->r.stderr_text = j->err->capture().text();
    j->r.stdout_truncated = j->out->capture().truncated();
    j->r.stderr_truncated = j->err->capture().truncated();
    if (j->stop != stop_reason::none) co_return step::failed;

    if (!ran) {
        if (ran.error->k != e2b::api_error::kind::timeout)
            co_return envd_failure(*j, *ran.error, "evaluator run");
        // The sandbox killed the command at its deadline: keep what it wrote.
        j->r.result = outcome::timeout;
        j->r.diagnostic = "time limit of " + seconds_text(j->eval_limit) + " exceeded; the evaluator was killed";
        co_return step::ok;
    }
    if (ran->exited && ran->exit_code == 0) {
        j->r.result = outcome::ok;
        j->r.exit_code = 0;
    } else if (ran->exited) {
        j->r.result = outcome::candidate_failed;
        j->r.exit_code = ran->exit_code;
        j->r.diagnostic = "evaluator exited with status " + std::to_string(ran->exit_code);
    } else {
        j->r.result = outcome::candidate_failed;
        j->r.signal = signal_from_status(ran->status);
        j->r.diagnostic = "evaluator killed by " + (j->r.signal ? signal_name(*j->r.signal) : ran->status);
    }
    co_return step::ok;
}

asio::awaitable<step> engine::download(std::shared_ptr<job_run> j) {
    using kind = e2b::api_error::kind;
    j->current = phase::download;
    const auto t_download = clock::now();
    const fs::path& root = j->ctx->job.results_dir;
    std::error_code ec;
    // Resolved only for names below a subfolder (a folder on the way may be a link).
    std::optional<fs::path> resolved_root;

    e2b::sandbox_handle sb = *j->sandbox;
    std::string folder(results_folder);
    // The listing, and the two files every evaluator writes read at the same
    // time (one round trip instead of three), as far as idle pooled connections
    // allow: a connection is never opened just to go faster (with hundreds of
    // jobs starting together that would mean hundreds of connections, over TLS
    // as many handshakes). Other listed files are fetched after the listing. A
    // file read ahead is used only if the listing shows it as a regular file.
    using namespace asio::experimental::awaitable_operators;
    std::string metrics_path = folder + "/metrics.json";
    std::string correct_path = folder + "/correct.json";
    e2b::sandbox_handle sb_metrics = sb, sb_correct = sb;
    const std::size_t spare = api_->idle_envd_connections(sb);
    e2b::api_result<std::vector<e2b::dir_entry>> listing;
    e2b::api_result<std::string> metrics_bytes, correct_bytes;
    if (spare >= 3) {
        auto [l, m, c] = co_await (api_->list_dir(sb, folder, listing_depth) &&
                                   api_->download(sb_metrics, metrics_path) && api_->download(sb_correct, correct_path));
        listing = std::move(l);
        metrics_bytes = std::move(m);
        correct_bytes = std::move(c);
    } else if (spare == 2) {
        auto [l, m] = co_await (api_->list_dir(sb, folder, listing_depth) && api_->download(sb_metrics, metrics_path));
        listing = std::move(l);
        metrics_bytes = std::move(m);
    } else {
        listing = co_await api_->list_dir(sb, folder, listing_depth);
    }
    if (!listing) {
        if (listing.error->k == kind::not_found) {
            j->r.warnings.push_back("the evaluator left no " + folder + " folder in the sandbox");
            j->r.timings.download += since(t_download);
            co_return step::ok;
        }
        co_return envd_failure(*j, *listing.error, "results download");
    }
    std::vector<e2b::dir_entry> entries = std::move(*listing.value);
    std::sort(entries.begin(), entries.end(),
              [](const e2b::dir_entry& a, const e2b::dir_entry& b) { return a.path < b.path; });
    // Every name comes from the sandbox (the evaluator's, or a hostile envd's):
    // nothing is written outside `root`, through a link, or under a name the
    // local file system would mangle; such entries are skipped with a warning.
    auto skip = [&](const std::string& path, const std::string& why) {
        j->r.warnings.push_back("not downloaded: " + e2b_support::printable_name(path) + " (" + why + ")");
    };
    for (const auto& entry : entries) {
        if (j->stop != stop_reason::none) co_return step::failed;
        const std::string path = entry.path.empty() || entry.path.front() != '/' ? folder + "/" + entry.path
                                                                                  : entry.path;
        auto rel = e2b_support::relative_result_path(folder, path);
        if (!rel) {
            skip(path, "not a safe name inside " + folder);
            continue;
        }
        const fs::path local = (root / *rel).lexically_normal();
        // A file right in the folder lands in it; for deeper names the folders on
        // the way are resolved and must stay inside the (resolved) results folder.
        if (rel->has_parent_path()) {
            ec.clear();
            if (!resolved_root) resolved_root = fs::weakly_canonical(root, ec);
            const fs::path parent = ec ? fs::path() : fs::weakly_canonical(local.parent_path(), ec);
            const std::string inside = resolved_root->string() + "/";
            if (ec || !(parent == *resolved_root || parent.string().starts_with(inside))) {
                skip(path, "it would land outside " + root.string());
                continue;
            }
        }
        if (entry.type == e2b::file_type::symlink || !entry.symlink_target.empty()) {
            skip(path, "a symbolic link");
            continue;
        }
        if (entry.type == e2b::file_type::directory) {
            fs::create_directories(local, ec);
            if (ec) skip(path, "cannot create " + local.string() + ": " + ec.message());
            continue;
        }
        if (entry.type != e2b::file_type::file) {
            skip(path, "not a regular file");
            continue;
        }
        if (*rel == "job_log.out" || *rel == "job_log.err") {
            skip(path, "the launcher writes " + rel->string());
            continue;
        }
        // A read-ahead answer counts as this file's one download, errors included
        // (a refused token fails the job as it would have); only "not found"
        // (the listing raced it) is asked again.
        auto read_ahead = [](const e2b::api_result<std::string>& r) {
            return r.value || (r.error && r.error->k != kind::not_found);
        };
        e2b::api_result<std::string> bytes;
        if (path == metrics_path && read_ahead(metrics_bytes)) {
            bytes = std::exchange(metrics_bytes, {});  // used once, even if listed twice
        } else if (path == correct_path && read_ahead(correct_bytes)) {
            bytes = std::exchange(correct_bytes, {});
        } else {
            std::string file_path = path;
            bytes = co_await api_->download(sb, file_path);
        }
        if (!bytes) {
            if (bytes.error->k == kind::not_found) {
                skip(path, "it disappeared");
                continue;
            }
            co_return envd_failure(*j, *bytes.error, "results download");
        }
        fs::create_directories(local.parent_path(), ec);
        if (ec) {
            skip(path, "cannot create " + local.parent_path().string() + ": " + ec.message());
            continue;
        }
        // O_NOFOLLOW: never write through a link, whatever is there now.
        const int fd = ::open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
            const int err = errno;
            // A name the listing made impossible here (a file where a folder is
            // expected, a link, a name too long): the entry's problem, not ours.
            if (err == ELOOP || err == ENOTDIR || err == EISDIR || err == ENAMETOOLONG || err == EEXIST) {
                skip(path, "cannot write " + local.string() + ": " + std::strerror(err));
                continue;
            }
            co_return fail(*j, outcome::infra_error, "cannot write " + local.string() + ": " + std::strerror(err));
        }
        bool written = true;
        for (std::size_t done = 0; done < bytes->size();) {
            const ssize_t n = ::write(fd, bytes->data() + done, bytes->size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                written = false;
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        if (::close(fd) != 0) written = false;
        if (!written) co_return fail(*j, outcome::infra_error, "cannot write " + local.string());
        if (*rel == "metrics.json") j->metrics_written = std::move(*bytes);
        if (*rel == "correct.json") j->correct_written = std::move(*bytes);
    }
    j->r.timings.download += since(t_download);
    co_return step::ok;
}

// ---- cleanup -----------------------------------------------------------------------------------

asio::awaitable<void> engine::cleanup(std::shared_ptr<job_run> j) {
    if (j->create_in_flight) {
        // Stopped while a create was in flight: it may have made a sandbox.
        auto tags = std::move(*j->create_in_flight);
        j->create_in_flight.reset();
        try {
            co_await kill_lost(j, tags, j->create_sent);
        } catch (const std::exception&) {
        }
    }
    if (!j->sandbox) co_return;
    const auto t_cleanup = clock::now();
    const e2b::sandbox_handle gone = *j->sandbox;
    std::string id = gone.id;
    j->sandbox.reset();
    std::string problem;
    try {
        auto killed = co_await api_->kill(id);
        if (!killed) problem = killed.error->message;
    } catch (const std::exception& e) {
        problem = e.what();
    }
    api_->forget(gone);
    --live_;
    slot_freed_.cancel();  // wakes creates waiting for a slot
    j->r.sandbox_seconds += seconds_between(j->sandbox_since, clock::now());
    j->r.timings.cleanup += since(t_cleanup);
    if (!problem.empty()) {
        unkilled_.insert(id);
        const std::string message = "could not kill sandbox " + id + " (" + problem +
                                    "); the shutdown sweep tries again, else it expires at the end of its lifetime";
        job_log(log_level::warning, *j, message);
        j->r.warnings.push_back(message);
    } else {
        job_log(log_level::debug, *j, "sandbox " + id + " killed");
    }
}

// Kills every sandbox tagged with this launcher's run tag, and those whose kill failed.
asio::awaitable<void> engine::sweep(std::string reason) {
    std::set<std::string> ids = std::move(unkilled_);
    unkilled_.clear();
    std::map<std::string, std::string> filter;
    filter["genesis_run"] = run_tag_;
    try {
        auto listed = co_await api_->list(filter);
        if (!listed)
            log(log_level::warning, "E2B " + reason + " sweep: cannot list sandboxes tagged genesis_run=" + run_tag_ +
                                        " (" + listed.error->message + "); leftovers expire at the end of their lifetime");
        else
            for (const auto& s : *listed) ids.insert(s.id);
        std::size_t killed = 0;
        for (const auto& id : ids) {
            std::string sandbox_id = id;
            auto k = co_await api_->kill(sandbox_id);
            if (k && *k) ++killed;
            if (!k)
                log(log_level::warning, "E2B " + reason + " sweep: cannot kill sandbox " + id + " (" +
                                            k.error->message + ")");
        }
        if (killed)
            log(log_level::warning, "E2B " + reason + " sweep: killed " + std::to_string(killed) +
                                        " leftover sandbox(es) tagged genesis_run=" + run_tag_);
    } catch (const std::exception& e) {
        log(log_level::warning, "E2B " + reason + " sweep failed: " + std::string(e.what()));
    }
}

asio::awaitable<void> engine::startup_sweep() { co_await sweep("start-up"); }

// ---- the backend ---------------------------------------------------------------------------------

class e2b_backend final : public backend {
public:
    e2b_backend(strand_type strand, const launcher_config& cfg, const logger& log)
        : strand_(strand), engine_(std::make_shared<engine>(strand, cfg, log)) {
        if (cfg.e2b.sweep_on_start && !cfg.e2b.run_tag.empty()) engine_->start_startup_sweep();
    }
    ~e2b_backend() override { engine_->forget_logger(); }

    std::string_view name() const override { return "e2b"; }

    void run(std::shared_ptr<job_context> ctx, std::function<void(job_result)> done) override {
        // Said once, when the launcher's logger is in place (it is not at construction).
        if (!tls_warning_given_ && !engine_->tls_verify()) {
            tls_warning_given_ = true;
            engine_->warn("TLS certificate and host-name verification is OFF (job_config.tls_verify=false)");
        }
        auto j = std::make_shared<job_run>(ctx, asio::any_io_executor(strand_));
        // The completion keeps the engine alive until the job is reported.
        asio::co_spawn(strand_, engine_->lifecycle(j),
                       [e = engine_, complete = job_completion(ctx, "e2b", std::move(done))](
                           std::exception_ptr ep, job_result r) { complete(ep, std::move(r)); });
    }

    void drain(std::function<void()> done) override {
        asio::co_spawn(strand_, engine_->shutdown_sweep(), [e = engine_, done = std::move(done)](std::exception_ptr) {
            e->close_connections();
            done();
        });
    }

private:
    bool tls_warning_given_ = false;
    strand_type strand_;
    std::shared_ptr<engine> engine_;
};

}  // namespace

std::unique_ptr<backend> make_e2b_backend(strand_type strand, const launcher_config& cfg, const logger& log) {
    return std::make_unique<e2b_backend>(std::move(strand), cfg, log);
}

e2b::api_settings make_api_settings(const launcher_config& cfg) {
    e2b::api_settings s;
    s.api_key = cfg.e2b.api_key;
    s.domain = cfg.e2b.domain;
    s.api_url = cfg.e2b.api_url;
    s.sandbox_url = cfg.e2b.sandbox_url;
    s.tls.verify_peer = cfg.e2b.tls_verify;
    s.tls.ca_file = cfg.e2b.ca_file;
    s.retry.max_attempts = std::max(1, cfg.e2b.max_retries);
    // A job has at most three requests in flight (the results download), all to
    // the same host when envd is reached through a shared one.
    s.max_idle_per_origin = std::max<std::size_t>(http::client::default_max_idle_per_origin,
                                                  3 * static_cast<std::size_t>(std::max(1, cfg.max_parallel_jobs)) + 8);
    return s;
}

std::optional<std::string> check_e2b_config(const launcher_config& cfg) {
    const auto settings = make_api_settings(cfg);
    if (!cfg.e2b.ca_file.empty()) {
        std::error_code ec;
        if (!fs::is_regular_file(cfg.e2b.ca_file, ec))
            return "job_config.ca_file: " + cfg.e2b.ca_file + " is not a file";
        asio::io_context io;
        http::client probe(io.get_executor(), settings.tls);
        if (!probe.tls_error().empty()) return "job_config.ca_file: " + probe.tls_error();
    }
    if (auto why = e2b::validate_settings(settings); !why.empty()) return why;
    // Value ranges are validate()'s (config/schema.cpp), which make_launcher runs first.
    return std::nullopt;
}

}  // namespace genesis::launch::detail
