// genesis_bench_e2b: the E2B backend against genesis_e2b_emulator --bench.
//
// Starts the emulator program (plain HTTP, or HTTPS with a throwaway certificate
// made with the openssl CLI), runs N jobs with C in flight through the public
// library API on one io_context thread (one sandbox per job: create, upload of
// candidate and evaluator, one run, the results read back, kill), and prints
// wall, ideal (6 x latency x ceil(N / C)), wall/ideal, this process's CPU per
// lifecycle, its peak RSS, and requests / connections / TLS handshakes per
// lifecycle from the emulator's stats. See docs/performance.md.
#include <genesis/launch/launch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;
namespace gl = genesis::launch;

namespace {

struct options {
    std::string emulator = GENESIS_BENCH_EMULATOR_PATH;
    int jobs = 1000;
    int in_flight = 100;
    int latency_ms = 0;
    bool tls = false;
};

[[noreturn]] void die(const std::string& message) {
    std::cerr << "genesis_bench_e2b: " << message << "\n";
    std::exit(1);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--jobs" || a == "-n") o.jobs = std::stoi(value());
        else if (a == "--in-flight" || a == "-c") o.in_flight = std::stoi(value());
        else if (a == "--latency-ms" || a == "-l") o.latency_ms = std::stoi(value());
        else if (a == "--tls") o.tls = true;
        else if (a == "--emulator") o.emulator = value();
        else if (a == "--help" || a == "-h") {
            std::cout << "usage: genesis_bench_e2b [--jobs N] [--in-flight C] [--latency-ms L] [--tls] [--emulator PATH]\n";
            std::exit(0);
        } else die("unknown option '" + a + "'");
    }
    if (o.jobs < 1 || o.in_flight < 1 || o.latency_ms < 0) die("--jobs and --in-flight must be >= 1, --latency-ms >= 0");
    return o;
}

std::string random_hex(int n) {
    std::random_device rd;
    std::string s;
    for (int i = 0; i < n; ++i) s += "0123456789abcdef"[rd() % 16];
    return s;
}

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary);
    out << text;
    if (!out) die("cannot write " + p.string());
}

// The emulator program, started with --bench; its ready line read from a pipe.
struct emulator_process {
    pid_t pid = -1;
    json::object ready;

    void start(const options& o, const fs::path& dir) {
        std::vector<std::string> args{o.emulator, "--bench", "--config", (dir / "emulator.yaml").string()};
        write_file(dir / "emulator.yaml", "latency_ms: " + std::to_string(o.latency_ms) + "\n");
        if (o.tls) {
            auto q = [](const fs::path& p) { return "'" + p.string() + "'"; };
            write_file(dir / "server.ext", "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
            const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
            const std::string cmd =
                "(openssl req -x509" + ec + "-keyout " + q(dir / "ca.key") + " -out " + q(dir / "ca.crt") +
                " -days 1 -subj /CN=genesis-bench-ca && openssl req" + ec + "-keyout " + q(dir / "server.key") +
                " -out " + q(dir / "server.csr") + " -subj /CN=127.0.0.1 && openssl x509 -req -in " +
                q(dir / "server.csr") + " -CA " + q(dir / "ca.crt") + " -CAkey " + q(dir / "ca.key") +
                " -CAcreateserial -out " + q(dir / "server.crt") + " -days 1 -extfile " + q(dir / "server.ext") +
                ") >/dev/null 2>&1";
            if (std::system(cmd.c_str()) != 0) die("cannot make a test certificate with the openssl CLI");
            args.insert(args.end(), {"--tls-cert", (dir / "server.crt").string(), "--tls-key",
                                     (dir / "server.key").string()});
        }
        int fds[2];
        if (::pipe(fds) != 0) die("pipe failed");
        pid = ::fork();
        if (pid < 0) die("fork failed");
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlives the benchmark, however it ends
            ::dup2(fds[1], 1);
            ::close(fds[0]);
            ::close(fds[1]);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            std::perror("exec genesis_e2b_emulator");
            ::_exit(127);
        }
        ::close(fds[1]);
        std::string line;
        char c;
        while (::read(fds[0], &c, 1) == 1 && c != '\n') line += c;
        ::close(fds[0]);
        boost::system::error_code ec;
        auto v = json::parse(line, ec);
        if (ec || !v.is_object()) die("the emulator did not start (" + o.emulator + ")");
        ready = v.as_object();
    }

    void stop() {
        if (pid <= 0) return;
        ::kill(pid, SIGTERM);
        int status = 0;
        ::waitpid(pid, &status, 0);
        pid = -1;
    }
    ~emulator_process() { stop(); }
};

// GET /_emulator/stats (certificate not checked: our own emulator on loopback).
json::object fetch_stats(unsigned short port, bool tls) {
    asio::io_context io;
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
    http::request<http::empty_body> req{http::verb::get, "/_emulator/stats", 11};
    req.set(http::field::host, "127.0.0.1");
    http::response<http::string_body> res;
    beast::flat_buffer buffer;
    if (tls) {
        asio::ssl::context ctx(asio::ssl::context::tls_client);
        ctx.set_verify_mode(asio::ssl::verify_none);
        beast::ssl_stream<beast::tcp_stream> s(io, ctx);
        beast::get_lowest_layer(s).connect(ep);
        s.handshake(asio::ssl::stream_base::client);
        http::write(s, req);
        http::read(s, buffer, res);
    } else {
        beast::tcp_stream s(io);
        s.connect(ep);
        http::write(s, req);
        http::read(s, buffer, res);
    }
    return json::parse(res.body()).as_object();
}

