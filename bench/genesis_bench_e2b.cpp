// genesis_bench_e2b: the E2B backend against genesis_e2b_emulator --bench.
//
// Starts the emulator program (plain HTTP, or HTTPS with a throwaway certificate
// made with the openssl CLI), or with --url uses one already running, runs N jobs
// with C in flight through the public library API on one io_context thread (one
// sandbox per job: create, upload of candidate and evaluator, one run, the results
// read back, kill), and prints wall, ideal (6 x latency x ceil(N / C)),
// wall/ideal, this process's CPU per lifecycle, its peak RSS, and requests /
// connections / TLS handshakes / emulator CPU per lifecycle from the deltas of the
// emulator's stats around the run; with --json as one JSON object (the field
// names of bench/sdk/bench_sdk.mjs). See docs/performance.md.
#include <genesis/launch/launch.hpp>

#include "bench_support.hpp"

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
#include <cstdint>
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
    std::string url;      // an emulator already running (else one is started)
    std::string api_key;  // its key (--api-key, else E2B_API_KEY)
    std::string ca_file;  // the CA of its certificate, for https URLs
    bool json = false;
    double create_rate = 0;  // sandbox creations per second; 0 = not paced (the default here)
    bool keep_files = false;  // leave the results folders (the caller removes them later)
};

[[noreturn]] void die(const std::string& message) { genesis_bench::fail("genesis_bench_e2b", message); }
[[noreturn]] void usage_error(const std::string& message) { genesis_bench::fail("genesis_bench_e2b", message, 2); }

constexpr const char* usage_text =
    "usage: genesis_bench_e2b [--jobs N] [--in-flight C] [--latency-ms L] [--create-rate R] [--json]\n"
    "                         [--keep-files]                             (leave the results folders)\n"
    "                         [--tls] [--emulator PATH]                  (starts the emulator)\n"
    "                         [--url URL [--api-key KEY] [--ca-file PEM]] (an emulator already running)\n";

options parse(int argc, char** argv) {
    options o;
    bool tls_given = false, emulator_given = false;
    genesis_bench::arguments args("genesis_bench_e2b", argc, argv);
    while (args.next()) {
        const std::string& a = args.option();
        auto value = [&] { return args.value(); };
        auto number = [&] { return args.number(); };
        if (a == "--jobs" || a == "-n") o.jobs = number();
        else if (a == "--in-flight" || a == "-c") o.in_flight = number();
        else if (a == "--latency-ms" || a == "-l") o.latency_ms = number();
        else if (a == "--tls") o.tls = tls_given = true;
        else if (a == "--emulator") o.emulator = value(), emulator_given = true;
        else if (a == "--url") o.url = value();
        else if (a == "--api-key") o.api_key = value();
        else if (a == "--ca-file") o.ca_file = value();
        else if (a == "--json") o.json = true;
        else if (a == "--keep-files") o.keep_files = true;
        else if (a == "--create-rate") {
            const std::string v = value();
            char* end = nullptr;
            o.create_rate = std::strtod(v.c_str(), &end);
            if (end == v.c_str() || *end != '\0' || !(o.create_rate > 0) || !std::isfinite(o.create_rate))
                usage_error("--create-rate: '" + v + "' is not a number > 0");
        }
        else if (a == "--help" || a == "-h") {
            std::cout << usage_text;
            std::exit(0);
        } else usage_error("unknown option '" + a + "'\n" + usage_text);
    }
    if (o.jobs < 1 || o.in_flight < 1 || o.latency_ms < 0) usage_error("--jobs and --in-flight must be >= 1, --latency-ms >= 0");
    if (o.url.empty()) {
        if (!o.api_key.empty() || !o.ca_file.empty()) usage_error("--api-key and --ca-file go with --url");
    } else {
        if (tls_given || emulator_given) usage_error("--tls and --emulator apply when the benchmark starts the emulator, not with --url");
        if (o.api_key.empty())
            if (const char* k = std::getenv("E2B_API_KEY")) o.api_key = k;
        if (o.api_key.empty()) usage_error("--url needs --api-key (or E2B_API_KEY)");
        o.tls = o.url.starts_with("https://");
        if (!o.tls && !o.url.starts_with("http://")) usage_error("--url must be http://HOST:PORT or https://HOST:PORT");
    }
    return o;
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

// Host and port of an http(s)://HOST[:PORT][/...] URL.
struct endpoint {
    std::string host;
    std::string port;
};

endpoint parse_url(const std::string& url) {
    const bool tls = url.starts_with("https://");
    std::string rest = url.substr(tls ? 8 : 7);
    rest = rest.substr(0, rest.find('/'));
    if (rest.starts_with("[")) {  // [v6]:port
        const auto close = rest.find(']');
        if (close == std::string::npos) die("bad URL '" + url + "'");
        const std::string host = rest.substr(1, close - 1);
        const std::string tail = rest.substr(close + 1);
        return {host, tail.starts_with(":") ? tail.substr(1) : (tls ? "443" : "80")};
    }
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos) return {rest, tls ? "443" : "80"};
    return {rest.substr(0, colon), rest.substr(colon + 1)};
}

