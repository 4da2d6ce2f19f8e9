// e2b_api_test.cpp - the E2B client (http::client + e2b::api) against the
// in-process emulator, over HTTP and HTTPS: the lifecycle calls, streaming,
// keep-alive reuse, retries under injected faults, TLS refusals, cancellation.
//
// Built only when the emulator library is linked in (GENESIS_LAUNCH_BUILD_EMULATOR).
#if __has_include("emulator.hpp")

#include "emulator.hpp"
#include "test_support.hpp"

#include "e2b/e2b_api.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <sys/time.h>

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace emu = genesis::e2b_emulator;
namespace e2b = genesis::launch::detail::e2b;
namespace http = genesis::launch::detail::http;
using kind = e2b::api_error::kind;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// ---- test PKI (made with the openssl CLI; never committed) -----------------------

std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

bool have_openssl() { return std::system("openssl version >/dev/null 2>&1") == 0; }

bool make_ca(const std::filesystem::path& dir) {
    const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
                            " -keyout " + quoted(dir / "ca.key") + " -out " + quoted(dir / "ca.crt") +
                            " -subj '/CN=genesis e2b_api test CA'"
                            " -addext basicConstraints=critical,CA:TRUE"
                            " -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
}

// A server certificate `name`.crt/.key signed by the CA in `dir`, valid for `san`.
bool make_server_cert(const std::filesystem::path& dir, const std::string& name, const std::string& san) {
    genesis_test::write_file(dir / (name + ".ext"), "subjectAltName=" + san + "\nextendedKeyUsage=serverAuth\n");
    const std::string cmd =
        "(openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" + name +
        " -keyout " + quoted(dir / (name + ".key")) + " -out " + quoted(dir / (name + ".csr")) +
        " && openssl x509 -req -days 1 -in " + quoted(dir / (name + ".csr")) + " -CA " + quoted(dir / "ca.crt") +
        " -CAkey " + quoted(dir / "ca.key") + " -CAcreateserial -extfile " + quoted(dir / (name + ".ext")) +
        " -out " + quoted(dir / (name + ".crt")) + ") >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
}

std::string random_bytes(std::size_t n) {
    std::mt19937_64 rng(12345);
    std::string out(n, '\0');
    for (auto& c : out) c = static_cast<char>(rng() & 0xff);
    return out;
}

// ---- fixture -----------------------------------------------------------------------

// The emulator runs on its own thread; the client runs on `io_` in the test thread.
class E2bApi : public ::testing::Test {
protected:
    void TearDown() override {
        api_.reset();
        admin_.reset();
        stop_emulator();
    }

    void start_emulator(emu::emulator_options options = {}) {
        tls_ = !options.tls_cert.empty();
        emulator_ = std::make_unique<emu::emulator>(emu_io_.get_executor(), std::move(options));
        std::string error;
        ASSERT_TRUE(emulator_->start(error)) << error;
        emu_thread_ = std::thread([this] { emu_io_.run(); });
        admin_ = std::make_unique<http::client>(io_.get_executor(), admin_tls());
    }

    void stop_emulator() {
        if (!emu_thread_.joinable()) return;
        asio::post(emu_io_, [this] {
            emulator_->stop();
            emu_io_.stop();
        });
        emu_thread_.join();
        emulator_.reset();
    }

    // Settings pointing at the emulator; fast retries with a recording sleeper.
    e2b::api_settings settings() {
        e2b::api_settings s;
        s.api_key = emulator_->api_key();
        s.api_url = emulator_->api_url();
        s.sandbox_url = emulator_->sandbox_url();
        s.tls = admin_tls();
        s.retry.initial = 1ms;
        s.retry.maximum = 5ms;
        s.retry.max_attempts = 4;
        return s;
    }

    e2b::api& make_api(std::optional<e2b::api_settings> s = std::nullopt) {
        api_ = std::make_unique<e2b::api>(io_.get_executor(), s ? *s : settings(),
                                          [this](std::chrono::milliseconds d) -> asio::awaitable<void> {
                                              delays_.push_back(d);
                                              co_return;
                                          });
        return *api_;
    }

    http::tls_settings admin_tls() const {
        http::tls_settings t;
        if (tls_) t.ca_file = (pki_.path() / "ca.crt").string();
        return t;
    }

    // Runs `a` on io_ until it completes (bounded).
    template <class T>
    T await(asio::awaitable<T> a, std::chrono::milliseconds limit = 60s) {
        std::optional<T> out;
        std::exception_ptr failure;
        asio::co_spawn(io_, std::move(a), [&](std::exception_ptr e, T v) {
            failure = e;
            if (!e) out = std::move(v);
        });
        const auto deadline = steady::now() + limit;
        while (!out && !failure && steady::now() < deadline) {
            if (io_.stopped()) io_.restart();
            io_.run_one_for(50ms);
        }
        if (failure) std::rethrow_exception(failure);
        if (!out) throw std::runtime_error("the coroutine did not finish in time");
        return std::move(*out);
    }

    http::origin emulator_origin() {
        std::string why;
        auto o = http::parse_origin(emulator_->api_url(), why);
        EXPECT_TRUE(o) << why;
        return *o;
    }

    http::response admin(boost::beast::http::verb method, std::string target, std::string body = {}) {
        http::request req;
        req.method = method;
        req.target = std::move(target);
        req.headers.emplace_back("X-API-Key", emulator_->api_key());
        if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
        req.body = std::move(body);
        auto r = await(admin_->send(emulator_origin(), std::move(req)));
        EXPECT_TRUE(r.ok()) << r.what;
        return r.res;
    }

    void configure(const std::string& body) {
        auto res = admin(boost::beast::http::verb::post, "/_emulator/config", body);
        ASSERT_EQ(res.status, 200u) << res.body;
    }

    json::object stats() { return json::parse(admin(boost::beast::http::verb::get, "/_emulator/stats").body).as_object(); }
    std::int64_t stat(std::string_view name) { return stats().at(name).to_number<std::int64_t>(); }
    std::int64_t requests(std::string_view endpoint) {
        auto by = stats().at("requests").at("by_endpoint").as_object();
        auto* n = by.if_contains(endpoint);
        return n ? n->to_number<std::int64_t>() : 0;
    }

    e2b::sandbox_handle create(std::map<std::string, std::string> metadata = {}) {
        std::map<std::string, std::string> env;
        auto r = await(api_->create("base", 120s, std::move(metadata), std::move(env)));
        EXPECT_TRUE(r) << r.error->message;
        return r ? *r : e2b::sandbox_handle{};
    }

    struct output {
        std::string out, err;
        int out_chunks = 0;
    };
    e2b::api_result<e2b::run_result> run(const e2b::sandbox_handle& sb, const std::string& cmd, output& o,
                                         std::optional<std::chrono::milliseconds> timeout = 30s,
                                         std::string cwd = {}, std::map<std::string, std::string> envs = {}) {
        auto on_out = [&o](std::string_view b) {
            o.out += b;
            ++o.out_chunks;
        };
        auto on_err = [&o](std::string_view b) { o.err += b; };
        return await(api_->run(sb, cmd, std::move(cwd), std::move(envs), timeout, on_out, on_err));
    }