double seconds(const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; }

struct cpu_time {
    double user = 0, sys = 0;
};

cpu_time cpu_now() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return {seconds(ru.ru_utime), seconds(ru.ru_stime)};
}

}  // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    ::signal(SIGPIPE, SIG_IGN);
    const fs::path dir = fs::temp_directory_path() / ("genesis-bench-" + random_hex(12));
    fs::create_directories(dir);
    write_file(dir / "main.py", "def solve():\n    return 1\n");
    write_file(dir / "evaluate.py", "import json, os\n# not run: the emulator's bench mode answers at once\n");

    int failed = 0;
    {
        emulator_process emu;
        emu.start(o, dir);
        const auto port = static_cast<unsigned short>(emu.ready.at("port").to_number<int>());
        const std::string url(emu.ready.at("api_url").as_string());

        gl::launcher_config cfg;
        cfg.type = gl::job_type::e2b;
        cfg.max_parallel_jobs = o.in_flight;
        cfg.eval_program_path = dir / "evaluate.py";
        cfg.results_dir = dir / "results";
        cfg.e2b.api_url = url;
        cfg.e2b.sandbox_url = url;
        cfg.e2b.api_key = std::string(emu.ready.at("api_key").as_string());
        cfg.e2b.create_rate = 1e9;
        if (o.tls) cfg.e2b.ca_file = (dir / "ca.crt").string();

        const auto before = fetch_stats(port, o.tls);
        asio::io_context io;
        auto launcher = gl::make_launcher(cfg, io.get_executor());
        const cpu_time cpu0 = cpu_now();
        const auto t0 = std::chrono::steady_clock::now();
        std::chrono::steady_clock::time_point t1;
        int done = 0;
        asio::post(io, [&] {
            for (int i = 0; i < o.jobs; ++i) {
                gl::job_spec job;
                job.program_path = dir / "main.py";
                launcher->async_submit(std::move(job), [&](boost::system::error_code ec, gl::job_result r) {
                    // Every job must end ok with the emulator's fixed results read back.
                    if (ec || r.result != gl::outcome::ok || !r.correct || r.combined_score != 1.0) {
                        if (failed++ < 3)
                            std::cerr << "job " << r.job_id << " failed: " << gl::to_string(r.result) << " "
                                      << (ec ? ec.message() : r.diagnostic) << "\n";
                    }
                    if (++done == o.jobs) {
                        t1 = std::chrono::steady_clock::now();
                        launcher->async_shutdown([](boost::system::error_code) {});
                    }
                });
            }
        });
        io.run();
        const cpu_time cpu1 = cpu_now();
        launcher.reset();
        const auto after = fetch_stats(port, o.tls);

        auto delta = [&](const json::value& a, const json::value& b) { return b.to_number<double>() - a.to_number<double>(); };
        const double n = o.jobs;
        const double wall = std::chrono::duration<double>(t1 - t0).count();
        const double ideal = 6.0 * o.latency_ms / 1000.0 * std::ceil(n / o.in_flight);
        rusage ru{};
        ::getrusage(RUSAGE_SELF, &ru);
        std::printf("genesis-launch E2B backend, %s, N=%d C=%d L=%d ms\n", o.tls ? "TLS" : "HTTP", o.jobs,
                    o.in_flight, o.latency_ms);
        std::printf("  jobs ok                 %d / %d\n", o.jobs - failed, o.jobs);
        std::printf("  wall                    %.3f s\n", wall);
        std::printf("  ideal                   %.3f s\n", ideal);
        if (ideal > 0) std::printf("  wall / ideal            %.3f\n", wall / ideal);
        else std::printf("  wall / ideal            n/a (latency 0)\n");
        const double user = (cpu1.user - cpu0.user) * 1000.0 / n, sys = (cpu1.sys - cpu0.sys) * 1000.0 / n;
        std::printf("  client CPU / lifecycle  %.3f ms (user %.3f, system %.3f)\n", user + sys, user, sys);
        std::printf("  client peak RSS         %.1f MiB\n", ru.ru_maxrss / 1024.0);
        std::printf("  requests / lifecycle    %.2f\n",
                    delta(before.at("requests").at("total"), after.at("requests").at("total")) / n);
        std::printf("  connections / lifecycle %.2f\n",
                    delta(before.at("connections_accepted"), after.at("connections_accepted")) / n);
        std::printf("  TLS handshakes / lifecycle %.2f\n", delta(before.at("tls_handshakes"), after.at("tls_handshakes")) / n);
        std::printf("  emulator CPU / lifecycle %.3f ms\n",
                    delta(before.at("cpu_seconds").at("total"), after.at("cpu_seconds").at("total")) * 1000.0 / n);
        std::printf("  requests by endpoint   ");
        for (const auto& [name, count] : after.at("requests").at("by_endpoint").as_object()) {
            const auto* b = before.at("requests").at("by_endpoint").as_object().if_contains(name);
            std::printf(" %s=%.0f", std::string(name).c_str(), count.to_number<double>() - (b ? b->to_number<double>() : 0));
        }
        std::printf("\n");
        emu.stop();
    }
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    return failed == 0 ? 0 : 1;
}