// GET /_emulator/stats on a connection of its own, so that each probe adds exactly
// one connection (and one TLS handshake) to the stats. The certificate is not
// checked: this only reads counters.
json::object fetch_stats(const std::string& url, const std::string& api_key) {
    const bool tls = url.starts_with("https://");
    const endpoint ep = parse_url(url);
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    const auto addresses = resolver.resolve(ep.host, ep.port);
    http::request<http::empty_body> req{http::verb::get, "/_emulator/stats", 11};
    req.set(http::field::host, ep.host);
    req.set("X-API-Key", api_key);
    req.set(http::field::connection, "close");
    http::response<http::string_body> res;
    beast::flat_buffer buffer;
    if (tls) {
        asio::ssl::context ctx(asio::ssl::context::tls_client);
        ctx.set_verify_mode(asio::ssl::verify_none);
        beast::ssl_stream<beast::tcp_stream> s(io, ctx);
        beast::get_lowest_layer(s).connect(addresses);
        s.handshake(asio::ssl::stream_base::client);
        http::write(s, req);
        http::read(s, buffer, res);
    } else {
        beast::tcp_stream s(io);
        s.connect(addresses);
        http::write(s, req);
        http::read(s, buffer, res);
    }
    if (res.result() != http::status::ok)
        die("GET /_emulator/stats answered " + std::to_string(res.result_int()) + " (is --url the emulator?)");
    auto v = json::parse(res.body());
    if (!v.is_object() || !v.as_object().contains("connections_accepted"))
        die("GET /_emulator/stats: not the emulator's stats");
    return v.as_object();
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


// What one run measured, as the JSON object both clients print.
json::object measure(const options& o, const std::string& url, const std::string& api_key,
                     const std::string& ca_file, const fs::path& dir) {
    gl::launcher_config cfg;
    cfg.type = gl::job_type::e2b;
    cfg.max_parallel_jobs = o.in_flight;
    cfg.eval_program_path = dir / "evaluate.py";
    cfg.results_dir = dir / "results";
    cfg.e2b.api_url = url;
    cfg.e2b.sandbox_url = url;
    cfg.e2b.api_key = api_key;
    // Not paced unless --create-rate is given: the launcher's default (1 create per
    // second, E2B's Hobby tier) would make the wall time N seconds and hide the client's
    // own cost; the emulator in bench mode has no rate limit.
    cfg.e2b.create_rate = o.create_rate > 0 ? o.create_rate : 1e9;
    cfg.e2b.ca_file = ca_file;

    const auto before = fetch_stats(url, api_key);
    asio::io_context io;
    auto launcher = gl::make_launcher(cfg, io.get_executor());
    int failed = 0;
    json::array errors;
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
                    if (failed++ < 3) {
                        std::string e = "job " + r.job_id + ": " + std::string(gl::to_string(r.result)) + " " +
                                        (ec ? ec.message() : r.diagnostic);
                        std::cerr << "genesis_bench_e2b: " << e << "\n";
                        errors.emplace_back(e);
                    }
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
    const auto after = fetch_stats(url, api_key);
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);

    auto delta = [&](const json::value& a, const json::value& b) { return b.to_number<double>() - a.to_number<double>(); };
    auto round = [](double x, int digits = 4) {
        const double f = std::pow(10.0, digits);
        return std::round(x * f) / f;
    };
    const double n = o.jobs;
    const double wall = std::chrono::duration<double>(t1 - t0).count();
    const double ideal = 6.0 * o.latency_ms / 1000.0 * std::ceil(n / o.in_flight);
    const double user = (cpu1.user - cpu0.user) * 1000.0 / n, sys = (cpu1.sys - cpu0.sys) * 1000.0 / n;
    // The second probe's own connection (and handshake) is in `after`.
    const double connections = delta(before.at("connections_accepted"), after.at("connections_accepted")) - 1;
    const double handshakes = delta(before.at("tls_handshakes"), after.at("tls_handshakes")) - (o.tls ? 1 : 0);
    json::object by_endpoint;
    for (const auto& [name, count] : after.at("requests").at("by_endpoint").as_object()) {
        const auto* b = before.at("requests").at("by_endpoint").as_object().if_contains(name);
        const double d = count.to_number<double>() - (b ? b->to_number<double>() : 0);
        if (d != 0) by_endpoint[name] = static_cast<std::int64_t>(d);
    }

    json::object r;
    r["client"] = "genesis-launch";
    r["client_version"] = std::string("genesis-launch ") + gl::version();
    r["transport"] = o.tls ? "tls" : "http";
    r["jobs"] = o.jobs;
    r["in_flight"] = o.in_flight;
    r["latency_ms"] = o.latency_ms;
    if (o.create_rate > 0) r["create_rate"] = o.create_rate;
    else r["create_rate"] = nullptr;  // not paced
    r["jobs_ok"] = o.jobs - failed;
    r["jobs_failed"] = failed;
    r["errors"] = std::move(errors);
    r["wall_s"] = round(wall);
    r["ideal_s"] = round(ideal);
    if (ideal > 0) r["wall_over_ideal"] = round(wall / ideal);
    else r["wall_over_ideal"] = nullptr;
    r["cpu_ms_per_lifecycle"] = round(user + sys);
    r["cpu_user_ms_per_lifecycle"] = round(user);
    r["cpu_system_ms_per_lifecycle"] = round(sys);
    r["peak_rss_mib"] = round(ru.ru_maxrss / 1024.0, 1);
    r["requests_per_lifecycle"] = round(delta(before.at("requests").at("total"), after.at("requests").at("total")) / n);
    r["connections_per_lifecycle"] = round(connections / n);
    r["tls_handshakes_per_lifecycle"] = round(handshakes / n);
    if (const auto* b = before.if_contains("tls_resumed"))
        r["tls_resumed_per_lifecycle"] = round(delta(*b, after.at("tls_resumed")) / n);
    r["emulator_cpu_ms_per_lifecycle"] =
        round(delta(before.at("cpu_seconds").at("total"), after.at("cpu_seconds").at("total")) * 1000.0 / n);
    r["requests_by_endpoint"] = std::move(by_endpoint);
    return r;
}

