// e2b_launcher_test.cpp - the E2B backend end to end against the in-process
// emulator (HTTPS with a throwaway CA): every outcome class, env vars, file
// transfer, dependencies, each injected fault with zero leaked sandboxes, a
// 500-job load test on one io_context thread, parity with the local backend on
// the circle-packing example, and the CLI against the emulator program.
#if __has_include("emulator.hpp")

#include "emulator_fixture.hpp"
#include "test_support.hpp"

#include <genesis/launch/job_launcher.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace gl = genesis::launch;
namespace json = boost::json;
namespace emu = genesis::e2b_emulator;
using namespace std::chrono_literals;
using genesis_test::emulator_thread;
using genesis_test::evaluator;
using genesis_test::program;
using genesis_test::read_file;
using genesis_test::temp_dir;
using genesis_test::write_file;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

constexpr auto job_wait = 120s;  // the longest any single job may take in these tests

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>(i < 256 ? i : rng() & 0xff);
    return out;
}

emu::fault_rule fault(std::string endpoint, std::string kind, int status = 500, int count = 1) {
    emu::fault_rule r;
    r.endpoint = std::move(endpoint);
    r.kind = std::move(kind);
    r.status = status;
    r.count = count;
    return r;
}

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// ---- evaluators written at test time ------------------------------------------------------

// Reports argv, cwd and env, copies uploaded files into the results, writes
// nested, empty and binary result files.
constexpr const char* inspect_py = R"PY(import argparse, json, os, shutil, sys
p = argparse.ArgumentParser()
p.add_argument("--program_path", required=True)
p.add_argument("--results_dir", required=True)
args, unknown = p.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)
names = ("GENESIS_TEST_VAR", "PER_JOB_VAR", "SHARED_VAR", "PYTHONUNBUFFERED", "PYTHONIOENCODING")
info = {"argv": sys.argv[1:], "cwd": os.getcwd(), "program_exists": os.path.isfile(args.program_path),
        "env": {k: os.environ.get(k) for k in names}}
print("INFO " + json.dumps(info, sort_keys=True))
sys.stdout.flush()
print("to stderr", file=sys.stderr)
for src, dst in (("/home/user/data/blob.bin", "copies/blob.bin"), ("/home/user/abs.bin", "copies/abs.bin"),
                 ("/tmp/in_tmp.bin", "copies/in_tmp.bin")):
    if os.path.exists(src):
        d = os.path.join(args.results_dir, dst)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copyfile(src, d)
shutil.copyfile(args.program_path, os.path.join(args.results_dir, "candidate_copy.bin"))
os.makedirs(os.path.join(args.results_dir, "sub", "deeper"), exist_ok=True)
with open(os.path.join(args.results_dir, "sub", "deeper", "all_bytes.bin"), "wb") as f:
    f.write(bytes(range(256)) * 300)
open(os.path.join(args.results_dir, "empty.bin"), "wb").close()
with open(os.path.join(args.results_dir, "with space.txt"), "w") as f:
    f.write("spaced\n")
with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    json.dump({"combined_score": 3.25, "public": {"info": info}}, f)
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
)PY";

// Finds the candidate and the additional files under the candidate's own name, and
// writes a copy of the candidate into the results under that name.
constexpr const char* names_py = R"PY(import argparse, json, os, shutil
p = argparse.ArgumentParser()
p.add_argument("--program_path", required=True)
p.add_argument("--results_dir", required=True)
args, _ = p.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)
name = os.path.basename(args.program_path)
found = {"program": os.path.isfile(args.program_path)}
for d in ("/home/user/extra", "/tmp/extra"):
    found[d] = os.path.isfile(os.path.join(d, name))
shutil.copyfile(args.program_path, os.path.join(args.results_dir, name))
with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    json.dump({"combined_score": 1.0, "public": {"name": name, "found": found}}, f)
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": all(found.values()), "error": None}, f)
)PY";

// Prints "started", sleeps 2 s, then succeeds (long enough for a sandbox to vanish under it).
constexpr const char* slow_ok_py = R"PY(import argparse, json, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--program_path", required=True)
p.add_argument("--results_dir", required=True)
args, _ = p.parse_known_args()
print("started")
sys.stdout.flush()
time.sleep(2)
os.makedirs(args.results_dir, exist_ok=True)
with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    json.dump({"combined_score": 2.0}, f)
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
)PY";

// Writes metrics.json, then hangs (a timeout that still leaves partial results).
constexpr const char* partial_py = R"PY(import argparse, json, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--program_path", required=True)
p.add_argument("--results_dir", required=True)
args, _ = p.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)
with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    json.dump({"combined_score": 0.5}, f)
print("started")
sys.stdout.flush()
time.sleep(600)
)PY";

// ---- fixture -----------------------------------------------------------------------------

class E2bLauncher : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        usable_ = genesis_test::bubblewrap_works();
        if (usable_ && genesis_test::openssl_available()) {
            pki_ = new temp_dir;
            tls_ = genesis_test::make_test_pki(pki_->path());
        }
    }
    static void TearDownTestSuite() {
        delete pki_;
        pki_ = nullptr;
    }

    void SetUp() override {
        if (!usable_) GTEST_SKIP() << "bubblewrap cannot run sandboxes here";
        emu::emulator_options options;
        if (tls_) {
            options.tls_cert = pki_->path() / "server.crt";
            options.tls_key = pki_->path() / "server.key";
        }
        emulator_ = std::make_unique<emulator_thread>(options);
        std::string error;
        ASSERT_TRUE(emulator_->start(error)) << error;
        io_thread_ = std::thread([this] { io_.run(); });
        write_file(tmp_ / "inspect.py", inspect_py);
        write_file(tmp_ / "slow_ok.py", slow_ok_py);
        write_file(tmp_ / "partial.py", partial_py);
    }

    void TearDown() override {
        for (auto& l : launchers_)
            if (l) {
                try {
                    l->shutdown();
                } catch (...) {
                }
            }
        launchers_.clear();
        work_.reset();
        if (io_thread_.joinable()) io_thread_.join();
        emulator_.reset();
    }

    gl::launcher_config config() const {
        gl::launcher_config cfg;
        cfg.type = gl::job_type::e2b;
        cfg.max_parallel_jobs = 4;
        cfg.eval_program_path = evaluator("ok.py");
        cfg.results_dir = tmp_ / "results";
        cfg.e2b.api_url = emulator_->url();
        cfg.e2b.sandbox_url = emulator_->url();
        cfg.e2b.api_key = emulator_->api_key();
        if (tls_) cfg.e2b.ca_file = (pki_->path() / "ca.crt").string();
        cfg.e2b.create_rate = 1000;
        cfg.e2b.timeout = 60s;
        return cfg;
    }

    gl::JobLauncher& make(const gl::launcher_config& cfg) {
        launchers_.push_back(gl::make_launcher(cfg, io_.get_executor()));
        auto& l = *launchers_.back();
        l.set_logger(gl::logger{gl::log_level::debug, [this](gl::log_level, std::string_view m) {
                                    std::lock_guard lock(log_mutex_);
                                    log_ += std::string(m) + "\n";
                                }});
        return l;
    }

    gl::job_spec spec(const std::string& id, const fs::path& prog = program("good.py"), const fs::path& eval = {}) {
        gl::job_spec s;
        s.job_id = id;
        s.program_path = prog;
        s.evaluator_path = eval;
        s.results_dir = tmp_ / "jobs" / id;
        return s;
    }

    static gl::job_result wait(gl::job_handle& h) {
        if (h.result.wait_for(job_wait) != std::future_status::ready) {
            ADD_FAILURE() << "job " << h.id() << " did not finish within " << job_wait.count() << " s";
            h.cancel();
            h.result.wait_for(30s);
            return {};
        }
        return h.result.get();
    }

    gl::job_result run(gl::JobLauncher& l, gl::job_spec s) {
        auto h = l.submit(std::move(s));
        return wait(h);
    }

    // Shuts the launcher down (its drain sweep included) and checks nothing leaked.
    void finish(gl::JobLauncher& l) {
        l.shutdown();
        EXPECT_TRUE(emulator_->no_leaks());
    }

    // Runs the ok.py job under `faults` and returns its result after shutdown.
    gl::job_result run_under(std::vector<emu::fault_rule> faults, gl::launcher_config cfg) {
        emulator_->set_faults(std::move(faults));
        auto& l = make(cfg);
        auto r = run(l, spec("faulty"));
        finish(l);
        return r;
    }

    // The API key and every sandbox's access token are absent from `text`.
    void expect_no_secrets(const std::string& text, const std::string& what) {
        EXPECT_THAT(text, Not(HasSubstr(emulator_->api_key()))) << what;
        for (const auto& sb : emulator_->ended())
            if (!sb.access_token.empty()) EXPECT_THAT(text, Not(HasSubstr(sb.access_token))) << what;
    }
    void expect_no_secrets(const gl::job_result& r) {
        std::string all = r.diagnostic + r.error + r.stdout_text + r.stderr_text + json::serialize(r.metrics);
        for (const auto& w : r.warnings) all += w;
        expect_no_secrets(all, "job result");
        std::lock_guard lock(log_mutex_);
        expect_no_secrets(log_, "log");
    }

    static bool has_warning(const gl::job_result& r, const std::string& part) {
        return std::any_of(r.warnings.begin(), r.warnings.end(),
                           [&](const std::string& w) { return w.find(part) != std::string::npos; });
    }

    static inline bool usable_ = false;
    static inline bool tls_ = false;
    static inline temp_dir* pki_ = nullptr;

    temp_dir tmp_;
    std::unique_ptr<emulator_thread> emulator_;
    asio::io_context io_;  // the launcher's: one thread
    asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
    std::thread io_thread_;
    std::vector<std::unique_ptr<gl::JobLauncher>> launchers_;
    std::mutex log_mutex_;
    std::string log_;
};

