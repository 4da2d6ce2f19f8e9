// genesis_bench_local: the local backend against the `xargs -P` floor.
//
// In one run, for each round: (a) the floor, `seq N | xargs -P S -I{} <python>
// evaluate.py --program_path P --results_dir DIR/{}` under /bin/sh, and (b) the
// same N evaluations with S slots through the public library API (make_launcher
// with the local backend, async_submit, one io_context thread on this thread).
// The order alternates between rounds. Prints wall per job for both, the ratio
// launcher / floor, and the launcher's own CPU per job (getrusage(RUSAGE_SELF):
// every thread of this process, children excluded). Every job must end ok with
// the evaluator's metrics read back, and every floor evaluation must have written
// its results (exit status 1 otherwise). See docs/performance.md.
#include <genesis/launch/launch.hpp>

#include "bench_support.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
namespace gl = genesis::launch;

namespace {

struct options {
    int jobs = 200;
    int slots = 2;
    int rounds = 3;
    std::string python = "/usr/bin/python3";
    fs::path data = GENESIS_BENCH_LOCAL_DATA_DIR;
    bool json = false;
    fs::path results_parent;  // where the run's folder goes; empty: the temp folder (TMPDIR)
    std::string only;  // "floor" or "launcher": run one side (profiling); empty: both
    // The library's defaults; off only to measure what they cost.
    bool kill_escaped = true;
    bool private_tmp = true;
};

[[noreturn]] void die(const std::string& message) { genesis_bench::fail("genesis_bench_local", message); }

options parse(int argc, char** argv) {
    options o;
    genesis_bench::arguments args("genesis_bench_local", argc, argv);
    while (args.next()) {
        const std::string& a = args.option();
        auto value = [&] { return args.value(); };
        auto number = [&] { return args.number(); };
        if (a == "--jobs" || a == "-n") o.jobs = number();
        else if (a == "--slots" || a == "-s") o.slots = number();
        else if (a == "--rounds" || a == "-r") o.rounds = number();
        else if (a == "--python") o.python = value();
        else if (a == "--data") o.data = value();
        else if (a == "--results-dir") o.results_parent = value();
        else if (a == "--json") o.json = true;
        else if (a == "--only") o.only = value();
        else if (a == "--no-kill-escaped") o.kill_escaped = false;
        else if (a == "--no-private-tmp") o.private_tmp = false;
        else if (a == "--help" || a == "-h") {
            std::cout << "usage: genesis_bench_local [--jobs N] [--slots S] [--rounds K] [--python PATH] [--data DIR] [--json]\n"
                         "       [--only floor|launcher]   one side only (for profiling; no ratio)\n"
                         "       [--no-kill-escaped] [--no-private-tmp]   turn a default off (what it costs)\n"
                         "       [--results-dir DIR]   the results folders in DIR (default: the temp folder, TMPDIR);\n"
                         "                             the jobs' private temp folders stay in TMPDIR\n";
            std::exit(0);
        } else args.usage("unknown option '" + a + "'");
    }
    if (o.jobs < 1 || o.slots < 1 || o.rounds < 1) args.usage("--jobs, --slots and --rounds must be >= 1");
    if (!o.only.empty() && o.only != "floor" && o.only != "launcher") args.usage("--only takes floor or launcher");
    return o;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

double seconds(const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; }

struct usage_sample {
    double user = 0, sys = 0;  // seconds
    long switches = 0;         // voluntary + involuntary context switches
};

usage_sample usage_now(int who) {
    rusage ru{};
    ::getrusage(who, &ru);
    return {seconds(ru.ru_utime), seconds(ru.ru_stime), ru.ru_nvcsw + ru.ru_nivcsw};
}

using steady = std::chrono::steady_clock;

struct side_result {
    double wall = 0;           // seconds
    double self_user = 0, self_sys = 0;
    double children_cpu = 0;   // seconds, every waited-for descendant (interpreters, sh, xargs)
    long self_switches = 0;
    int failed = 0;

    // Wall since t0, and this process's and its children's usage since the samples.
    void measure_since(steady::time_point t0, const usage_sample& self0, const usage_sample& kids0) {
        wall = std::chrono::duration<double>(steady::now() - t0).count();
        const usage_sample self1 = usage_now(RUSAGE_SELF), kids1 = usage_now(RUSAGE_CHILDREN);
        self_user = self1.user - self0.user;
        self_sys = self1.sys - self0.sys;
        self_switches = self1.switches - self0.switches;
        children_cpu = (kids1.user - kids0.user) + (kids1.sys - kids0.sys);
    }
};

// (a) The floor: one shell pipeline, waited for with waitpid.
side_result run_floor(const options& o, const fs::path& program, const fs::path& evaluator, const fs::path& results) {
    const std::string cmd = "seq " + std::to_string(o.jobs) + " | xargs -P " + std::to_string(o.slots) + " -I{} " +
                            shell_quote(o.python) + " " + shell_quote(evaluator.string()) + " --program_path " +
                            shell_quote(program.string()) + " --results_dir " + shell_quote(results.string()) + "/{}";
    side_result r;
    const usage_sample self0 = usage_now(RUSAGE_SELF), kids0 = usage_now(RUSAGE_CHILDREN);
    const auto t0 = steady::now();
    const pid_t pid = ::fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    r.measure_since(t0, self0, kids0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::cerr << "the floor's pipeline failed (status " << status << "): " << cmd << "\n";
        r.failed = o.jobs;
        return r;
    }
    for (int i = 1; i <= o.jobs; ++i) {
        const fs::path dir = results / std::to_string(i);
        if (read_text(dir / "correct.json").find("\"correct\": true") == std::string::npos ||
            read_text(dir / "metrics.json").find("\"combined_score\": 1.0") == std::string::npos) {
            if (r.failed++ < 3) std::cerr << "floor evaluation " << i << " wrote no valid results in " << dir << "\n";
        }
    }
    return r;
}

// (b) The library: make_launcher (local backend), async_submit, one io_context
// thread (this one), shutdown; all of it timed.
side_result run_launcher(const options& o, const fs::path& program, const fs::path& evaluator, const fs::path& results) {
    gl::launcher_config cfg;  // the library's defaults, except what the workload fixes
    cfg.type = gl::job_type::local;
    cfg.max_parallel_jobs = o.slots;
    cfg.local.python = o.python;
    cfg.eval_program_path = evaluator;
    cfg.results_dir = results;
    cfg.local.kill_escaped = o.kill_escaped;
    cfg.local.private_tmp = o.private_tmp;

    side_result r;
    asio::io_context io(1);
    const usage_sample self0 = usage_now(RUSAGE_SELF), kids0 = usage_now(RUSAGE_CHILDREN);
    const auto t0 = steady::now();
    auto launcher = gl::make_launcher(cfg, io.get_executor());
    int done = 0;
    asio::post(io, [&] {
        for (int i = 1; i <= o.jobs; ++i) {
            gl::job_spec job;
            job.job_id = std::to_string(i);  // results in results/<i>, as the floor's
            job.program_path = program;
            launcher->async_submit(std::move(job), [&](boost::system::error_code ec, gl::job_result res) {
                const json::value* score = res.metrics.if_contains("combined_score");
                if (ec || res.result != gl::outcome::ok || !res.correct || res.combined_score != 1.0 || !score ||
                    score->to_number<double>() != 1.0) {
                    if (r.failed++ < 3)
                        std::cerr << "job " << res.job_id << " failed: " << gl::to_string(res.result) << " "
                                  << (ec ? ec.message() : res.diagnostic) << " " << res.stderr_text << "\n";
                }
                if (++done == o.jobs) launcher->async_shutdown([](boost::system::error_code) {});
            });
        }
    });
    io.run();
    launcher.reset();
    r.measure_since(t0, self0, kids0);
    if (done != o.jobs) {
        std::cerr << "only " << done << " of " << o.jobs << " jobs completed\n";
        r.failed += o.jobs - done;
    }
    return r;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double best(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

}  // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    const fs::path program = fs::absolute(o.data / "main.py");
    const fs::path evaluator = fs::absolute(o.data / "evaluate.py");
    for (const auto& p : {program, evaluator})
        if (!fs::is_regular_file(p)) die("missing " + p.string() + " (--data DIR)");
    if (::access(o.python.c_str(), X_OK) != 0) die("--python " + o.python + " is not an executable path");
    const fs::path parent = o.results_parent.empty() ? fs::temp_directory_path() : fs::absolute(o.results_parent);
    if (!fs::is_directory(parent)) die("--results-dir " + parent.string() + " is not a folder");
    const fs::path dir = parent / ("genesis-bench-local-" + genesis_bench::random_hex(12));
    fs::create_directories(dir);

    std::vector<side_result> floors, launchers;
    const bool want_floor = o.only != "launcher", want_launcher = o.only != "floor";
    int failed = 0;
    for (int round = 0; round < o.rounds; ++round) {
        // Alternate the order so that a drift in the machine's load does not favour one side.
        const fs::path floor_dir = dir / ("floor-" + std::to_string(round));
        const fs::path launcher_dir = dir / ("launcher-" + std::to_string(round));
        for (int side = 0; side < 2; ++side) {
            if ((side == round % 2) && want_floor) {
                floors.push_back(run_floor(o, program, evaluator, floor_dir));
                failed += floors.back().failed;
            } else if ((side != round % 2) && want_launcher) {
                launchers.push_back(run_launcher(o, program, evaluator, launcher_dir));
                failed += launchers.back().failed;
            }
        }
        if (!o.json && want_floor && want_launcher)
            std::fprintf(stderr, "round %d: floor %.3f s, launcher %.3f s, ratio %.4f\n", round + 1,
                         floors.back().wall, launchers.back().wall, launchers.back().wall / floors.back().wall);
    }
    // Every round's folders are deleted only now: on ext4 without a journal, creating an
    // inode steps, one by one, over every free inode of its group deleted recently
    // (seconds to minutes), so a round's thousand files deleted before the next round
    // made that round's folders and log files (and the evaluators' files) the more
    // expensive to create the more rounds had run. Results are kept in real use.
    std::error_code ignored;
    fs::remove_all(dir, ignored);

    // Per job, in ms (context switches: per job).
    const double n = o.jobs;
    auto per_job = [&](const std::vector<side_result>& v, auto field) {
        std::vector<double> out;
        for (const auto& s : v) out.push_back(field(s) / n);
        return out;
    };
    auto wall = [](const side_result& s) { return s.wall * 1000.0; };
    auto self_cpu = [](const side_result& s) { return (s.self_user + s.self_sys) * 1000.0; };
    auto self_user = [](const side_result& s) { return s.self_user * 1000.0; };
    auto self_sys = [](const side_result& s) { return s.self_sys * 1000.0; };
    auto kids = [](const side_result& s) { return s.children_cpu * 1000.0; };
    auto switches = [](const side_result& s) { return static_cast<double>(s.self_switches); };

    json::object out;
    out["jobs"] = o.jobs;
    out["slots"] = o.slots;
    out["rounds"] = o.rounds;
    out["python"] = o.python;
    out["kill_escaped"] = o.kill_escaped;
    out["private_tmp"] = o.private_tmp;
    out["results_dir"] = parent.string();
    out["statistic"] = "median over rounds";
    if (want_floor) {
        out["floor_wall_per_job_ms"] = median(per_job(floors, wall));
        out["floor_wall_per_job_ms_best"] = best(per_job(floors, wall));
        out["floor_children_cpu_per_job_ms"] = median(per_job(floors, kids));
    }
    if (want_launcher) {
        out["launcher_wall_per_job_ms"] = median(per_job(launchers, wall));
        out["launcher_wall_per_job_ms_best"] = best(per_job(launchers, wall));
        out["launcher_cpu_per_job_ms"] = median(per_job(launchers, self_cpu));
        json::array cpu_rounds;  // in the order run: the spread behind the median
        for (double v : per_job(launchers, self_cpu)) cpu_rounds.push_back(v);
        out["launcher_cpu_per_job_ms_rounds"] = std::move(cpu_rounds);
        out["launcher_user_cpu_per_job_ms"] = median(per_job(launchers, self_user));
        out["launcher_system_cpu_per_job_ms"] = median(per_job(launchers, self_sys));
        out["launcher_context_switches_per_job"] = median(per_job(launchers, switches));
        out["launcher_children_cpu_per_job_ms"] = median(per_job(launchers, kids));
    }
    if (want_floor && want_launcher) {
        // Each round's sides ran back to back: the median of their ratios is the
        // figure least moved by the machine's load changing between rounds.
        std::vector<double> ratios;
        json::array round_ratios;
        for (std::size_t i = 0; i < floors.size(); ++i) {
            ratios.push_back(launchers[i].wall / floors[i].wall);
            round_ratios.push_back(ratios.back());
        }
        out["ratio"] = median(ratios);
        out["ratio_best"] = best(per_job(launchers, wall)) / best(per_job(floors, wall));
        out["round_ratios"] = std::move(round_ratios);
    }
    out["failed"] = failed;

    if (o.json) {
        std::cout << json::serialize(out) << "\n";
    } else {
        auto num = [&](const char* key) { return out.at(key).to_number<double>(); };
        std::printf("genesis-launch local backend vs xargs -P, N=%d S=%d, %d round(s) (medians; order alternates)\n",
                    o.jobs, o.slots, o.rounds);
        std::printf("  python                      %s\n", o.python.c_str());
        std::printf("  results in                  %s\n", parent.c_str());
        if (!o.private_tmp || !o.kill_escaped)
            std::printf("  turned off                  %s%s\n", o.private_tmp ? "" : "private_tmp ",
                        o.kill_escaped ? "" : "kill_escaped");
        std::printf("  jobs ok                     %s\n", failed ? "NO" : "all");
        if (want_floor)
            std::printf("  floor wall / job            %.3f ms (best %.3f)\n", num("floor_wall_per_job_ms"),
                        num("floor_wall_per_job_ms_best"));
        if (want_launcher)
            std::printf("  launcher wall / job         %.3f ms (best %.3f)\n", num("launcher_wall_per_job_ms"),
                        num("launcher_wall_per_job_ms_best"));
        if (want_floor && want_launcher)
            std::printf("  ratio launcher / floor      %.4f (median of per-round ratios; best / best %.4f)\n",
                        num("ratio"), num("ratio_best"));
        if (want_launcher) {
            const auto cpu = per_job(launchers, self_cpu);
            std::printf("  launcher CPU / job          %.3f ms (user %.3f, system %.3f; rounds %.3f-%.3f)\n",
                        num("launcher_cpu_per_job_ms"), num("launcher_user_cpu_per_job_ms"),
                        num("launcher_system_cpu_per_job_ms"), best(cpu), *std::max_element(cpu.begin(), cpu.end()));
            std::printf("  launcher context switches / job  %.2f\n", num("launcher_context_switches_per_job"));
        }
        std::printf("  evaluator CPU / job (children, for reference):");
        if (want_floor) std::printf(" floor %.3f ms", num("floor_children_cpu_per_job_ms"));
        if (want_launcher) std::printf(" launcher %.3f ms", num("launcher_children_cpu_per_job_ms"));
        std::printf("\n");
    }
    return failed == 0 ? 0 : 1;
}