    genesis_test::temp_dir pki_;
    asio::io_context emu_io_;
    std::unique_ptr<emu::emulator> emulator_;
    std::thread emu_thread_;
    bool tls_ = false;

    asio::io_context io_;
    std::unique_ptr<http::client> admin_;
    std::unique_ptr<e2b::api> api_;
    std::vector<std::chrono::milliseconds> delays_;
    const std::map<std::string, std::string> no_filter_{};  // GCC 12: no braced temporaries into coroutines
};

// The lifecycle over plain HTTP and over HTTPS with a private CA.
class E2bApiLifecycle : public E2bApi, public ::testing::WithParamInterface<bool> {
protected:
    void SetUp() override {
        emu::emulator_options options;
        if (GetParam()) {
            if (!have_openssl()) GTEST_SKIP() << "no openssl CLI";
            ASSERT_TRUE(make_ca(pki_.path()));
            ASSERT_TRUE(make_server_cert(pki_.path(), "server", "IP:127.0.0.1,DNS:localhost"));
            options.tls_cert = pki_ / "server.crt";
            options.tls_key = pki_ / "server.key";
        }
        start_emulator(options);
        make_api();
    }
};

TEST_P(E2bApiLifecycle, CreateListTimeoutKill) {
    std::map<std::string, std::string> tag{{"job", "lifecycle-" + std::to_string(GetParam())}, {"odd key", "a&b=c/ü"}};
    auto sb = create(tag);
    ASSERT_FALSE(sb.id.empty());
    EXPECT_FALSE(sb.envd_access_token.empty());
    EXPECT_FALSE(sb.envd_version.empty());
    create();  // another one, without the tag

    auto listed = await(api_->list(tag));
    ASSERT_TRUE(listed) << listed.error->message;
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ(listed->front().id, sb.id);
    EXPECT_EQ(listed->front().metadata.at("odd key"), "a&b=c/ü");
    auto everything = await(api_->list(no_filter_));
    ASSERT_TRUE(everything);
    EXPECT_EQ(everything->size(), 2u);

    auto timed = await(api_->set_timeout(sb.id, 600s));
    EXPECT_TRUE(timed) << timed.error->message;

    auto killed = await(api_->kill(sb.id));
    ASSERT_TRUE(killed) << killed.error->message;
    EXPECT_TRUE(*killed);
    auto again = await(api_->kill(sb.id));
    ASSERT_TRUE(again) << again.error->message;
    EXPECT_FALSE(*again);

    auto gone_timeout = await(api_->set_timeout(sb.id, 60s));
    ASSERT_FALSE(gone_timeout);
    EXPECT_EQ(gone_timeout.error->k, kind::not_found);

    // envd of a killed sandbox: the proxy's 502 "The sandbox was not found".
    auto upload = await(api_->upload(sb, "/home/user/x.txt", "x"));
    ASSERT_FALSE(upload);
    EXPECT_EQ(upload.error->k, kind::sandbox_gone) << upload.error->message;
    auto health = await(api_->health(sb));
    ASSERT_TRUE(health);
    EXPECT_FALSE(*health);

    for (const auto& s : *everything) await(api_->kill(s.id));
    EXPECT_EQ(stat("live"), 0);
}

TEST_P(E2bApiLifecycle, FilesRoundTripByteExact) {
    auto sb = create();
    ASSERT_FALSE(sb.id.empty());
    const auto bytes = random_bytes(5 * 1024 * 1024);
    auto up = await(api_->upload(sb, "/home/user/work/data.bin", bytes));
    ASSERT_TRUE(up) << up.error->message;
    auto down = await(api_->download(sb, "/home/user/work/data.bin"));
    ASSERT_TRUE(down) << down.error->message;
    EXPECT_EQ(down->size(), bytes.size());
    EXPECT_TRUE(*down == bytes);

    auto empty_up = await(api_->upload(sb, "work/empty.txt", ""));  // relative to /home/user
    ASSERT_TRUE(empty_up) << empty_up.error->message;
    auto empty = await(api_->download(sb, "/home/user/work/empty.txt"));
    ASSERT_TRUE(empty) << empty.error->message;
    EXPECT_EQ(*empty, "");

    auto missing = await(api_->download(sb, "/home/user/nope.txt"));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error->k, kind::not_found);
    EXPECT_NE(missing.error->message.find("does not exist"), std::string::npos) << missing.error->message;

    ASSERT_TRUE(await(api_->make_dir(sb, "/home/user/work/sub/deeper")));
    ASSERT_TRUE(await(api_->make_dir(sb, "/home/user/work/sub/deeper")));  // exists: fine
    auto entries = await(api_->list_dir(sb, "/home/user/work", 1));
    ASSERT_TRUE(entries) << entries.error->message;
    std::map<std::string, e2b::dir_entry> by_name;
    for (const auto& e : *entries) by_name[e.name] = e;
    ASSERT_TRUE(by_name.count("data.bin"));
    EXPECT_EQ(by_name["data.bin"].type, e2b::file_type::file);
    EXPECT_EQ(by_name["data.bin"].size, static_cast<std::int64_t>(bytes.size()));
    EXPECT_EQ(by_name["data.bin"].path, "/home/user/work/data.bin");
    ASSERT_TRUE(by_name.count("sub"));
    EXPECT_EQ(by_name["sub"].type, e2b::file_type::directory);
    EXPECT_FALSE(by_name.count("deeper"));  // depth 1

    auto not_dir = await(api_->list_dir(sb, "/home/user/nowhere", 1));
    ASSERT_FALSE(not_dir);
    EXPECT_EQ(not_dir.error->k, kind::not_found);
    await(api_->kill(sb.id));
}