// ---- make_launcher -----------------------------------------------------------------------

TEST_F(E2bLauncher, MakeLauncherChecksTheKeyAndTheEndpoints) {
    boost::system::error_code ec;
    gl::diagnostics diag;
    auto cfg = config();
    cfg.e2b.api_key.clear();
    EXPECT_FALSE(gl::make_launcher(cfg, io_.get_executor(), ec, diag));
    EXPECT_EQ(ec, gl::errc::missing_credentials);
    EXPECT_EQ(diag.client_message,
              "E2B_API_KEY is not set (set it in the environment or in a .env file in the working directory or a parent)");

    cfg = config();
    cfg.e2b.api_url = "ftp://nowhere";
    EXPECT_FALSE(gl::make_launcher(cfg, io_.get_executor(), ec, diag));
    EXPECT_EQ(ec, gl::errc::config_error);
    EXPECT_THAT(diag.client_message, Not(HasSubstr(cfg.e2b.api_key)));

    cfg = config();
    cfg.e2b.sandbox_url = "not a url";
    EXPECT_FALSE(gl::make_launcher(cfg, io_.get_executor(), ec, diag));
    EXPECT_EQ(ec, gl::errc::config_error);

    cfg = config();
    cfg.e2b.ca_file = (tmp_ / "missing-ca.pem").string();
    EXPECT_FALSE(gl::make_launcher(cfg, io_.get_executor(), ec, diag));
    EXPECT_EQ(ec, gl::errc::config_error);
    EXPECT_THAT(diag.client_message, HasSubstr("job_config.ca_file"));

    cfg = config();
    write_file(tmp_ / "garbage-ca.pem", "not a certificate\n");
    cfg.e2b.ca_file = (tmp_ / "garbage-ca.pem").string();
    EXPECT_FALSE(gl::make_launcher(cfg, io_.get_executor(), ec, diag));
    EXPECT_EQ(ec, gl::errc::config_error);

    EXPECT_TRUE(gl::make_launcher(config(), io_.get_executor(), ec, diag)) << diag.client_message;
}

// ---- ok: the whole lifecycle ---------------------------------------------------------------

TEST_F(E2bLauncher, TurningTlsVerificationOffIsLoggedLoudly) {
    auto cfg = config();
    cfg.e2b.tls_verify = false;
    cfg.e2b.ca_file.clear();
    auto& l = make(cfg);
    auto r = run(l, spec("no-verify"));
    finish(l);
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    std::lock_guard lock(log_mutex_);
    EXPECT_THAT(log_, HasSubstr("TLS certificate and host-name verification is OFF"));
}