void print_text(const json::object& r) {
    auto num = [&](const char* key) { return r.at(key).to_number<double>(); };
    std::printf("genesis-launch E2B backend, %s, N=%d C=%d L=%d ms\n", r.at("transport") == "tls" ? "TLS" : "HTTP",
                static_cast<int>(num("jobs")), static_cast<int>(num("in_flight")), static_cast<int>(num("latency_ms")));
    std::printf("  jobs ok                 %d / %d\n", static_cast<int>(num("jobs_ok")), static_cast<int>(num("jobs")));
    std::printf("  wall                    %.3f s\n", num("wall_s"));
    std::printf("  ideal                   %.3f s\n", num("ideal_s"));
    if (!r.at("wall_over_ideal").is_null()) std::printf("  wall / ideal            %.3f\n", num("wall_over_ideal"));
    else std::printf("  wall / ideal            n/a (latency 0)\n");
    std::printf("  client CPU / lifecycle  %.3f ms (user %.3f, system %.3f)\n", num("cpu_ms_per_lifecycle"),
                num("cpu_user_ms_per_lifecycle"), num("cpu_system_ms_per_lifecycle"));
    std::printf("  client peak RSS         %.1f MiB\n", num("peak_rss_mib"));
    std::printf("  requests / lifecycle    %.2f\n", num("requests_per_lifecycle"));
    std::printf("  connections / lifecycle %.2f\n", num("connections_per_lifecycle"));
    std::printf("  TLS handshakes / lifecycle %.2f\n", num("tls_handshakes_per_lifecycle"));
    std::printf("  emulator CPU / lifecycle %.3f ms\n", num("emulator_cpu_ms_per_lifecycle"));
    std::printf("  requests by endpoint   ");
    for (const auto& [name, count] : r.at("requests_by_endpoint").as_object())
        std::printf(" %s=%.0f", std::string(name).c_str(), count.to_number<double>());
    std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    ::signal(SIGPIPE, SIG_IGN);
    const fs::path dir = fs::temp_directory_path() / ("genesis-bench-" + genesis_bench::random_hex(12));
    fs::create_directories(dir);
    write_file(dir / "main.py", "def solve():\n    return 1\n");
    write_file(dir / "evaluate.py", "import json, os\n# not run: the emulator's bench mode answers at once\n");

    json::object result;
    if (o.url.empty()) {
        emulator_process emu;
        emu.start(o, dir);
        result = measure(o, std::string(emu.ready.at("api_url").as_string()),
                         std::string(emu.ready.at("api_key").as_string()), o.tls ? (dir / "ca.crt").string() : "",
                         dir);
        emu.stop();
    } else {
        result = measure(o, o.url, o.api_key, o.ca_file, dir);
    }
    if (o.json) std::cout << json::serialize(result) << std::endl;
    else print_text(result);
    std::error_code ignored;
    if (!o.keep_files) fs::remove_all(dir, ignored);
    return result.at("jobs_failed").to_number<int>() == 0 ? 0 : 1;
}