TEST_P(E2bApiLifecycle, RunStreamsOutputWithEnvCwdAndExitCodes) {
    std::map<std::string, std::string> metadata;
    std::map<std::string, std::string> sandbox_env{{"FROM_CREATE", "sandbox-wide"}};
    auto created = await(api_->create("base", 120s, metadata, sandbox_env));
    ASSERT_TRUE(created) << created.error->message;
    auto sb = *created;
    ASSERT_TRUE(await(api_->make_dir(sb, "/home/user/work")));

    output o;
    std::map<std::string, std::string> envs{{"GREETING", "hello world"}};
    auto r = run(sb, "echo \"$GREETING\"; echo \"$FROM_CREATE\"; pwd; echo oops >&2; exit 3", o, 30s,
                 "/home/user/work", envs);
    ASSERT_TRUE(r) << r.error->message;
    EXPECT_EQ(r->exit_code, 3);
    EXPECT_TRUE(r->exited);
    EXPECT_EQ(r->error, "exit status 3");
    EXPECT_GT(r->pid, 0u);
    EXPECT_EQ(o.out, "hello world\nsandbox-wide\n/home/user/work\n");
    EXPECT_EQ(o.err, "oops\n");

    output ok;
    auto zero = run(sb, "true", ok);
    ASSERT_TRUE(zero) << zero.error->message;
    EXPECT_EQ(zero->exit_code, 0);

    // Output arrives as it is produced, in several pieces, before the end.
    output streamed;
    auto big = run(sb, "for i in 1 2 3; do echo line$i; sleep 0.2; done; head -c 300000 /dev/zero | tr '\\0' 'x'", streamed);
    ASSERT_TRUE(big) << big.error->message;
    EXPECT_EQ(streamed.out.size(), std::string("line1\nline2\nline3\n").size() + 300000);
    EXPECT_GE(streamed.out_chunks, 4);

    output bad;
    auto bad_cwd = run(sb, "true", bad, 30s, "/home/user/does-not-exist");
    ASSERT_FALSE(bad_cwd);
    EXPECT_EQ(bad_cwd.error->k, kind::http);
    EXPECT_EQ(bad_cwd.error->status, 400u);
    EXPECT_NE(bad_cwd.error->message.find("invalid_argument"), std::string::npos) << bad_cwd.error->message;
    await(api_->kill(sb.id));
}

TEST_P(E2bApiLifecycle, ReusesKeepAliveConnections) {
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(await(api_->list(no_filter_)));
    auto sb = create();
    ASSERT_TRUE(await(api_->upload(sb, "/home/user/a.txt", "a")));
    ASSERT_TRUE(await(api_->download(sb, "/home/user/a.txt")));
    output o;
    ASSERT_TRUE(run(sb, "echo hi", o));
    ASSERT_TRUE(await(api_->kill(sb.id)));

    auto st = api_->transport().stats();
    EXPECT_EQ(st.connects, 1u) << "one origin, sequential calls: one connection";
    EXPECT_GE(st.reused, 14u);
    EXPECT_EQ(api_->transport().open_connections(), 1u);
    EXPECT_EQ(api_->transport().idle_connections(), 1u);
    // The emulator sees ours plus the admin client's connection.
    EXPECT_LE(stat("open_connections"), 2);

    api_->close();
    EXPECT_EQ(api_->transport().open_connections(), 0u);
    ASSERT_TRUE(await(api_->list(no_filter_)));  // still usable
    EXPECT_EQ(api_->transport().stats().connects, 2u);
}

TEST_P(E2bApiLifecycle, KeepsAsManyIdleConnectionsAsItIsToldToForTheConcurrencyInUse) {
    auto s = settings();
    s.max_idle_per_origin = 24;  // more than the client's default of 8
    auto& api = make_api(s);
    // Two rounds of 20 requests at once: the second reuses the first's connections.
    auto round = [&] {
        int done = 0, ok = 0;
        for (int i = 0; i < 20; ++i)
            asio::co_spawn(io_, api.list(no_filter_), [&](std::exception_ptr e, auto r) {
                ++done;
                if (!e && r) ++ok;
            });
        const auto deadline = steady::now() + 60s;
        while (done < 20 && steady::now() < deadline) {
            if (io_.stopped()) io_.restart();
            io_.run_one_for(50ms);
        }
        EXPECT_EQ(ok, 20);
    };
    round();
    EXPECT_EQ(api.transport().idle_connections(), 20u);
    round();
    EXPECT_EQ(api.transport().stats().connects, 20u) << "the second round opened connections again";
}

TEST_P(E2bApiLifecycle, SeveralFilesGoUpInOneRequest) {
    auto sb = create();
    const auto before = requests("files.upload");
    std::vector<e2b::upload_file> files;
    files.push_back({"/home/user/evaluate.py", "print('evaluator')\n"});
    files.push_back({"/home/user/sub/main.py", std::string("binary\0\r\n--x\xff", 14)});
    ASSERT_TRUE(await(api_->upload_files(sb, files)));
    EXPECT_EQ(requests("files.upload") - before, 1);
    for (const auto& f : files) {
        auto back = await(api_->download(sb, f.path));
        ASSERT_TRUE(back) << back.error->message;
        EXPECT_EQ(*back, f.bytes) << f.path;
    }
    ASSERT_TRUE(await(api_->kill(sb.id)));
}

INSTANTIATE_TEST_SUITE_P(Transport, E2bApiLifecycle, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? std::string("https") : std::string("http"); });

// ---- timeouts and cancellation ---------------------------------------------------------

TEST_F(E2bApi, CommandDeadlineKillsTheCommand) {
    start_emulator();
    make_api();
    auto sb = create();
    output o;
    const auto t0 = steady::now();
    // Appends a tick every 50 ms for ~10 s unless it is killed.
    auto r = run(sb, "for i in $(seq 1 200); do echo $i >> /home/user/ticks; sleep 0.05; done", o, 1000ms);
    const auto took = steady::now() - t0;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error->k, kind::timeout) << r.error->message;
    EXPECT_FALSE(r.error->transient());
    EXPECT_LT(took, 5s);

    // The command is dead: the file stops growing.
    auto first = await(api_->download(sb, "/home/user/ticks"));
    ASSERT_TRUE(first) << first.error->message;
    std::this_thread::sleep_for(400ms);
    auto second = await(api_->download(sb, "/home/user/ticks"));
    ASSERT_TRUE(second);
    EXPECT_EQ(*first, *second);
    EXPECT_LT(std::count(first->begin(), first->end(), '\n'), 60);
    await(api_->kill(sb.id));
}

// A start that never comes back is the connection's or envd's fault, not the
// command's: a transport error (the lifecycle runs the job again on a new
// sandbox), never the command's timeout, which is the candidate's outcome.
TEST_F(E2bApi, LocalDeadlineBoundsAHungStartAsATransportErrorNotTheCommandsTimeout) {
    start_emulator();
    make_api();
    auto sb = create();
    configure(R"({"endpoint_latency_ms":{"process.start":8000}})");
    output o;
    const auto t0 = steady::now();
    auto r = run(sb, "echo never", o, 600ms);
    const auto took = steady::now() - t0;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error->k, kind::transport) << r.error->message;
    EXPECT_NE(r.error->message.find("did not start within"), std::string::npos) << r.error->message;
    EXPECT_LT(took, 3s);
    EXPECT_EQ(requests("process.start"), 1);  // not retried
    configure(R"({"endpoint_latency_ms":{}})");
    await(api_->kill(sb.id));
}