TEST_F(E2bLauncher, OkJobWithEnvArgsFilesAndStreamedOutput) {
    auto cfg = config();
    cfg.eval_program_path = tmp_ / "inspect.py";
    cfg.env_vars = {{"GENESIS_TEST_VAR", "from config"}, {"SHARED_VAR", "config"}};
    cfg.extra_cmd_args["label"] = "it's a \"quoted\" $HOME `x` value; echo no";
    cfg.extra_cmd_args["flag"] = true;
    cfg.extra_cmd_args["off"] = false;
    cfg.extra_cmd_args["n"] = 3;
    const std::string blob = random_bytes(70'000, 1), abs_blob = random_bytes(4'096, 2), tmp_blob = random_bytes(999, 3);
    write_file(tmp_ / "in" / "blob.bin", blob);
    write_file(tmp_ / "in" / "abs.bin", abs_blob);
    write_file(tmp_ / "in" / "tmp.bin", tmp_blob);
    cfg.e2b.additional_files = {{"data/blob.bin", (tmp_ / "in" / "blob.bin").string()},
                                {"/home/user/abs.bin", (tmp_ / "in" / "abs.bin").string()},
                                {"/tmp/in_tmp.bin", (tmp_ / "in" / "tmp.bin").string()}};
    // The candidate keeps its real file name, spaces included.
    const std::string candidate = "def run():\n    return 1  # \xc3\xa9\n";
    write_file(tmp_ / "cands" / "my candidate.py", candidate);

    auto& l = make(cfg);
    auto s = spec("inspect-1", tmp_ / "cands" / "my candidate.py");
    s.env = {{"PER_JOB_VAR", "per job"}, {"SHARED_VAR", "job wins"}};
    s.extra_args["ratio"] = 0.5;
    std::mutex lines_mutex;
    std::vector<std::string> out_lines, err_lines;
    s.on_stdout = [&](std::string_view line) {
        std::lock_guard lock(lines_mutex);
        out_lines.emplace_back(line);
    };
    s.on_stderr = [&](std::string_view line) {
        std::lock_guard lock(lines_mutex);
        err_lines.emplace_back(line);
    };
    auto r = run(l, s);

    ASSERT_EQ(r.result, gl::outcome::ok) << r.diagnostic << "\n" << r.stderr_text;
    EXPECT_TRUE(r.correct) << r.error;
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_DOUBLE_EQ(r.combined_score, 3.25);
    EXPECT_EQ(r.backend, "e2b");
    EXPECT_TRUE(r.diagnostic.empty()) << r.diagnostic;

    // argv, cwd, env as the evaluator saw them.
    const auto info = r.metrics.at("public").at("info").as_object();
    std::vector<std::string> argv;
    for (const auto& a : info.at("argv").as_array()) argv.emplace_back(a.as_string());
    ASSERT_GE(argv.size(), 4u);
    EXPECT_EQ(argv[0], "--program_path");
    EXPECT_EQ(argv[1], "/home/user/my candidate.py");
    EXPECT_EQ(argv[2], "--results_dir");
    EXPECT_EQ(argv[3], "/home/user/results");
    auto value_of = [&](const std::string& flag) -> std::optional<std::string> {
        auto it = std::find(argv.begin(), argv.end(), flag);
        if (it == argv.end()) return std::nullopt;
        return std::next(it) == argv.end() ? std::string() : *std::next(it);
    };
    EXPECT_EQ(value_of("--label"), "it's a \"quoted\" $HOME `x` value; echo no");
    EXPECT_EQ(value_of("--n"), "3");
    EXPECT_EQ(value_of("--ratio"), "0.5");
    EXPECT_TRUE(value_of("--flag"));
    EXPECT_FALSE(value_of("--off"));
    EXPECT_EQ(info.at("cwd").as_string(), "/home/user");
    EXPECT_TRUE(info.at("program_exists").as_bool());
    const auto& env = info.at("env").as_object();
    EXPECT_EQ(env.at("GENESIS_TEST_VAR"), "from config");
    EXPECT_EQ(env.at("PER_JOB_VAR"), "per job");
    EXPECT_EQ(env.at("SHARED_VAR"), "job wins");
    EXPECT_EQ(env.at("PYTHONUNBUFFERED"), "1");
    EXPECT_EQ(env.at("PYTHONIOENCODING"), "utf-8");

    // Uploads and downloads are byte-exact, nested folders and odd names included.
    const fs::path dir = tmp_ / "jobs" / "inspect-1";
    EXPECT_EQ(read_file(dir / "copies" / "blob.bin"), blob);
    EXPECT_EQ(read_file(dir / "copies" / "abs.bin"), abs_blob);
    EXPECT_EQ(read_file(dir / "copies" / "in_tmp.bin"), tmp_blob);
    EXPECT_EQ(read_file(dir / "candidate_copy.bin"), candidate);
    std::string all_bytes;
    for (int i = 0; i < 300; ++i)
        for (int b = 0; b < 256; ++b) all_bytes += static_cast<char>(b);
    EXPECT_EQ(read_file(dir / "sub" / "deeper" / "all_bytes.bin"), all_bytes);
    EXPECT_TRUE(fs::is_regular_file(dir / "empty.bin"));
    EXPECT_EQ(fs::file_size(dir / "empty.bin"), 0u);
    EXPECT_EQ(read_file(dir / "with space.txt"), "spaced\n");
    EXPECT_NE(std::find(r.result_files.begin(), r.result_files.end(), dir / "sub" / "deeper" / "all_bytes.bin"),
              r.result_files.end());

    // Output: logs, callbacks, capture.
    EXPECT_THAT(read_file(dir / "job_log.out"), HasSubstr("INFO {"));
    EXPECT_EQ(read_file(dir / "job_log.err"), "to stderr\n");
    EXPECT_THAT(r.stdout_text, HasSubstr("INFO {"));
    EXPECT_EQ(r.stderr_text, "to stderr\n");
    {
        std::lock_guard lock(lines_mutex);
        ASSERT_EQ(out_lines.size(), 1u);
        EXPECT_TRUE(out_lines[0].starts_with("INFO {"));
        EXPECT_EQ(err_lines, std::vector<std::string>{"to stderr"});
    }

    // The sandbox: tagged, given the env vars, killed; accounted.
    finish(l);
    auto ended = emulator_->ended();
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].id, r.sandbox_id);
    EXPECT_EQ(ended[0].template_id, "base");
    EXPECT_EQ(ended[0].metadata.at("genesis_job"), "inspect-1");
    EXPECT_TRUE(ended[0].metadata.at("genesis_run").starts_with("genesis-"));
    EXPECT_EQ(ended[0].env_vars.at("GENESIS_TEST_VAR"), "from config");
    EXPECT_EQ(emulator_->stat("killed"), 1);
    EXPECT_GT(r.sandbox_seconds, 0.0);
    EXPECT_LT(r.sandbox_seconds, 60.0);
    EXPECT_GT(r.timings.run.count(), 0);
    EXPECT_GE(r.timings.total, r.timings.create + r.timings.setup + r.timings.run + r.timings.download);
    expect_no_secrets(r);
}

// ---- candidate failures ---------------------------------------------------------------------

// A name that needs encoding somewhere (a multipart filename, a query string, the
// shell) means the same file in the upload, the command line and the download.
TEST_F(E2bLauncher, NamesThatNeedEncodingMeanTheSameFileEverywhere) {
    const std::vector<std::string> names = {"a\"quote.py", "with space.py", "per%20cent.py", "hash#.py",
                                            "what?.py",     "back\\slash.py", "semi;colon\'s.py",
                                            "\xc3\xa9t\xc3\xa9.py", "-dash.py", "$HOME.py"};
    write_file(tmp_ / "names.py", names_py);
    auto cfg = config();
    cfg.eval_program_path = tmp_ / "names.py";
    auto& l = make(cfg);
    std::vector<std::pair<std::string, gl::job_handle>> jobs;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto& name = names[i];
        const fs::path dir = tmp_ / "named" / std::to_string(i);
        write_file(dir / name, "VALUE = " + std::to_string(i) + "  # " + name + "\n");
        auto s = spec("named-" + std::to_string(i), dir / name);
        jobs.emplace_back(name, l.submit(std::move(s)));
    }
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        auto& [name, h] = jobs[i];
        auto r = wait(h);
        EXPECT_EQ(r.result, gl::outcome::ok) << name << ": " << r.diagnostic << "\n" << r.stderr_text;
        const auto* pub = r.metrics.if_contains("public");
        ASSERT_TRUE(pub && pub->is_object()) << name;
        EXPECT_EQ(pub->at("name").as_string(), name);
        EXPECT_TRUE(pub->at("found").at("program").as_bool()) << name;
        EXPECT_EQ(read_file(tmp_ / "jobs" / ("named-" + std::to_string(i)) / name),
                  read_file(tmp_ / "named" / std::to_string(i) / name))
            << name;
    }
    finish(l);

    // The same names as additional files, all in one job.
    auto cfg2 = config();
    cfg2.eval_program_path = tmp_ / "names.py";
    const std::string name = "a\"q u%25#?\xc3\xa9\\.py";
    write_file(tmp_ / "extra" / name, "extra\n");
    cfg2.e2b.additional_files = {{"extra/" + name, (tmp_ / "extra" / name).string()},
                                 {"/tmp/extra/" + name, (tmp_ / "extra" / name).string()}};
    write_file(tmp_ / "named" / "x" / name, "VALUE = 0\n");
    auto& l2 = make(cfg2);
    auto r = run(l2, spec("named-extra", tmp_ / "named" / "x" / name));
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic << "\n" << r.stderr_text;
    EXPECT_TRUE(r.correct) << json::serialize(r.metrics);
    finish(l2);
}

TEST_F(E2bLauncher, CandidateFailuresAreReportedNotRetried) {
    auto& l = make(config());
    auto failed = run(l, spec("fails", program("good.py"), evaluator("fail.py")));
    EXPECT_EQ(failed.result, gl::outcome::candidate_failed) << failed.diagnostic;
    EXPECT_EQ(failed.exit_code, 3);
    EXPECT_FALSE(failed.correct);
    EXPECT_EQ(failed.error, "boom");
    EXPECT_THAT(failed.stderr_text, HasSubstr("RuntimeError: boom"));
    EXPECT_THAT(failed.diagnostic, HasSubstr("status 3"));

    auto killed = run(l, spec("crash", program("good.py"), evaluator("crash_signal.py")));
    EXPECT_EQ(killed.result, gl::outcome::candidate_failed) << killed.diagnostic;
    EXPECT_EQ(killed.signal, 9) << killed.diagnostic;
    EXPECT_FALSE(killed.correct);
    EXPECT_THAT(killed.error, HasSubstr("SIGKILL"));

    finish(l);
    EXPECT_EQ(emulator_->stat("created"), 2);  // never retried
    EXPECT_EQ(emulator_->stat("killed"), 2);
}

// The evaluator is read once and shared by the jobs while the file stays the same;
// rewritten between jobs, the next job uploads the new one.
TEST_F(E2bLauncher, AnEvaluatorRewrittenBetweenJobsIsUploadedAfresh) {
    const fs::path eval = tmp_ / "score.py";
    auto write_evaluator = [&](const std::string& score) {
        genesis_test::write_file(eval,
                                 "import argparse, json, os\n"
                                 "p = argparse.ArgumentParser()\n"
                                 "p.add_argument('--program_path')\n"
                                 "p.add_argument('--results_dir')\n"
                                 "a, _ = p.parse_known_args()\n"
                                 "os.makedirs(a.results_dir, exist_ok=True)\n"
                                 "json.dump({'combined_score': " + score + "}, open(os.path.join(a.results_dir, 'metrics.json'), 'w'))\n"
                                 "json.dump({'correct': True}, open(os.path.join(a.results_dir, 'correct.json'), 'w'))\n");
    };
    write_evaluator("1");
    auto& l = make(config());
    auto first = run(l, spec("first", program("good.py"), eval));
    auto second = run(l, spec("second", program("good.py"), eval));
    write_evaluator("22.5");  // another size and content
    auto third = run(l, spec("third", program("good.py"), eval));
    ASSERT_EQ(third.result, gl::outcome::ok) << third.diagnostic;
    EXPECT_EQ(first.combined_score, 1.0);
    EXPECT_EQ(second.combined_score, 1.0);
    EXPECT_EQ(third.combined_score, 22.5);
    std::filesystem::remove(eval);
    auto gone = run(l, spec("gone", program("good.py"), eval));
    EXPECT_EQ(gone.result, gl::outcome::setup_failed);
    EXPECT_THAT(gone.diagnostic, HasSubstr("not found"));
    finish(l);
}

// result_files: a results folder the job made holds what the launcher wrote; a
// folder that existed keeps, and lists, what was there before.
TEST_F(E2bLauncher, ResultFilesListWhatTheResultsFolderHolds) {
    auto& l = make(config());
    auto names = [](const gl::job_result& r) {
        std::vector<std::string> out;
        for (const auto& f : r.result_files) out.push_back(f.lexically_relative(r.results_dir).string());
        return out;
    };
    auto fresh = run(l, spec("fresh"));
    ASSERT_EQ(fresh.result, gl::outcome::ok) << fresh.diagnostic;
    const auto fresh_names = names(fresh);
    EXPECT_THAT(fresh_names, IsSupersetOf({"job_log.out", "job_log.err", "metrics.json", "correct.json"}));
    for (const auto& f : fresh.result_files) EXPECT_TRUE(fs::is_regular_file(f)) << f;

    auto old = spec("old");
    fs::create_directories(old.results_dir / "earlier");
    genesis_test::write_file(old.results_dir / "earlier" / "note.txt", "from before");
    auto again = run(l, old);
    ASSERT_EQ(again.result, gl::outcome::ok) << again.diagnostic;
    auto expected = fresh_names;
    expected.push_back("earlier/note.txt");
    EXPECT_THAT(names(again), UnorderedElementsAreArray(expected));
    finish(l);
}

// ---- timeout ----------------------------------------------------------------------------------

TEST_F(E2bLauncher, TimeoutKillsTheCommandAndTheSandbox) {
    auto& l = make(config());
    auto s = spec("sleepy", program("good.py"), evaluator("sleep.py"));
    s.timeout = 2s;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run(l, s);
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(r.result, gl::outcome::timeout) << r.diagnostic;
    EXPECT_THAT(r.diagnostic, HasSubstr("time limit of 2s exceeded"));
    EXPECT_THAT(r.stdout_text, HasSubstr("started"));
    EXPECT_FALSE(r.correct);
    EXPECT_LT(took, 15s);
    EXPECT_GE(took, 2s);
    finish(l);
    EXPECT_EQ(emulator_->stat("killed"), 1);
    EXPECT_EQ(emulator_->requests("create"), 1);
}

TEST_F(E2bLauncher, TimeoutStillDownloadsPartialResults) {
    auto& l = make(config());
    auto s = spec("partial", program("good.py"), tmp_ / "partial.py");
    s.timeout = 1500ms;
    auto r = run(l, s);
    EXPECT_EQ(r.result, gl::outcome::timeout) << r.diagnostic;
    EXPECT_DOUBLE_EQ(r.combined_score, 0.5);
    EXPECT_FALSE(r.correct);
    EXPECT_EQ(r.error, r.diagnostic);  // no correct.json: the error says why the job ended
    finish(l);
}

// The time limit is a promise to the engine: a job stopped at its limit is reported
// within kill_grace + a few seconds, however slow the service then is with the
// results and the kill. The kill goes on after the result; shutdown() waits for it.
TEST_F(E2bLauncher, ATimedOutJobIsReportedWithoutWaitingForASlowDownloadOrKill) {
    emu::fault_rule slow_listing;
    slow_listing.endpoint = "filesystem.list_dir";
    slow_listing.kind = "stall";
    slow_listing.after_ms = 30'000;
    emu::fault_rule slow_kill;
    slow_kill.endpoint = "kill";
    slow_kill.kind = "stall";
    slow_kill.after_ms = 15'000;
    emulator_->set_faults({slow_listing, slow_kill});
    auto cfg = config();
    cfg.kill_grace = 1s;
    auto& l = make(cfg);
    auto s = spec("partial", program("good.py"), tmp_ / "partial.py");
    s.timeout = 2s;
    auto r = run(l, s);
    EXPECT_EQ(emulator_->stat("killed"), 0) << "the result waited for the kill";
    EXPECT_EQ(r.result, gl::outcome::timeout) << r.diagnostic;
    EXPECT_THAT(r.diagnostic, HasSubstr("time limit of 2s exceeded"));
    EXPECT_THAT(r.warnings, testing::Contains(HasSubstr("could not be fetched within 3s (job_config.kill_grace + 2s)")));
    EXPECT_LT(r.timings.download, 15s);
    finish(l);  // waits for the kill
    EXPECT_EQ(emulator_->stat("killed"), 1);
    EXPECT_EQ(emulator_->requests("create"), 1);
}