TEST_F(E2bApi, CancellingTheCoroutineAbortsARun) {
    start_emulator();
    make_api();
    auto sb = create();

    asio::cancellation_signal signal;
    std::optional<e2b::api_result<e2b::run_result>> result;
    std::function<void(std::string_view)> none;
    asio::co_spawn(io_, api_->run(sb, "sleep 30", "", no_filter_, 60s, none, none),
                   asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, e2b::api_result<e2b::run_result> r) {
                       ASSERT_FALSE(e);
                       result = std::move(r);
                   }));
    asio::steady_timer timer(io_, 500ms);
    timer.async_wait([&](boost::system::error_code) { signal.emit(asio::cancellation_type::terminal); });
    const auto deadline = steady::now() + 10s;
    while (!result && steady::now() < deadline) io_.run_one_for(50ms);
    ASSERT_TRUE(result);
    ASSERT_FALSE(*result);
    EXPECT_EQ(result->error->k, kind::cancelled) << result->error->message;
    EXPECT_EQ(api_->transport().open_connections(), 0u);  // the aborted connection is not pooled
    await(api_->kill(sb.id));
}

TEST_F(E2bApi, CloseAbortsCallsInFlight) {
    start_emulator();
    make_api();
    auto sb = create();
    std::optional<e2b::api_result<e2b::run_result>> result;
    std::function<void(std::string_view)> none;
    asio::co_spawn(io_, api_->run(sb, "sleep 30", "", no_filter_, 60s, none, none),
                   [&](std::exception_ptr, e2b::api_result<e2b::run_result> r) { result = std::move(r); });
    asio::steady_timer timer(io_, 500ms);
    timer.async_wait([&](boost::system::error_code) { api_->close(); });
    const auto deadline = steady::now() + 10s;
    while (!result && steady::now() < deadline) io_.run_one_for(50ms);
    ASSERT_TRUE(result);
    ASSERT_FALSE(*result);
    EXPECT_EQ(result->error->k, kind::cancelled) << result->error->message;
    await(api_->kill(sb.id));
}

// ---- retries under injected faults ---------------------------------------------------------

TEST_F(E2bApi, ARefusedCreateIsAnsweredAtOnceWithTheServersRetryAfter) {
    // A create is tried once per call: the launcher's create loop owns its retries
    // (E2bLauncher.RateLimitOnCreateHonoursRetryAfter), so they are not multiplied.
    start_emulator();
    make_api();
    configure(R"({"faults":[{"endpoint":"create","kind":"status","status":429,"retry_after":2,"count":1}]})");
    std::map<std::string, std::string> metadata, env;
    auto refused = await(api_->create("base", 120s, metadata, env));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error->k, kind::rate_limited);
    EXPECT_EQ(refused.error->retry_after, 2000ms);
    EXPECT_EQ(requests("create"), 1);
    EXPECT_TRUE(delays_.empty());
    auto sb = create();
    ASSERT_FALSE(sb.id.empty());
    await(api_->kill(sb.id));
}

TEST_F(E2bApi, ServiceUnavailableAndResetsAreRetried) {
    start_emulator();
    make_api();
    configure(R"({"faults":[{"endpoint":"list","kind":"status","status":503,"count":2},
                            {"endpoint":"kill","kind":"reset","count":1},
                            {"endpoint":"files.download","kind":"status","status":502,"count":1}]})");
    auto listed = await(api_->list(no_filter_));
    ASSERT_TRUE(listed) << listed.error->message;
    EXPECT_EQ(requests("list"), 3);
    EXPECT_EQ(delays_.size(), 2u);

    auto sb = create();
    ASSERT_TRUE(await(api_->upload(sb, "/home/user/f", "data")));
    auto down = await(api_->download(sb, "/home/user/f"));  // a 502 that is not "sandbox not found"
    ASSERT_TRUE(down) << down.error->message;
    EXPECT_EQ(*down, "data");
    EXPECT_EQ(requests("files.download"), 2);

    auto killed = await(api_->kill(sb.id));  // DELETE is idempotent: the reset is retried
    ASSERT_TRUE(killed) << killed.error->message;
    EXPECT_TRUE(*killed);
    EXPECT_EQ(requests("kill"), 2);
}

TEST_F(E2bApi, RetriesAreBounded) {
    start_emulator();
    make_api();
    configure(R"({"faults":[{"endpoint":"list","kind":"status","status":503,"count":-1,"message":"busy"}]})");
    auto listed = await(api_->list(no_filter_));
    ASSERT_FALSE(listed);
    EXPECT_EQ(listed.error->k, kind::http);
    EXPECT_EQ(listed.error->status, 503u);
    EXPECT_TRUE(listed.error->transient());
    EXPECT_NE(listed.error->message.find("gave up after 4 attempts"), std::string::npos) << listed.error->message;
    EXPECT_NE(listed.error->message.find("\"busy\""), std::string::npos);
    EXPECT_EQ(requests("list"), 4);
}

TEST_F(E2bApi, LostCreateAnswerIsMaybeCreatedAndNotRetried) {
    start_emulator();
    make_api();
    configure(R"({"faults":[{"endpoint":"create","kind":"lose_response","count":1}]})");
    std::map<std::string, std::string> tag{{"attempt", "lost-1"}};
    std::map<std::string, std::string> env;
    auto r = await(api_->create("base", 60s, tag, env));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error->k, kind::maybe_created) << r.error->message;
    EXPECT_EQ(requests("create"), 1);
    EXPECT_TRUE(delays_.empty());

    // The caller finds it by its metadata and cleans up.
    auto found = await(api_->list(tag));
    ASSERT_TRUE(found);
    ASSERT_EQ(found->size(), 1u);
    EXPECT_TRUE(*await(api_->kill(found->front().id)));
    EXPECT_EQ(stat("live"), 0);
}

TEST_F(E2bApi, CutCommandStreamIsNotRetried) {
    start_emulator();
    make_api();
    auto sb = create();
    configure(R"({"faults":[{"endpoint":"process.start","kind":"cut_stream","after_events":1,"count":1}]})");
    output o;
    auto r = run(sb, "echo a; sleep 0.3; echo b", o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error->k, kind::transport) << r.error->message;
    EXPECT_EQ(requests("process.start"), 1);
    // The sandbox is fine afterwards.
    output again;
    auto ok = run(sb, "echo fine", again);
    ASSERT_TRUE(ok) << ok.error->message;
    EXPECT_EQ(again.out, "fine\n");
    await(api_->kill(sb.id));
}

TEST_F(E2bApi, SandboxKilledDuringACommandIsGone) {
    start_emulator();
    make_api();
    auto sb = create();
    std::optional<e2b::api_result<e2b::run_result>> result;
    std::function<void(std::string_view)> none;
    asio::co_spawn(io_, api_->run(sb, "sleep 30", "", no_filter_, 60s, none, none),
                   [&](std::exception_ptr, e2b::api_result<e2b::run_result> r) { result = std::move(r); });
    // Kill it from the side with a second api, while the command runs.
    auto side = std::make_unique<e2b::api>(io_.get_executor(), settings());
    std::optional<e2b::api_result<bool>> killed;
    asio::steady_timer timer(io_, 500ms);
    auto kill_later = [&]() -> asio::awaitable<void> {  // outlives the coroutine (it holds the captures)
        co_await timer.async_wait(asio::use_awaitable);
        killed = co_await side->kill(sb.id);
    };
    asio::co_spawn(io_, kill_later(), asio::detached);
    const auto deadline = steady::now() + 20s;
    while (!result && steady::now() < deadline) io_.run_one_for(50ms);
    ASSERT_TRUE(result);
    ASSERT_FALSE(*result);
    EXPECT_EQ(result->error->k, kind::sandbox_gone) << result->error->message;
    ASSERT_TRUE(killed && *killed && **killed);
}