TEST_F(E2bLauncher, DestroyingTheLauncherCancelsJobsAndKillsTheirSandboxes) {
    auto cfg = config();
    auto l = gl::make_launcher(cfg, io_.get_executor());
    std::atomic<int> started{0};
    std::vector<gl::job_handle> handles;
    for (int i = 0; i < 3; ++i) {
        auto s = spec("gone-" + std::to_string(i), program("good.py"), evaluator("sleep.py"));
        s.on_stdout = [&started](std::string_view line) {
            if (line == "started") ++started;
        };
        handles.push_back(l->submit(s));
    }
    ASSERT_TRUE(genesis_test::eventually([&] { return started.load() == 3; }, 60s));
    l.reset();  // no shutdown(): the destructor cancels; the jobs still clean up
    for (auto& h : handles) EXPECT_EQ(wait(h).result, gl::outcome::cancelled);
    EXPECT_TRUE(genesis_test::eventually([&] { return emulator_->stat("live") == 0; }, 20s));
    EXPECT_EQ(emulator_->stat("killed"), 3);
}

// ---- setup failures ----------------------------------------------------------------------------

TEST_F(E2bLauncher, MissingLocalFilesFailBeforeAnySandboxExists) {
    auto cfg = config();
    cfg.e2b.additional_files = {{"data/x.bin", (tmp_ / "nope" / "x.bin").string()}};
    auto& l = make(cfg);
    auto r = run(l, spec("missing-extra"));
    EXPECT_EQ(r.result, gl::outcome::setup_failed);
    EXPECT_THAT(r.diagnostic, HasSubstr((tmp_ / "nope" / "x.bin").string()));
    EXPECT_THAT(r.diagnostic, HasSubstr("not found"));
    EXPECT_EQ(r.error, r.diagnostic);

    auto no_eval = run(l, spec("missing-eval", program("good.py"), tmp_ / "no-such-evaluator.py"));
    EXPECT_EQ(no_eval.result, gl::outcome::setup_failed);
    EXPECT_THAT(no_eval.diagnostic, HasSubstr("evaluator"));
    finish(l);
    EXPECT_EQ(emulator_->requests("create"), 0);
    EXPECT_EQ(emulator_->stat("created"), 0);
}

TEST_F(E2bLauncher, PipFailureIsASetupFailureWithPipsOutput) {
    auto cfg = config();
    cfg.e2b.dependencies = {"definitely-not-installed-pkg"};
    auto& l = make(cfg);
    auto r = run(l, spec("pip-fails"));
    EXPECT_EQ(r.result, gl::outcome::setup_failed);
    EXPECT_THAT(r.diagnostic, HasSubstr("dependency install failed: `pip install definitely-not-installed-pkg`"));
    EXPECT_THAT(r.diagnostic, HasSubstr("No matching distribution found for definitely-not-installed-pkg"));
    const fs::path dir = tmp_ / "jobs" / "pip-fails";
    EXPECT_THAT(read_file(dir / "job_log.out"), HasSubstr("[genesis-launch] $ pip install definitely-not-installed-pkg"));
    EXPECT_THAT(read_file(dir / "job_log.err"), HasSubstr("No matching distribution"));
    EXPECT_FALSE(fs::exists(dir / "metrics.json"));  // the evaluator never ran
    finish(l);
    EXPECT_EQ(emulator_->stat("killed"), 1);
    EXPECT_EQ(emulator_->requests("process.start"), 1);
}

TEST_F(E2bLauncher, DependenciesThatAreAvailableInstallAndTheJobRuns) {
    auto cfg = config();
    cfg.e2b.dependencies = {"numpy"};
    auto& l = make(cfg);
    auto r = run(l, spec("with-numpy"));
    ASSERT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    EXPECT_TRUE(r.correct);
    const std::string log = read_file(tmp_ / "jobs" / "with-numpy" / "job_log.out");
    EXPECT_THAT(log, HasSubstr("[genesis-launch] $ pip install numpy\n"));
    EXPECT_THAT(log, HasSubstr("Requirement already satisfied: numpy"));
    EXPECT_THAT(log, HasSubstr("[genesis-launch] $ mkdir -p results && exec python evaluate.py"));
    EXPECT_THAT(log, HasSubstr("hello stdout"));
    // The evaluator's capture and callbacks see only the evaluator.
    EXPECT_THAT(r.stdout_text, Not(HasSubstr("Requirement")));
    EXPECT_THAT(r.stdout_text, HasSubstr("hello stdout"));
    finish(l);
    EXPECT_EQ(emulator_->requests("process.start"), 2);
}

TEST_F(E2bLauncher, UnknownTemplateIsASetupFailureWithTheServersMessage) {
    auto cfg = config();
    cfg.e2b.template_id = "no-such-template";
    auto& l = make(cfg);
    auto r = run(l, spec("bad-template"));
    EXPECT_EQ(r.result, gl::outcome::setup_failed) << r.diagnostic;
    EXPECT_THAT(r.diagnostic, HasSubstr("no-such-template"));
    EXPECT_THAT(r.diagnostic, HasSubstr("job_config.template"));
    finish(l);
    EXPECT_EQ(emulator_->stat("created"), 0);
    // Not retried. (The API client reads a 404 on POST /v2/sandboxes as "no v2
    // route" and asks the legacy POST /sandboxes once more: at most 2 requests.)
    EXPECT_LE(emulator_->requests("create"), 2);
}

// ---- infrastructure errors ------------------------------------------------------------------------

TEST_F(E2bLauncher, Persistent500OnCreateIsAnInfraErrorAfterTheRetryBudget) {
    auto cfg = config();
    cfg.e2b.max_retries = 3;
    auto r = run_under({fault("create", "status", 500, -1)}, cfg);
    EXPECT_EQ(r.result, gl::outcome::infra_error);
    EXPECT_THAT(r.diagnostic, HasSubstr("could not create a sandbox after 3 attempts"));
    EXPECT_EQ(emulator_->requests("create"), 3);
    EXPECT_EQ(emulator_->stat("created"), 0);
    expect_no_secrets(r);
}

TEST_F(E2bLauncher, ARejectedApiKeyIsAnInfraErrorThatSaysSo) {
    auto cfg = config();
    cfg.e2b.api_key = "e2b_" + std::string(40, '0');
    auto& l = make(cfg);
    auto r = run(l, spec("bad-key"));
    EXPECT_EQ(r.result, gl::outcome::infra_error);
    EXPECT_THAT(r.diagnostic, HasSubstr("E2B rejected the API key"));
    EXPECT_THAT(r.diagnostic, Not(HasSubstr(cfg.e2b.api_key)));
    std::lock_guard lock(log_mutex_);
    EXPECT_THAT(log_, Not(HasSubstr(cfg.e2b.api_key)));
}

// ---- cancellation and shutdown ------------------------------------------------------------------

TEST_F(E2bLauncher, CancelWhileRunningKillsTheSandbox) {
    auto& l = make(config());
    auto s = spec("to-cancel", program("good.py"), evaluator("sleep.py"));
    auto started = std::make_shared<std::promise<void>>();
    auto once = std::make_shared<std::once_flag>();
    s.on_stdout = [started, once](std::string_view line) {
        if (line == "started") std::call_once(*once, [&] { started->set_value(); });
    };
    auto h = l.submit(s);
    ASSERT_EQ(started->get_future().wait_for(60s), std::future_status::ready);
    const auto t0 = std::chrono::steady_clock::now();
    h.cancel();
    auto r = wait(h);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
    EXPECT_EQ(r.result, gl::outcome::cancelled) << r.diagnostic;
    EXPECT_THAT(r.diagnostic, HasSubstr("cancelled during the evaluation"));
    EXPECT_THAT(r.diagnostic, HasSubstr("killed"));
    EXPECT_EQ(emulator_->stat("live"), 0);  // killed before the result came back
    finish(l);
    EXPECT_EQ(emulator_->stat("killed"), 1);
}

TEST_F(E2bLauncher, CancelDuringCreateLeavesNothingBehind) {
    emulator_->configure([](emu::emulator_options& o) { o.endpoint_latency["create"] = 1500ms; });
    auto& l = make(config());
    auto h = l.submit(spec("cancel-in-create"));
    ASSERT_TRUE(genesis_test::eventually([&] { return emulator_->requests("create") == 1; }, 20s));
    h.cancel();
    auto r = wait(h);
    EXPECT_EQ(r.result, gl::outcome::cancelled) << r.diagnostic;
    EXPECT_THAT(r.diagnostic, HasSubstr("cancelled during sandbox creation"));
    // The emulator still makes the sandbox after its latency; the shutdown sweep
    // (tagged with this launcher's run) must find and kill it.
    ASSERT_TRUE(genesis_test::eventually([&] { return emulator_->stat("created") == 1; }, 20s));
    finish(l);
}

TEST_F(E2bLauncher, ShutdownCancelsQueuedAndRunningJobsAndLeaksNothing) {
    auto cfg = config();
    cfg.max_parallel_jobs = 3;
    auto& l = make(cfg);
    std::atomic<int> started{0};
    std::vector<gl::job_handle> handles;
    for (int i = 0; i < 6; ++i) {
        auto s = spec("sd-" + std::to_string(i), program("good.py"), evaluator("sleep.py"));
        s.on_stdout = [&started](std::string_view line) {
            if (line == "started") ++started;
        };
        handles.push_back(l.submit(s));
    }
    ASSERT_TRUE(genesis_test::eventually([&] { return started.load() == 3; }, 60s));
    const auto t0 = std::chrono::steady_clock::now();
    l.shutdown();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
    for (auto& h : handles) {
        auto r = wait(h);
        EXPECT_EQ(r.result, gl::outcome::cancelled) << r.job_id << ": " << r.diagnostic;
    }
    EXPECT_TRUE(emulator_->no_leaks());
    EXPECT_EQ(emulator_->stat("created"), 3);
}

TEST_F(E2bLauncher, ShutdownSweepKillsSandboxesTaggedWithTheRun) {
    auto cfg = config();
    cfg.e2b.run_tag = "sweep-at-shutdown";
    const std::string ours = emulator_->plant_sandbox({{"genesis_run", "sweep-at-shutdown"}}, 600s);
    const std::string theirs = emulator_->plant_sandbox({{"genesis_run", "someone-else"}}, 600s);
    auto& l = make(cfg);
    auto r = run(l, spec("tagged"));
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    l.shutdown();
    auto live = emulator_->live_metadata();
    ASSERT_EQ(live.size(), 1u);  // only the other run's sandbox is left
    EXPECT_EQ(live[0].at("genesis_run"), "someone-else");
    std::lock_guard lock(log_mutex_);
    EXPECT_THAT(log_, HasSubstr("killed 1 leftover sandbox(es) tagged genesis_run=sweep-at-shutdown"));
    emulator_->on_thread([&](emu::emulator& e) {
        return e.state().sandboxes.destroy(theirs, emu::sandbox_registry::end_reason::killed);
    });
    EXPECT_TRUE(emulator_->no_leaks());
    (void)ours;
}

TEST_F(E2bLauncher, SweepOnStartKillsLeftoversBeforeTheFirstCreate) {
    auto cfg = config();
    cfg.e2b.run_tag = "nightly";
    cfg.e2b.sweep_on_start = true;
    const std::string leftover = emulator_->plant_sandbox({{"genesis_run", "nightly"}, {"genesis_job", "old"}}, 600s);
    auto& l = make(cfg);
    auto r = run(l, spec("after-sweep"));
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    auto ended = emulator_->ended();
    ASSERT_GE(ended.size(), 2u);
    EXPECT_EQ(ended[0].id, leftover);  // gone before the job's sandbox ended
    EXPECT_EQ(ended[1].id, r.sandbox_id);
    finish(l);
}

// ---- injected faults ------------------------------------------------------------------------------

TEST_F(E2bLauncher, RateLimitOnCreateHonoursRetryAfter) {
    auto rule = fault("create", "status", 429, 2);
    rule.retry_after = 1;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run_under({rule}, config());
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 2s);
    EXPECT_EQ(emulator_->requests("create"), 3);
    EXPECT_EQ(emulator_->stat("created"), 1);
}

TEST_F(E2bLauncher, TransientStatusesOnCreateUploadAndStartAreRetried) {
    for (const int status : {500, 502, 503}) {
        for (const char* endpoint : {"create", "files.upload", "process.start"}) {
            SCOPED_TRACE(std::string(endpoint) + " " + std::to_string(status));
            const auto before = emulator_->requests(endpoint);
            auto r = run_under({fault(endpoint, "status", status, 1)}, config());
            EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
            EXPECT_TRUE(r.correct);
            // One more request than without the fault (evaluator and candidate go up in one upload).
            EXPECT_EQ(emulator_->requests(endpoint) - before, 2);
            expect_no_secrets(r);
        }
    }
    // 502 on create may mean "created but the answer was lost": looked up, none found.
    EXPECT_EQ(emulator_->stat("created"), 9);
}

TEST_F(E2bLauncher, SteadyRefusalOfCreatesCostsMaxRetriesRequestsNotItsSquare) {
    // One retry layer for creates: the launcher's loop, not the API client's as well.
    auto cfg = config();
    cfg.e2b.max_retries = 3;
    for (const int status : {503, 429}) {
        SCOPED_TRACE(status);
        const auto before = emulator_->requests("create");
        auto rule = fault("create", "status", status, -1);
        rule.retry_after = 0;
        auto r = run_under({rule}, cfg);
        EXPECT_EQ(r.result, gl::outcome::infra_error);
        EXPECT_THAT(r.diagnostic, HasSubstr("could not create a sandbox after 3 attempts"));
        EXPECT_EQ(emulator_->requests("create") - before, 3);
    }
    EXPECT_EQ(emulator_->stat("created"), 0);
}

TEST_F(E2bLauncher, ConnectionResets) {
    {
        SCOPED_TRACE("create: the answer is lost; looked up by tags, then created again");
        auto r = run_under({fault("create", "reset")}, config());
        EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
        EXPECT_EQ(emulator_->requests("create"), 2);
        EXPECT_GE(emulator_->requests("list"), 1);
    }
    {
        SCOPED_TRACE("upload: idempotent, retried");
        auto r = run_under({fault("files.upload", "reset")}, config());
        EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    }
    {
        SCOPED_TRACE("start: the command may have started; the job runs again on a new sandbox");
        const auto created = emulator_->stat("created");
        auto r = run_under({fault("process.start", "reset")}, config());
        EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
        EXPECT_TRUE(r.correct);
        EXPECT_TRUE(has_warning(r, "broke during the evaluation")) << (r.warnings.empty() ? "" : r.warnings[0]);
        EXPECT_EQ(emulator_->stat("created") - created, 2);
        expect_no_secrets(r);
    }
}