TEST_F(E2bApi, CreateFallsBackToTheLegacyRoute) {
    start_emulator();
    make_api();
    // An API without POST /v2/sandboxes answers 404 there.
    configure(R"({"faults":[{"endpoint":"create","kind":"status","status":404,"message":"no such route","count":1}]})");
    auto sb = create();
    ASSERT_FALSE(sb.id.empty());
    EXPECT_FALSE(sb.envd_access_token.empty()) << "the legacy create asks for a secured sandbox";
    EXPECT_EQ(requests("create"), 2);
    auto second = create();  // remembered: straight to the legacy route
    ASSERT_FALSE(second.id.empty());
    EXPECT_EQ(requests("create"), 3);
    await(api_->kill(sb.id));
    await(api_->kill(second.id));
}

TEST_F(E2bApi, UploadFallsBackToMultipart) {
    start_emulator();
    make_api();
    auto sb = create();
    // envd < 0.5.7 does not take raw bodies.
    configure(R"({"faults":[{"endpoint":"files.upload","kind":"status","status":415,"count":1}]})");
    const auto bytes = random_bytes(100 * 1024);
    ASSERT_TRUE(await(api_->upload(sb, "/home/user/m.bin", bytes)));
    auto down = await(api_->download(sb, "/home/user/m.bin"));
    ASSERT_TRUE(down) << down.error->message;
    EXPECT_TRUE(*down == bytes);
    ASSERT_TRUE(await(api_->upload(sb, "/home/user/m2.bin", "second")));  // multipart, remembered
    EXPECT_EQ(requests("files.upload"), 3);
    EXPECT_EQ(*await(api_->download(sb, "/home/user/m2.bin")), "second");
    await(api_->kill(sb.id));
}

TEST_F(E2bApi, WrongApiKeyIsUnauthorized) {
    start_emulator();
    auto s = settings();
    s.api_key = "e2b_" + std::string(40, '0');  // well-formed, but not the emulator's
    make_api(s);
    auto r = await(api_->list(no_filter_));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error->k, kind::unauthorized);
    EXPECT_EQ(r.error->message.find(s.api_key), std::string::npos);
    EXPECT_TRUE(delays_.empty());
}

// ---- http::client against a scripted server --------------------------------------------------

// A blocking HTTP/1.1 server on its own thread: connection i is handled by
// scripts[i]. Sockets time out reads after 5 s, so nothing can hang.
class scripted_server {
public:
    using socket = asio::ip::tcp::socket;
    using script = std::function<void(socket&)>;

    explicit scripted_server(std::vector<script> scripts)
        : acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread([this, scripts = std::move(scripts)] {
            for (const auto& s : scripts) {
                socket sock(io_);
                boost::system::error_code ec;
                acceptor_.accept(sock, ec);
                if (ec) return;
                timeval tv{5, 0};
                ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                s(sock);
                done_.push_back(std::move(sock));  // closed when the server goes
            }
        });
    }
    ~scripted_server() {
        ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // unblocks accept()
        thread_.join();
    }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    // Reads one request (head and body, into `out` when given); false when the peer
    // closed. On a plain socket or a TLS stream (tls_scripted_server).
    template <class Stream>
    static bool read_request(Stream& s, boost::beast::flat_buffer& buffer,
                             boost::beast::http::request<boost::beast::http::string_body>* out = nullptr) {
        boost::beast::http::request<boost::beast::http::string_body> req;
        boost::system::error_code ec;
        boost::beast::http::read(s, buffer, req, ec);
        if (out) *out = std::move(req);
        return !ec;
    }
    template <class Stream>
    static void write(Stream& s, std::string_view raw) {
        boost::system::error_code ec;
        asio::write(s, asio::buffer(raw), ec);
    }

private:
    asio::io_context io_;
    asio::ip::tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    std::vector<socket> done_;
    std::thread thread_;
};

class HttpClient : public ::testing::Test {
protected:
    template <class T>
    T await(asio::awaitable<T> a) {
        std::optional<T> out;
        asio::co_spawn(io_, std::move(a), [&](std::exception_ptr, T v) { out = std::move(v); });
        const auto deadline = steady::now() + 20s;
        while (!out && steady::now() < deadline) {
            if (io_.stopped()) io_.restart();
            io_.run_one_for(50ms);
        }
        if (!out) throw std::runtime_error("the coroutine did not finish in time");
        return std::move(*out);
    }
    static http::origin origin_of(const std::string& url) {
        std::string why;
        return *http::parse_origin(url, why);
    }
    static http::request get(bool idempotent = true) {
        http::request r;
        r.method = idempotent ? boost::beast::http::verb::get : boost::beast::http::verb::post;
        r.target = "/thing";
        r.idempotent = idempotent;
        return r;
    }

    asio::io_context io_;
};