TEST_F(E2bLauncher, CutStartStreamRunsTheJobAgainOnANewSandboxAndKillsTheFirst) {
    auto rule = fault("process.start", "cut_stream");
    rule.after_events = 1;
    auto r = run_under({rule}, config());
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    EXPECT_TRUE(r.correct);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_THAT(r.warnings[0], HasSubstr("the connection to sandbox "));
    EXPECT_THAT(r.warnings[0], HasSubstr("broke during the evaluation (evaluator run: "));
    EXPECT_THAT(r.warnings[0], HasSubstr("retried on a new sandbox"));
    EXPECT_THAT(read_file(tmp_ / "jobs" / "faulty" / "job_log.out"), HasSubstr("retried on a new sandbox"));
    EXPECT_EQ(emulator_->stat("created"), 2);
    EXPECT_EQ(emulator_->stat("killed"), 2);  // the first sandbox was still alive: killed too
    expect_no_secrets(r);
}

TEST_F(E2bLauncher, CutStreamsOnEveryAttemptEndAsAnInfraErrorNeverAsTheCandidates) {
    auto rule = fault("process.start", "cut_stream", 500, -1);
    rule.after_events = 1;
    auto r = run_under({rule}, config());
    EXPECT_EQ(r.result, gl::outcome::infra_error) << r.diagnostic;
    EXPECT_THAT(r.diagnostic, HasSubstr("no more retries: 3 sandboxes were lost mid-job"));
    EXPECT_EQ(emulator_->stat("created"), 3);
    EXPECT_EQ(emulator_->stat("killed"), 3);
}

TEST_F(E2bLauncher, AVanishedSandboxAndACutStreamInOneJobStillEndOk) {
    auto cfg = config();
    cfg.eval_program_path = tmp_ / "slow_ok.py";
    auto vanish = fault("create", "vanish");
    vanish.after_ms = 700;
    auto cut = fault("process.start", "cut_stream");
    cut.skip = 1;  // the second attempt's command stream is cut
    cut.after_events = 1;
    auto r = run_under({vanish, cut}, cfg);
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    EXPECT_TRUE(r.correct);
    EXPECT_TRUE(has_warning(r, "vanished during the evaluation"));
    EXPECT_TRUE(has_warning(r, "broke during the evaluation"));
    EXPECT_EQ(emulator_->stat("created"), 3);
    EXPECT_EQ(emulator_->stat("vanished"), 1);
}

TEST_F(E2bLauncher, LostCreateResponseIsFoundByItsTagsAndKilled) {
    auto r = run_under({fault("create", "lose_response")}, config());
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    EXPECT_TRUE(has_warning(r, "was created without an answer reaching us; killed it")) << r.warnings.size();
    EXPECT_EQ(emulator_->stat("created"), 2);
    EXPECT_EQ(emulator_->stat("killed"), 2);
}

TEST_F(E2bLauncher, VanishedSandboxIsRetriedOnceOnANewSandbox) {
    auto cfg = config();
    cfg.eval_program_path = tmp_ / "slow_ok.py";
    auto rule = fault("create", "vanish");
    rule.after_ms = 700;
    auto r = run_under({rule}, cfg);
    EXPECT_EQ(r.result, gl::outcome::ok) << r.diagnostic;
    EXPECT_TRUE(r.correct);
    EXPECT_TRUE(has_warning(r, "vanished during the evaluation")) << (r.warnings.empty() ? "" : r.warnings[0]);
    EXPECT_EQ(emulator_->stat("vanished"), 1);
    EXPECT_EQ(emulator_->stat("created"), 2);
    EXPECT_THAT(read_file(tmp_ / "jobs" / "faulty" / "job_log.out"), HasSubstr("retried on a new sandbox"));
}

TEST_F(E2bLauncher, VanishedSandboxWithoutRetryOrThreeTimesIsAnInfraError) {
    auto cfg = config();
    cfg.eval_program_path = tmp_ / "slow_ok.py";
    auto rule = fault("create", "vanish", 500, 3);
    rule.after_ms = 700;
    auto thrice = run_under({rule}, cfg);
    EXPECT_EQ(thrice.result, gl::outcome::infra_error) << thrice.diagnostic;
    EXPECT_THAT(thrice.diagnostic, HasSubstr("no more retries: 3 sandboxes were lost mid-job"));
    EXPECT_EQ(emulator_->stat("created"), 3);

    cfg.e2b.retry_vanished = false;
    rule.count = 1;
    auto off = run_under({rule}, cfg);
    EXPECT_EQ(off.result, gl::outcome::infra_error) << off.diagnostic;
    EXPECT_THAT(off.diagnostic, HasSubstr("not retried (job_config.retry_vanished is false)"));
    EXPECT_EQ(emulator_->stat("created"), 4);
}

// ---- load ----------------------------------------------------------------------------------------

TEST_F(E2bLauncher, FiveHundredJobsOnOneThreadWithTwoHundredSandboxesAtMost) {
    // Sanitizer builds run it smaller (GENESIS_LOAD_JOBS, GENESIS_LOAD_PARALLEL, set by
    // tests/CMakeLists.txt): 3-5x slower, one launcher thread there starves 200 concurrent
    // TLS handshakes past their 10 s limit.
    const int jobs = genesis_test::env_int("GENESIS_LOAD_JOBS", 500);
    const int parallel = genesis_test::env_int("GENESIS_LOAD_PARALLEL", 200);
    auto cfg = config();
    cfg.max_parallel_jobs = parallel;
    cfg.e2b.create_rate = 1000;
    auto& l = make(cfg);

    auto cpu_on_launcher_thread = [this] {
        std::promise<double> p;
        auto f = p.get_future();
        asio::post(io_, [&p] { p.set_value(thread_cpu_seconds()); });
        return f.get();
    };
    const double cpu0 = cpu_on_launcher_thread();
    const auto t0 = std::chrono::steady_clock::now();

    std::mutex m;
    std::map<gl::outcome, int> outcomes;
    std::vector<std::string> problems;
    genesis_test::batch_progress progress(jobs);
    for (int i = 0; i < jobs; ++i) {
        auto s = spec("load-" + std::to_string(i));
        l.async_submit(std::move(s), [&](boost::system::error_code ec, gl::job_result r) {
            {
                std::lock_guard lock(m);
                ++outcomes[r.result];
                if (ec || r.result != gl::outcome::ok || !r.correct)
                    if (problems.size() < 5) problems.push_back(r.job_id + ": " + ec.message() + " " + r.diagnostic);
            }
            progress.one_done();
        });
    }
    // A hang guard, not a speed target (bench/ has those): no job finished for 3 minutes.
    if (!progress.wait(180s)) {
        ADD_FAILURE() << progress.remaining() << " jobs left and none finished for 180 s";
        l.shutdown();  // ends them (their handlers use this frame's locals)
        return;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_on_launcher_thread() - cpu0;
    l.shutdown();

    const auto connections = emulator_->stat("connections_accepted");
    std::printf("[ load     ] %d jobs, max_parallel_jobs=%d: wall %.1f s, launcher thread CPU %.1f s, "
                "peak live sandboxes %zu, connections %lld\n",
                jobs, parallel, wall, cpu, emulator_->peak_live(), static_cast<long long>(connections));
    // Pooled connections are kept for the concurrency in use: a job has at most
    // three requests in flight, so no more than 3 x 200 connections are ever
    // needed (plus the shutdown sweep's); a pool that closes them opens thousands.
    EXPECT_LE(connections, 3 * parallel + 2);
    EXPECT_EQ(outcomes[gl::outcome::ok], jobs) << (problems.empty() ? "" : problems.front());
    EXPECT_LE(emulator_->peak_live(), static_cast<std::size_t>(parallel));
    EXPECT_GT(emulator_->peak_live(), 1u);
    EXPECT_EQ(emulator_->stat("created"), jobs);
    EXPECT_TRUE(emulator_->no_leaks());
}

// ---- parity with the local backend -------------------------------------------------------------

TEST_F(E2bLauncher, CirclePackingMatchesTheLocalBackend) {
    const fs::path example = fs::path(GENESIS_SOURCE_DIR) / "examples" / "circle_packing";
    auto local_cfg = config();
    local_cfg.type = gl::job_type::local;
    local_cfg.local.python = GENESIS_TEST_PYTHON;
    local_cfg.eval_program_path = example / "evaluate.py";
    auto e2b_cfg = config();
    e2b_cfg.eval_program_path = example / "evaluate.py";
    e2b_cfg.e2b.dependencies = {"numpy"};

    auto& local = make(local_cfg);
    auto& remote = make(e2b_cfg);
    auto a = run(local, spec("circle-local", example / "initial.py"));
    auto b = run(remote, spec("circle-e2b", example / "initial.py"));
    ASSERT_EQ(a.result, gl::outcome::ok) << a.diagnostic << a.stderr_text;
    ASSERT_EQ(b.result, gl::outcome::ok) << b.diagnostic << b.stderr_text;
    EXPECT_TRUE(a.correct);
    EXPECT_TRUE(b.correct);
    EXPECT_EQ(a.combined_score, b.combined_score);
    EXPECT_NEAR(b.combined_score, 2.5, 1e-6);
    auto strip_time = [](json::object m) {
        if (auto* p = m.if_contains("private"); p && p->is_object()) p->as_object().erase("eval_time_s");
        return m;
    };
    EXPECT_EQ(strip_time(a.metrics), strip_time(b.metrics));
    std::vector<std::string> names_a, names_b;
    for (const auto& f : a.result_files) names_a.push_back(f.filename().string());
    for (const auto& f : b.result_files) names_b.push_back(f.filename().string());
    EXPECT_EQ(names_a, names_b);
    const fs::path npz_a = tmp_ / "jobs" / "circle-local" / "extra.npz";
    const fs::path npz_b = tmp_ / "jobs" / "circle-e2b" / "extra.npz";
    // The example writes extra.npz deterministically, so the two runs' files are
    // byte-identical when the download is byte-exact.
    ASSERT_TRUE(fs::exists(npz_a));
    EXPECT_EQ(read_file(npz_a), read_file(npz_b));
    finish(remote);
}

// ---- the CLI against the emulator program ----------------------------------------------------------

#ifdef GENESIS_E2B_EMULATOR_PATH
#ifdef GENESIS_CLI_PATH

struct program_run {
    int exit_code = -1;
    std::string out, err;
};

program_run run_cli(const std::vector<std::string>& args, const fs::path& cwd,
                    const std::vector<std::pair<std::string, std::string>>& env, const fs::path& logs) {
    genesis_test::logged_process cli(GENESIS_CLI_PATH, args, cwd, logs, env);
    program_run r;
    const bool ended = cli.wait(std::chrono::seconds(120));
    r.exit_code = ended ? cli.exit_code() : -1;
    r.out = cli.out();
    r.err = cli.err();
    return r;
}

std::string curl_stats(const std::string& url, const fs::path& ca) {
    if (std::system("curl --version >/dev/null 2>&1") != 0) return {};
    const std::string cmd = "curl -sS --max-time 10 --cacert '" + ca.string() + "' '" + url + "/_emulator/stats'";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return {};
    std::string out;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
    return out;
}

TEST_F(E2bLauncher, CliRunsTheCirclePackingExampleOnTheEmulatorProgram) {
    if (!tls_) GTEST_SKIP() << "no openssl CLI for the test CA";
    genesis_test::emulator_process emulator(GENESIS_E2B_EMULATOR_PATH,
                                            {"--port", "0", "--tls-cert", (pki_->path() / "server.crt").string(),
                                             "--tls-key", (pki_->path() / "server.key").string()});
    ASSERT_TRUE(emulator.ready());
    const std::string url = emulator.field("api_url");
    ASSERT_TRUE(url.starts_with("https://"));
    const fs::path source = GENESIS_SOURCE_DIR;
    const std::string ca = (pki_->path() / "ca.crt").string();
    std::vector<std::pair<std::string, std::string>> env{
        {"E2B_API_URL", url}, {"E2B_SANDBOX_URL", url}, {"E2B_API_KEY", emulator.field("api_key")}};

    auto e2b = run_cli({"--config-dir", (source / "configs").string(), "variant=circle_packing_example", "cluster=e2b",
                        "--json", "--results-dir", (tmp_ / "cli-e2b").string(), "job_config.ca_file=" + ca},
                       source, env, tmp_ / "logs");
    auto local = run_cli({"--config-dir", (source / "configs").string(), "variant=circle_packing_example", "--json",
                          "--results-dir", (tmp_ / "cli-local").string()},
                         source, {}, tmp_ / "logs");
    ASSERT_EQ(e2b.exit_code, 0) << e2b.out << e2b.err;
    ASSERT_EQ(local.exit_code, 0) << local.out << local.err;
    const auto je = json::parse(e2b.out).as_object();
    const auto jl = json::parse(local.out).as_object();
    EXPECT_EQ(je.at("outcome"), "ok");
    EXPECT_EQ(je.at("backend"), "e2b");
    EXPECT_TRUE(je.at("sandbox_id").is_string());
    EXPECT_GT(je.at("sandbox_seconds").to_number<double>(), 0.0);
    EXPECT_TRUE(jl.at("sandbox_seconds").is_null());
    EXPECT_EQ(je.at("combined_score"), jl.at("combined_score"));
    EXPECT_EQ(je.at("metrics").at("public"), jl.at("metrics").at("public"));
    EXPECT_EQ(je.at("correct"), true);
    EXPECT_THAT(e2b.err, HasSubstr("sandbox-seconds, estimated $"));
    EXPECT_THAT(e2b.err, Not(HasSubstr(emulator.field("api_key"))));

    if (auto stats = curl_stats(url, ca); !stats.empty()) {
        const auto s = json::parse(stats).as_object();
        EXPECT_EQ(s.at("live").to_number<int>(), 0) << stats;
        EXPECT_EQ(s.at("created").to_number<int>(), 1) << stats;
        EXPECT_EQ(s.at("killed").to_number<int>(), 1) << stats;
    }
    EXPECT_EQ(emulator.stop(), 0);
}

#endif
#endif

}  // namespace

#endif  // __has_include("emulator.hpp")