// Answers one request on a keep-alive connection, then closes the connection
// when the next request arrives, without answering (a server-side idle close
// racing the client's reuse).
void answer_once_then_drop(scripted_server::socket& s) {
    boost::beast::flat_buffer buffer;
    if (!scripted_server::read_request(s, buffer)) return;
    scripted_server::write(s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none");
    scripted_server::read_request(s, buffer);
    s.close();
}

void answer_two(scripted_server::socket& s) {
    boost::beast::flat_buffer buffer;
    if (!scripted_server::read_request(s, buffer)) return;
    scripted_server::write(s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo");
}

TEST_F(HttpClient, StalePooledConnectionIsRetriedOnceForIdempotentRequests) {
    scripted_server server({answer_once_then_drop, answer_two});
    http::client client(io_.get_executor());
    auto first = await(client.send(origin_of(server.url()), get()));
    ASSERT_TRUE(first.ok()) << first.what;
    EXPECT_EQ(first.res.body, "one");
    auto second = await(client.send(origin_of(server.url()), get()));
    ASSERT_TRUE(second.ok()) << second.what;
    EXPECT_EQ(second.res.body, "two");
    EXPECT_EQ(client.stats().stale_retries, 1u);
    EXPECT_EQ(client.stats().connects, 2u);
}

TEST_F(HttpClient, StalePooledConnectionIsNotRetriedForOtherRequestsOnceSent) {
    scripted_server server({answer_once_then_drop, answer_two});
    http::client client(io_.get_executor());
    ASSERT_TRUE(await(client.send(origin_of(server.url()), get())).ok());
    auto second = await(client.send(origin_of(server.url()), get(false)));
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.kind, http::failure::read) << second.what;
    EXPECT_TRUE(second.sent);
    EXPECT_EQ(client.stats().stale_retries, 0u);
    EXPECT_EQ(client.open_connections(), 0u);
}

TEST_F(HttpClient, BodyLimitAndErrorBodiesOfStreams) {
    scripted_server server({[](scripted_server::socket& s) {
                                boost::beast::flat_buffer buffer;
                                if (!scripted_server::read_request(s, buffer)) return;
                                scripted_server::write(s, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" +
                                                              std::string(1000, 'x'));
                            },
                            [](scripted_server::socket& s) {
                                boost::beast::flat_buffer buffer;
                                if (!scripted_server::read_request(s, buffer)) return;
                                scripted_server::write(s, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
                            }});
    http::client client(io_.get_executor());
    auto limited_request = get();
    limited_request.body_limit = 100;
    auto limited = await(client.send(origin_of(server.url()), std::move(limited_request)));
    ASSERT_FALSE(limited.ok());
    EXPECT_EQ(limited.kind, http::failure::protocol) << limited.what;

    std::string streamed;
    auto refused = await(client.stream(origin_of(server.url()), get(), [&](std::string_view b) { streamed += b; }));
    ASSERT_TRUE(refused.ok()) << refused.what;
    EXPECT_EQ(refused.res.status, 503u);
    EXPECT_EQ(refused.res.body, "busy");
    EXPECT_EQ(streamed, "");
}

TEST_F(HttpClient, SilentStreamTimesOutAfterTheIdleLimit) {
    scripted_server server({[](scripted_server::socket& s) {
        boost::beast::flat_buffer buffer;
        if (!scripted_server::read_request(s, buffer)) return;
        scripted_server::write(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
        std::this_thread::sleep_for(1500ms);
    }});
    http::timeouts limits;
    limits.stream_idle = 300ms;
    http::client client(io_.get_executor(), {}, limits);
    std::string streamed;
    const auto t0 = steady::now();
    auto r = await(client.stream(origin_of(server.url()), get(), [&](std::string_view b) { streamed += b; }));
    EXPECT_LT(steady::now() - t0, 1200ms);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind, http::failure::timeout) << r.what;
    EXPECT_EQ(streamed, "hello");
}

TEST_F(HttpClient, IdleConnectionsAreClosedAndCloseAllLetsTheIoContextFinish) {
    scripted_server server({answer_two, answer_two});
    http::client client(io_.get_executor());
    client.set_pool_limits(4, 200ms);
    ASSERT_TRUE(await(client.send(origin_of(server.url()), get())).ok());
    EXPECT_EQ(client.idle_connections(), 1u);
    // The sweep closes it after its idle lifetime; then nothing is left pending.
    const auto t0 = steady::now();
    io_.restart();
    io_.run_for(5s);
    EXPECT_LT(steady::now() - t0, 2s);
    EXPECT_EQ(client.open_connections(), 0u);

    ASSERT_TRUE(await(client.send(origin_of(server.url()), get())).ok());
    EXPECT_EQ(client.idle_connections(), 1u);
    client.set_pool_limits(4, std::chrono::minutes(10));
    client.close_all();
    EXPECT_EQ(client.open_connections(), 0u);
    const auto t1 = steady::now();
    io_.restart();
    io_.run_for(5s);
    EXPECT_LT(steady::now() - t1, 1s) << "close_all() left work pending";
}

// However many requests need a new connection at once, no more than the opening
// limit are opened (connect + TLS handshake) at a time; the others wait their turn.
TEST_F(HttpClient, ConnectionsAreOpenedAFewAtATime) {
    constexpr int requests = 6;
    std::vector<scripted_server::script> scripts(requests, answer_two);
    scripted_server server(scripts);
    http::client client(io_.get_executor());
    client.set_pool_limits(0, 1s);  // every request on a connection of its own
    client.set_opening_limit(2);
    const auto o = origin_of(server.url());
    auto all = [&]() -> asio::awaitable<int> {
        using namespace asio::experimental::awaitable_operators;
        int ok = 0;
        auto one = [&]() -> asio::awaitable<void> {
            auto r = co_await client.send(o, get());
            if (r.ok() && r.res.body == "two") ++ok;
        };
        co_await (one() && one() && one() && one() && one() && one());
        co_return ok;
    };
    EXPECT_EQ(await(all()), requests);
    const auto stats = client.stats();
    EXPECT_EQ(stats.connects, static_cast<std::size_t>(requests));
    EXPECT_EQ(stats.peak_opening, 2u);
    EXPECT_GE(stats.opening_waits, 1u);
}

TEST_F(HttpClient, ConnectionRefusedIsNotSent) {
    unsigned short port = 0;
    {
        asio::ip::tcp::acceptor probe(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = probe.local_endpoint().port();
    }  // closed: nobody listens there now
    http::client client(io_.get_executor());
    auto r = await(client.send(origin_of("http://127.0.0.1:" + std::to_string(port)), get(false)));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind, http::failure::connect) << r.what;
    EXPECT_FALSE(r.sent);
    EXPECT_NE(r.what.find("127.0.0.1"), std::string::npos);
}

TEST_F(HttpClient, HeaderValuesNeverReachMessages) {
    http::client client(io_.get_executor());
    auto req = get();
    req.headers.emplace_back("X-API-Key", "e2b_secret\r\nInjected: 1");
    auto r = await(client.send(origin_of("http://127.0.0.1:9"), std::move(req)));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind, http::failure::bad_request);
    EXPECT_EQ(r.what.find("secret"), std::string::npos) << r.what;
}

// ---- the client over TLS ----------------------------------------------------------------------

// scripted_server's HTTPS twin: connection i is handled by scripts[i] on a
// blocking TLS stream (handshake already done when `handshake` is true), each
// connection on a thread of its own.
class tls_scripted_server {
public:
    using stream = asio::ssl::stream<asio::ip::tcp::socket>;
    using script = std::function<void(stream&)>;

    tls_scripted_server(const std::filesystem::path& pki, std::vector<script> scripts, bool handshake = true,
                        const std::string& cert = "server")
        : ctx_(asio::ssl::context::tls_server),
          acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        ctx_.use_certificate_chain_file((pki / (cert + ".crt")).string());
        ctx_.use_private_key_file((pki / (cert + ".key")).string(), asio::ssl::context::pem);
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread([this, handshake, scripts = std::move(scripts)] {
            for (const auto& s : scripts) {
                auto tls = std::make_unique<stream>(io_, ctx_);
                boost::system::error_code ec;
                acceptor_.accept(tls->next_layer(), ec);
                if (ec) return;
                timeval tv{5, 0};
                ::setsockopt(tls->next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                stream* raw = tls.get();
                done_.push_back(std::move(tls));  // closed when the server goes
                handlers_.emplace_back([raw, handshake, s] {
                    boost::system::error_code hec;
                    if (handshake) raw->handshake(asio::ssl::stream_base::server, hec);
                    if (!hec) s(*raw);
                });
            }
        });
    }
    ~tls_scripted_server() {
        ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // unblocks accept()
        thread_.join();
        for (auto& t : handlers_) t.join();
    }

    std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

    // scripted_server's helpers, which take any stream.
    static bool read_request(stream& s, boost::beast::flat_buffer& buffer,
                             boost::beast::http::request<boost::beast::http::string_body>* out = nullptr) {
        return scripted_server::read_request(s, buffer, out);
    }
    static void write(stream& s, std::string_view raw) { scripted_server::write(s, raw); }

private:
    asio::io_context io_;
    asio::ssl::context ctx_;
    asio::ip::tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    std::vector<std::unique_ptr<stream>> done_;
    std::vector<std::thread> handlers_;
    std::thread thread_;
};

void answer_two_tls(tls_scripted_server::stream& s) {
    boost::beast::flat_buffer buffer;
    if (!tls_scripted_server::read_request(s, buffer)) return;
    tls_scripted_server::write(s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo");
}

class HttpClientTls : public HttpClient {
protected:
    void SetUp() override {
        if (!have_openssl()) GTEST_SKIP() << "no openssl CLI";
        ASSERT_TRUE(make_ca(pki_.path()));
        ASSERT_TRUE(make_server_cert(pki_.path(), "server", "IP:127.0.0.1"));
    }
    http::tls_settings trust() const {
        http::tls_settings t;
        t.ca_file = (pki_ / "ca.crt").string();
        return t;
    }
    genesis_test::temp_dir pki_;
};

// One TLS connection carries request after request: bodies larger than a TLS
// record both ways, a chunked answer, and the connection goes back to the pool
// after each one.
TEST_F(HttpClientTls, OneConnectionCarriesManyRequestsAndLargeBodies) {
    const std::string big(40'000, 'b');
    std::size_t received_upload = 0;
    tls_scripted_server server(pki_.path(), {[&](tls_scripted_server::stream& s) {
        boost::beast::flat_buffer buffer;
        if (!tls_scripted_server::read_request(s, buffer)) return;
        tls_scripted_server::write(s, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big);
        if (!tls_scripted_server::read_request(s, buffer)) return;
        tls_scripted_server::write(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        boost::beast::http::request<boost::beast::http::string_body> upload;
        if (!tls_scripted_server::read_request(s, buffer, &upload)) return;
        received_upload = upload.body().size();
        tls_scripted_server::write(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }});
    http::client client(io_.get_executor(), trust());
    const auto o = origin_of(server.url());
    auto first = await(client.send(o, get()));
    ASSERT_TRUE(first.ok()) << first.what;
    EXPECT_EQ(first.res.body, big);
    std::string streamed;
    auto second = await(client.stream(o, get(), [&](std::string_view b) { streamed += b; }));
    ASSERT_TRUE(second.ok()) << second.what;
    EXPECT_EQ(streamed, "abcde");
    auto upload = get(false);
    upload.body = random_bytes(100'000);
    auto third = await(client.send(o, std::move(upload)));
    ASSERT_TRUE(third.ok()) << third.what;
    EXPECT_EQ(third.res.body, "ok");
    EXPECT_EQ(received_upload, 100'000u);
    EXPECT_EQ(client.stats().connects, 1u);
    EXPECT_EQ(client.stats().reused, 2u);
    EXPECT_EQ(client.idle_connections(), 1u);
}

// A new connection to a host offers the TLS session of an earlier one (no
// certificate chain sent or verified again); the server takes it.
TEST_F(HttpClientTls, NewConnectionsResumeTheSessionOfAnEarlierOne) {
    tls_scripted_server server(pki_.path(), {answer_two_tls, answer_two_tls, answer_two_tls});
    http::client client(io_.get_executor(), trust());
    client.set_pool_limits(0, 1s);  // every request on a connection of its own
    const auto o = origin_of(server.url());
    for (int i = 0; i < 3; ++i) {
        auto r = await(client.send(o, get()));
        ASSERT_TRUE(r.ok()) << r.what;
        EXPECT_EQ(r.res.body, "two");
    }
    EXPECT_EQ(client.stats().connects, 3u);
    EXPECT_EQ(client.stats().tls_resumed, 2u);
}

// A host with no session of its own is offered another host's when that
// session's certificate names it too (E2B: the API host and every sandbox host
// share a wildcard certificate).
TEST_F(HttpClientTls, AnotherHostNamedByTheSameCertificateResumesTheSession) {
    ASSERT_TRUE(make_server_cert(pki_.path(), "both", "IP:127.0.0.1,DNS:localhost"));
    tls_scripted_server server(pki_.path(), {answer_two_tls, answer_two_tls}, true, "both");
    http::client client(io_.get_executor(), trust());
    const std::string port = server.url().substr(server.url().rfind(':'));
    auto by_name = await(client.send(origin_of("https://localhost" + port), get()));
    ASSERT_TRUE(by_name.ok()) << by_name.what;
    auto by_address = await(client.send(origin_of("https://127.0.0.1" + port), get()));
    ASSERT_TRUE(by_address.ok()) << by_address.what;
    EXPECT_EQ(client.stats().connects, 2u);
    EXPECT_EQ(client.stats().tls_resumed, 1u);
}

// The session comes with the ticket the server sends right after the handshake,
// not with the first answer: a connection opened while the first one still
// waits for its answer resumes it (with hundreds of jobs starting together, all
// but the first few handshakes are resumptions).
TEST_F(HttpClientTls, ASessionIsKeptBeforeTheFirstAnswer) {
    std::promise<void> second_answered;
    std::shared_future<void> released = second_answered.get_future().share();
    auto answer_late = [released](tls_scripted_server::stream& s) {
        boost::beast::flat_buffer buffer;
        if (!tls_scripted_server::read_request(s, buffer)) return;
        released.wait_for(10s);
        tls_scripted_server::write(s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none");
    };
    auto answer_then_release = [&second_answered](tls_scripted_server::stream& s) {
        answer_two_tls(s);
        second_answered.set_value();
    };
    tls_scripted_server server(pki_.path(), {answer_late, answer_then_release});
    http::client client(io_.get_executor(), trust());
    const auto o = origin_of(server.url());
    std::optional<http::result> first;
    asio::co_spawn(io_, client.send(o, get()), [&](std::exception_ptr, http::result r) { first = std::move(r); });
    const auto deadline = steady::now() + 20s;
    while (client.stats().tls_sessions == 0 && steady::now() < deadline) io_.run_one_for(50ms);
    ASSERT_GE(client.stats().tls_sessions, 1u) << "no session arrived";
    ASSERT_FALSE(first.has_value()) << "the first answer came before the second request";
    auto second = await(client.send(o, get()));  // the first connection is busy: a new one
    ASSERT_TRUE(second.ok()) << second.what;
    while (!first && steady::now() < deadline) io_.run_one_for(50ms);
    ASSERT_TRUE(first.has_value() && first->ok());
    EXPECT_EQ(first->res.body, "one");
    EXPECT_EQ(client.stats().connects, 2u);
    EXPECT_EQ(client.stats().tls_resumed, 1u);
}

// A server that accepts the connection and never answers the ClientHello: the
// handshake's own limit ends the request, as a timeout.
TEST_F(HttpClientTls, SilentHandshakeTimesOut) {
    tls_scripted_server server(
        pki_.path(),
        {[](tls_scripted_server::stream& s) {
            char byte = 0;
            boost::system::error_code ec;
            while (!ec) s.next_layer().read_some(asio::buffer(&byte, 1), ec);  // until the client gives up
        }},
        /*handshake=*/false);
    http::timeouts limits;
    limits.handshake = 300ms;
    http::client client(io_.get_executor(), trust(), limits);
    const auto t0 = steady::now();
    auto r = await(client.send(origin_of(server.url()), get()));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind, http::failure::timeout) << r.what;
    EXPECT_NE(r.what.find("TLS handshake"), std::string::npos) << r.what;
    EXPECT_FALSE(r.sent);
    EXPECT_LT(steady::now() - t0, 4s) << "the handshake waited for the server's own 5 s";
}

// After the handshake the server reads the request and says nothing: the read
// limit ends it, and a stream's silence ends it after the idle limit.
TEST_F(HttpClientTls, SilentAnswersTimeOut) {
    auto read_then_wait = [](tls_scripted_server::stream& s) {
        boost::beast::flat_buffer buffer;
        if (!tls_scripted_server::read_request(s, buffer)) return;
        tls_scripted_server::read_request(s, buffer);  // returns when the client closes (or after 5 s)
    };
    auto stream_then_wait = [](tls_scripted_server::stream& s) {
        boost::beast::flat_buffer buffer;
        if (!tls_scripted_server::read_request(s, buffer)) return;
        tls_scripted_server::write(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
        tls_scripted_server::read_request(s, buffer);
    };
    tls_scripted_server server(pki_.path(), {read_then_wait, stream_then_wait});
    http::timeouts limits;
    limits.read = 300ms;
    limits.stream_idle = 300ms;
    http::client client(io_.get_executor(), trust(), limits);
    const auto o = origin_of(server.url());
    auto r = await(client.send(o, get()));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind, http::failure::timeout) << r.what;
    EXPECT_TRUE(r.sent);
    std::string streamed;
    auto s = await(client.stream(o, get(), [&](std::string_view b) { streamed += b; }));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.kind, http::failure::timeout) << s.what;
    EXPECT_EQ(streamed, "hello");
    EXPECT_EQ(client.open_connections(), 0u) << "a timed-out connection is not pooled";
}

// The server closes a pooled TLS connection (close_notify, then TCP): the next
// idempotent request is retried once on a new connection.
TEST_F(HttpClientTls, AConnectionTheServerClosedIsRetriedOnANewOne) {
    auto answer_then_close = [](tls_scripted_server::stream& s) {
        boost::beast::flat_buffer buffer;
        if (!tls_scripted_server::read_request(s, buffer)) return;
        tls_scripted_server::write(s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none");
        tls_scripted_server::read_request(s, buffer);  // the next request: dropped unanswered
        boost::system::error_code ec;
        s.shutdown(ec);
        s.next_layer().close(ec);
    };
    tls_scripted_server server(pki_.path(), {answer_then_close, answer_two_tls});
    http::client client(io_.get_executor(), trust());
    const auto o = origin_of(server.url());
    auto first = await(client.send(o, get()));
    ASSERT_TRUE(first.ok()) << first.what;
    auto second = await(client.send(o, get()));
    ASSERT_TRUE(second.ok()) << second.what;
    EXPECT_EQ(second.res.body, "two");
    EXPECT_EQ(client.stats().stale_retries, 1u);
    EXPECT_EQ(client.stats().connects, 2u);
}

// ---- TLS refusals ----------------------------------------------------------------------------

class E2bApiTls : public E2bApi {
protected:
    void SetUp() override {
        if (!have_openssl()) GTEST_SKIP() << "no openssl CLI";
        ASSERT_TRUE(make_ca(pki_.path()));
    }

    // Starts an HTTPS emulator with a certificate valid for `san`.
    void start_with_cert(const std::string& san) {
        ASSERT_TRUE(make_server_cert(pki_.path(), "server", san));
        emu::emulator_options options;
        options.tls_cert = pki_ / "server.crt";
        options.tls_key = pki_ / "server.key";
        start_emulator(options);
    }

    e2b::api_error expect_refused(e2b::api_settings s) {
        make_api(s);
        auto r = await(api_->list(no_filter_));
        EXPECT_FALSE(r);
        if (r) return {};
        EXPECT_EQ(r.error->k, kind::tls);
        EXPECT_FALSE(r.error->transient());
        EXPECT_TRUE(delays_.empty()) << "a certificate problem is not retried";
        EXPECT_EQ(r.error->message.find(s.api_key), std::string::npos);
        return *r.error;
    }
};

TEST_F(E2bApiTls, UntrustedCertificateIsRefusedWithAHint) {
    start_with_cert("IP:127.0.0.1,DNS:localhost");
    auto s = settings();
    s.tls.ca_file.clear();
    auto e = expect_refused(s);
    EXPECT_NE(e.message.find("TLS certificate verification failed for 127.0.0.1"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("ca_file"), std::string::npos) << e.message;
    EXPECT_EQ(requests("list"), 0) << "nothing reached the server";
}

TEST_F(E2bApiTls, CertificateForAnotherHostIsRefused) {
    start_with_cert("DNS:localhost");  // we connect to 127.0.0.1
    auto e = expect_refused(settings());
    EXPECT_NE(e.message.find("IP address mismatch"), std::string::npos) << e.message;
}

TEST_F(E2bApiTls, CertificateForAnIpIsRefusedForAName) {
    start_with_cert("IP:127.0.0.1");
    auto s = settings();
    const std::string port = std::to_string(emulator_->port());
    s.api_url = "https://localhost:" + port;
    s.sandbox_url = s.api_url;
    auto e = expect_refused(s);
    EXPECT_NE(e.message.find("hostname mismatch"), std::string::npos) << e.message;
}

TEST_F(E2bApiTls, VerificationCanBeSwitchedOff) {
    start_with_cert("DNS:elsewhere.example");
    auto s = settings();
    s.tls.ca_file.clear();
    s.tls.verify_peer = false;
    make_api(s);
    auto r = await(api_->list(no_filter_));
    EXPECT_TRUE(r) << r.error->message;
}

}  // namespace

#endif  // __has_include("emulator.hpp")
