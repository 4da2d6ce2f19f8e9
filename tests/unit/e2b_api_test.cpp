// e2b_api_test.cpp - the socket-free parts of the E2B client: URL derivation,
// origin parsing, settings validation, process stream events and their errors,
// HTTP error classification and message quoting.
#include "e2b/connect_codec.hpp"
#include "e2b/e2b_api.hpp"
#include "e2b/e2b_backend.hpp"
#include "e2b/http_client.hpp"
#include "test_support.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace e2b = genesis::launch::detail::e2b;
namespace http = genesis::launch::detail::http;
namespace json = boost::json;
using kind = e2b::api_error::kind;

// ---- URL derivation ----------------------------------------------------------------------

TEST(E2bUrls, ApiUrlDefaultsToTheApiHostOfTheDomain) {
    e2b::api_settings s;
    EXPECT_EQ(e2b::api_base_url(s), "https://api.e2b.app");
    s.domain = "example.org";
    EXPECT_EQ(e2b::api_base_url(s), "https://api.example.org");
    s.api_url = "http://127.0.0.1:3000";
    EXPECT_EQ(e2b::api_base_url(s), "http://127.0.0.1:3000");
}

TEST(E2bUrls, KnownDomainsUseTheSharedSandboxHost) {
    e2b::api_settings s;
    for (const char* domain : {"e2b.app", "e2b.dev", "e2b.pro", "e2b-staging.dev"}) {
        s.domain = domain;
        EXPECT_TRUE(e2b::is_shared_sandbox_domain(domain));
        EXPECT_EQ(e2b::envd_base_url(s, "iabc123", ""), std::string("https://sandbox.") + domain);
    }
}

TEST(E2bUrls, CustomDomainsUseThePerSandboxHost) {
    e2b::api_settings s;
    s.domain = "sandboxes.example.org";
    EXPECT_FALSE(e2b::is_shared_sandbox_domain(s.domain));
    EXPECT_EQ(e2b::envd_base_url(s, "iabc123", ""), "https://49983-iabc123.sandboxes.example.org");
}

TEST(E2bUrls, TheSandboxDomainFromCreateWins) {
    e2b::api_settings s;  // configured e2b.app
    EXPECT_EQ(e2b::envd_base_url(s, "i1", "own.example"), "https://49983-i1.own.example");
    s.domain = "own.example";
    EXPECT_EQ(e2b::envd_base_url(s, "i1", "e2b.dev"), "https://sandbox.e2b.dev");
}

TEST(E2bUrls, AnOverrideIsUsedVerbatimForEverySandbox) {
    e2b::api_settings s;
    s.sandbox_url = "http://127.0.0.1:49999";
    EXPECT_EQ(e2b::envd_base_url(s, "i1", ""), "http://127.0.0.1:49999");
    EXPECT_EQ(e2b::envd_base_url(s, "i2", "other.example"), "http://127.0.0.1:49999");
}

// ---- origins -------------------------------------------------------------------------------

TEST(HttpOrigin, DefaultsPortsAndStripsTheTrailingSlash) {
    std::string why;
    auto a = http::parse_origin("https://api.e2b.app", why);
    ASSERT_TRUE(a) << why;
    EXPECT_TRUE(a->tls);
    EXPECT_EQ(a->host, "api.e2b.app");
    EXPECT_EQ(a->port, "443");
    EXPECT_EQ(a->base_path, "");
    EXPECT_EQ(a->to_string(), "https://api.e2b.app");

    auto b = http::parse_origin("HTTP://127.0.0.1:8080/prefix/v1/", why);
    ASSERT_TRUE(b) << why;
    EXPECT_FALSE(b->tls);
    EXPECT_EQ(b->host, "127.0.0.1");
    EXPECT_EQ(b->port, "8080");
    EXPECT_EQ(b->base_path, "/prefix/v1");
    EXPECT_EQ(b->to_string(), "http://127.0.0.1:8080/prefix/v1");

    auto c = http::parse_origin("http://example.org/", why);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->port, "80");
    EXPECT_EQ(c->base_path, "");
}

TEST(HttpOrigin, Ipv6LiteralsLoseTheirBrackets) {
    std::string why;
    auto o = http::parse_origin("http://[::1]:4000", why);
    ASSERT_TRUE(o) << why;
    EXPECT_EQ(o->host, "::1");
    EXPECT_EQ(o->port, "4000");
    EXPECT_EQ(o->to_string(), "http://[::1]:4000");
}

TEST(HttpOrigin, RefusesWhatIsNotAnHttpBaseUrl) {
    for (const char* bad : {"ftp://example.org", "example.org", "https://", "http://h:0", "http://h:70000",
                            "http://h:12ab", "https://user:pw@example.org", "https://example.org/?a=b",
                            "https://example.org/#x", "not a url"}) {
        std::string why;
        EXPECT_FALSE(http::parse_origin(bad, why)) << bad;
        EXPECT_FALSE(why.empty()) << bad;
        EXPECT_EQ(why.find('\n'), std::string::npos);
    }
}

// ---- settings ----------------------------------------------------------------------------

TEST(E2bSettings, ValidationNamesTheProblemWithoutTheKey) {
    e2b::api_settings s;
    EXPECT_NE(e2b::validate_settings(s).find("API key"), std::string::npos);
    s.api_key = "e2b_deadbeefdeadbeef";
    EXPECT_EQ(e2b::validate_settings(s), "");
    s.api_url = "ftp://nope";
    auto why = e2b::validate_settings(s);
    EXPECT_NE(why.find("API URL"), std::string::npos);
    EXPECT_EQ(why.find(s.api_key), std::string::npos);
    s.api_url = "";
    s.tls.ca_file = "/nonexistent/ca.pem";
    EXPECT_NE(e2b::validate_settings(s).find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(E2bSettings, TheConstructorRefusesBadSettings) {
    boost::asio::io_context io;
    e2b::api_settings s;
    s.api_key = "e2b_0123456789abcdef";
    s.sandbox_url = "gopher://x";
    try {
        e2b::api api(io.get_executor(), s);
        FAIL() << "expected std::invalid_argument";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("sandbox URL"), std::string::npos);
        EXPECT_EQ(std::string(e.what()).find(s.api_key), std::string::npos);
    }
    s.sandbox_url = "";
    e2b::api ok(io.get_executor(), s);
    EXPECT_EQ(ok.transport().open_connections(), 0u);
    EXPECT_EQ(ok.transport().tls_error(), "");
}

TEST(E2bSettings, ACaFileWithoutCertificatesIsRefused) {
    genesis_test::temp_dir dir;
    genesis_test::write_file(dir / "ca.pem", "not a certificate\n");
    boost::asio::io_context io;
    e2b::api_settings s;
    s.api_key = "e2b_0123456789abcdef";
    s.tls.ca_file = (dir / "ca.pem").string();
    EXPECT_EQ(e2b::validate_settings(s), "");  // it exists; loading it is what fails
    try {
        e2b::api api(io.get_executor(), s);
        FAIL() << "expected std::invalid_argument";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("cannot load CA file"), std::string::npos) << e.what();
    }
}

TEST(E2bSettings, ThePoolKeepsAConnectionForEveryRequestTheJobsInFlightMayMake) {
    genesis::launch::launcher_config cfg;
    cfg.type = genesis::launch::job_type::e2b;
    cfg.max_parallel_jobs = 300;
    // A job has up to three requests in flight (the results download).
    EXPECT_GE(genesis::launch::detail::make_api_settings(cfg).max_idle_per_origin, 900u);
    cfg.max_parallel_jobs = 1;
    EXPECT_GE(genesis::launch::detail::make_api_settings(cfg).max_idle_per_origin,
              genesis::launch::detail::http::client::default_max_idle_per_origin);
}

TEST(HttpClient, AnUnreadableCaFileIsReportedUpFront) {
    boost::asio::io_context io;
    http::tls_settings tls;
    tls.ca_file = "/nonexistent/ca.pem";
    http::client c(io.get_executor(), tls);
    EXPECT_NE(c.tls_error().find("/nonexistent/ca.pem"), std::string::npos);
}

// ---- process events --------------------------------------------------------------------------

std::optional<e2b::process_event> event(std::string_view text, std::string* why_out = nullptr) {
    std::string why;
    auto e = e2b::parse_process_event(json::parse(text), why);
    if (why_out) *why_out = why;
    return e;
}

TEST(ProcessEvent, StartDataKeepaliveAndUnknown) {
    auto start = event(R"({"event":{"start":{"pid":1234}}})");
    ASSERT_TRUE(start);
    EXPECT_EQ(start->t, e2b::process_event::type::start);
    EXPECT_EQ(start->pid, 1234u);

    auto data = event(R"({"event":{"data":{"stdout":"aGVsbG8K"}}})");
    ASSERT_TRUE(data);
    EXPECT_EQ(data->t, e2b::process_event::type::data);
    EXPECT_EQ(data->stdout_bytes, "hello\n");
    EXPECT_EQ(data->stderr_bytes, "");

    auto err = event(R"({"event": {"data": {"stderr": "AP8"}}})");  // unpadded, binary
    ASSERT_TRUE(err);
    EXPECT_EQ(err->stderr_bytes, std::string("\x00\xff", 2));

    EXPECT_EQ(event(R"({"event":{"keepalive":{}}})")->t, e2b::process_event::type::keepalive);
    EXPECT_EQ(event(R"({"event":{"somethingNew":{}}})")->t, e2b::process_event::type::unknown);
}

TEST(ProcessEvent, EndDefaultsAndBothSpellingsOfTheExitCode) {
    auto ok = event(R"({"event":{"end":{"exited":true,"status":"exit status 0"}}})");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->t, e2b::process_event::type::end);
    EXPECT_EQ(ok->end.exit_code, 0);
    EXPECT_TRUE(ok->end.exited);
    EXPECT_EQ(ok->end.status, "exit status 0");
    EXPECT_EQ(ok->end.error, "");

    auto camel = event(R"({"event":{"end":{"exitCode":3,"exited":true,"status":"exit status 3","error":"exit status 3"}}})");
    EXPECT_EQ(camel->end.exit_code, 3);
    EXPECT_EQ(camel->end.error, "exit status 3");

    auto snake = event(R"({"event":{"end":{"exit_code":"7","exited":true}}})");
    EXPECT_EQ(snake->end.exit_code, 7);

    auto killed = event(R"({"event":{"end":{"exitCode":-1,"status":"signal: killed","error":"signal: killed"}}})");
    EXPECT_EQ(killed->end.exit_code, -1);
    EXPECT_FALSE(killed->end.exited);
}

TEST(ProcessEvent, RejectsMalformedMessages) {
    std::string why;
    EXPECT_FALSE(event(R"([1,2])", &why));
    EXPECT_FALSE(why.empty());
    EXPECT_FALSE(event(R"({"event":{"data":{"stdout":"***"}}})", &why));
    EXPECT_NE(why.find("base64"), std::string::npos);
    EXPECT_FALSE(event(R"({"event":{"start":{"pid":-4}}})", &why));
    EXPECT_FALSE(event(R"({"event":{"end":{"exitCode":"x"}}})", &why));
}

// ---- a whole process stream -------------------------------------------------------------------

std::string frame(std::string_view payload) { return e2b::encode_envelope(payload); }
std::string end_frame(std::string_view payload = "{}") {
    return e2b::encode_envelope(payload, e2b::envelope_flag_end_stream);
}

struct captured {
    std::string out, err;
    e2b::process_stream stream{[this](std::string_view b) { out += b; }, [this](std::string_view b) { err += b; }};
};

TEST(ProcessStream, ReassemblesFramesSplitAnywhere) {
    const std::string body = frame(R"({"event":{"start":{"pid":42}}})") +
                             frame(R"({"event":{"data":{"stdout":"aGVsbG8K"}}})") +
                             frame(R"({"event":{"keepalive":{}}})") +
                             frame(R"({"event":{"data":{"stderr":"b29wcw=="}}})") +
                             frame(R"({"event":{"end":{"exitCode":2,"exited":true,"status":"exit status 2"}}})") +
                             end_frame();
    captured c;
    for (char byte : body) c.stream.feed(std::string_view(&byte, 1));  // one byte at a time
    EXPECT_TRUE(c.stream.started());
    EXPECT_EQ(c.stream.pid(), 42u);
    EXPECT_TRUE(c.stream.finished());
    EXPECT_EQ(c.out, "hello\n");
    EXPECT_EQ(c.err, "oops");
    auto r = c.stream.outcome("run");
    ASSERT_TRUE(r) << r.error->message;
    EXPECT_EQ(r->pid, 42u);
    EXPECT_EQ(r->exit_code, 2);
    EXPECT_TRUE(r->exited);
}

// The start event is announced once, before any output: the command's time limit counts from it.
TEST(ProcessStream, TheStartIsAnnouncedOnceBeforeAnyOutput) {
    std::vector<std::string> seen;
    e2b::process_stream stream([&](std::string_view b) { seen.push_back("out " + std::string(b)); }, {},
                               [&](std::uint32_t pid) { seen.push_back("start " + std::to_string(pid)); });
    stream.feed(frame(R"({"event":{"start":{"pid":7}}})") + frame(R"({"event":{"data":{"stdout":"aGk="}}})") +
                frame(R"({"event":{"start":{"pid":8}}})"));
    EXPECT_EQ(seen, (std::vector<std::string>{"start 7", "out hi"}));
    EXPECT_EQ(stream.pid(), 7u);
}

TEST(ProcessStream, DeadlineExceededIsATimeoutThatIsNotTransient) {
    captured c;
    c.stream.feed(frame(R"({"event":{"start":{"pid":1}}})") +
                  end_frame(R"({"error":{"code":"deadline_exceeded","message":"context deadline exceeded"}})"));
    auto r = c.stream.outcome("run a command");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error->k, kind::timeout);
    EXPECT_EQ(r.error->status, 504u);
    EXPECT_FALSE(r.error->transient());
    EXPECT_NE(r.error->message.find("deadline_exceeded"), std::string::npos);
    EXPECT_NE(r.error->message.find("\"context deadline exceeded\""), std::string::npos);
}

TEST(ProcessStream, MissingPiecesAreProtocolErrors) {
    {
        captured c;  // no end-stream frame
        c.stream.feed(frame(R"({"event":{"start":{"pid":1}}})"));
        auto r = c.stream.outcome("run");
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error->k, kind::protocol);
        EXPECT_NE(r.error->message.find("EndStreamResponse"), std::string::npos);
    }
    {
        captured c;  // end-stream without an end event
        c.stream.feed(frame(R"({"event":{"start":{"pid":1}}})") + end_frame());
        auto r = c.stream.outcome("run");
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error->k, kind::protocol);
        EXPECT_NE(r.error->message.find("without a result"), std::string::npos);
    }
    {
        captured c;  // cut in the middle of a frame
        auto f = frame(R"({"event":{"start":{"pid":1}}})");
        c.stream.feed(std::string_view(f).substr(0, 7));
        EXPECT_NE(c.stream.outcome("run").error->message.find("middle of a message"), std::string::npos);
    }
    {
        captured c;  // a compressed frame is refused
        c.stream.feed(e2b::encode_envelope("{}", e2b::envelope_flag_compressed));
        EXPECT_FALSE(c.stream.protocol_error().empty());
        EXPECT_EQ(c.stream.outcome("run").error->k, kind::protocol);
    }
}

TEST(ProcessStream, EndStreamErrorsMapToKinds) {
    struct expectation {
        const char* code;
        kind k;
    };
    for (auto [code, k] : {expectation{"unavailable", kind::transport}, expectation{"unauthenticated", kind::unauthorized},
                           expectation{"not_found", kind::not_found}, expectation{"resource_exhausted", kind::rate_limited},
                           expectation{"canceled", kind::cancelled}, expectation{"invalid_argument", kind::http}}) {
        e2b::end_stream_message end;
        end.error = e2b::connect_error{code, "m"};
        auto e = e2b::end_stream_to_error(end, "ctx");
        ASSERT_TRUE(e) << code;
        EXPECT_EQ(e->k, k) << code;
        EXPECT_EQ(e->status, static_cast<unsigned>(e2b::http_status_for_code(code))) << code;
    }
    EXPECT_FALSE(e2b::end_stream_to_error(e2b::end_stream_message{}, "ctx"));
}

// ---- HTTP error classification -----------------------------------------------------------------

TEST(ErrorClassification, ControlPlaneStatuses) {
    auto unauthorized = e2b::classify_http_error(e2b::plane::control, 401,
                                                 R"({"code":401,"message":"Invalid API key"})", "create sandbox");
    EXPECT_EQ(unauthorized.k, kind::unauthorized);
    EXPECT_EQ(unauthorized.message, "create sandbox: HTTP 401 \"Invalid API key\"");
    EXPECT_FALSE(unauthorized.transient());

    auto missing = e2b::classify_http_error(e2b::plane::control, 404, R"({"code":404,"message":"nope"})", "kill");
    EXPECT_EQ(missing.k, kind::not_found);

    auto limited = e2b::classify_http_error(e2b::plane::control, 429, R"({"code":429,"message":"Rate limit exceeded"})",
                                            "create");
    EXPECT_EQ(limited.k, kind::rate_limited);
    EXPECT_TRUE(limited.transient());

    auto busy = e2b::classify_http_error(e2b::plane::control, 503, "service busy", "create");
    EXPECT_EQ(busy.k, kind::http);
    EXPECT_EQ(busy.status, 503u);
    EXPECT_TRUE(busy.transient());
    EXPECT_NE(busy.message.find("\"service busy\""), std::string::npos);

    auto bad = e2b::classify_http_error(e2b::plane::control, 400, R"({"code":400,"message":"Timeout must be > 0"})", "c");
    EXPECT_EQ(bad.k, kind::http);
    EXPECT_FALSE(bad.transient());
}

TEST(ErrorClassification, EnvdProxyAndConnectBodies) {
    auto gone = e2b::classify_http_error(
        e2b::plane::envd, 502, R"({"sandboxId":"i1","message":"The sandbox was not found","code":502})", "upload");
    EXPECT_EQ(gone.k, kind::sandbox_gone);
    EXPECT_FALSE(gone.transient());

    auto port = e2b::classify_http_error(
        e2b::plane::envd, 502, R"({"sandboxId":"i1","message":"The sandbox is running but port is not open","code":502})",
        "upload");
    EXPECT_EQ(port.k, kind::http);
    EXPECT_TRUE(port.transient());

    // The same 502 on the control plane is just an HTTP error.
    EXPECT_EQ(e2b::classify_http_error(e2b::plane::control, 502, R"({"message":"The sandbox was not found"})", "x").k,
              kind::http);

    auto rpc = e2b::classify_http_error(e2b::plane::envd, 404, R"({"code":"not_found","message":"path missing"})",
                                        "list");
    EXPECT_EQ(rpc.k, kind::not_found);
    EXPECT_EQ(rpc.status, 404u);
    EXPECT_EQ(rpc.message, "list: not_found \"path missing\"");

    auto file = e2b::classify_http_error(e2b::plane::envd, 404, R"({"code":404,"message":"path '/x' does not exist"})",
                                         "download");
    EXPECT_EQ(file.k, kind::not_found);
}

TEST(ErrorClassification, ServerMessagesAreQuotedOnOneLineAndCut) {
    EXPECT_EQ(e2b::quote_server_message("a\r\nb\t\"c\"\\"), "\"a b \\\"c\\\"\\\\\"");
    const std::string long_text(1000, 'x');
    auto quoted = e2b::quote_server_message(long_text);
    EXPECT_LE(quoted.size(), 310u);
    EXPECT_NE(quoted.find("\xE2\x80\xA6"), std::string::npos);
    // Never cut inside a UTF-8 sequence.
    std::string accents;
    for (int i = 0; i < 400; ++i) accents += "\xC3\xA9";
    auto cut = e2b::quote_server_message(accents);
    auto inner = cut.substr(1, cut.size() - 1 - 1 - 3);
    EXPECT_EQ(inner.size() % 2, 0u);

    auto e = e2b::classify_http_error(e2b::plane::control, 500, "line one\nline two", "ctx");
    EXPECT_EQ(e.message.find('\n'), std::string::npos);
}

TEST(ErrorClassification, Transience) {
    e2b::api_error e;
    e.k = kind::transport;
    EXPECT_TRUE(e.transient());
    e.k = kind::timeout;
    EXPECT_TRUE(e.transient());  // a local timeout
    e.status = 504;
    EXPECT_FALSE(e.transient());  // a command's own deadline
    for (auto k : {kind::protocol, kind::not_found, kind::sandbox_gone, kind::unauthorized, kind::maybe_created,
                   kind::cancelled}) {
        e.k = k;
        EXPECT_FALSE(e.transient()) << e2b::to_string(k);
    }
}

// ---- result names from the sandbox (e2b_backend.hpp) ------------------------------------------

TEST(E2bResultPath, SafeNamesInsideTheFolderAreKept) {
    namespace support = genesis::launch::detail::e2b_support;
    const std::string folder = "/home/user/results";
    EXPECT_EQ(support::relative_result_path(folder, folder + "/metrics.json"), std::filesystem::path("metrics.json"));
    EXPECT_EQ(support::relative_result_path(folder + "/", folder + "/a/b c.txt"), std::filesystem::path("a/b c.txt"));
    EXPECT_EQ(support::relative_result_path(folder, folder + "/" + std::string(255, 'n')),
              std::filesystem::path(std::string(255, 'n')));
    EXPECT_EQ(support::relative_result_path(folder, folder + "/caf\xC3\xA9.txt"), std::filesystem::path("caf\xC3\xA9.txt"));
}

TEST(E2bResultPath, HostileNamesAreRefused) {
    namespace support = genesis::launch::detail::e2b_support;
    const std::string folder = "/home/user/results";
    std::string deep;
    for (int i = 0; i < 520; ++i) deep += "d/";
    const std::vector<std::string> refused = {
        folder,
        folder + "/",
        "/home/user/resultsX/a",
        "/etc/passwd",
        folder + "/../x",
        folder + "/a/../../x",
        folder + "/./x",
        folder + "//x",
        folder + "/a/",
        folder + "/" + std::string(256, 'n'),
        folder + "/" + deep + "x",
        folder + "/new\nline",
        folder + "/tab\there",
        folder + "/esc\x1b[0m",
        folder + "/del\x7f",
        folder + "/nul" + std::string(1, '\0') + "byte",
    };
    for (const auto& name : refused)
        EXPECT_FALSE(support::relative_result_path(folder, name)) << support::printable_name(name);
}

TEST(E2bResultPath, PrintableNamesAreOneHarmlessLine) {
    namespace support = genesis::launch::detail::e2b_support;
    EXPECT_EQ(support::printable_name("plain/name.txt"), "plain/name.txt");
    EXPECT_EQ(support::printable_name(std::string("a\nb\x1b") + '\0' + "\\\x7f"), "a\\x0ab\\x1b\\x00\\x5c\\x7f");
    EXPECT_EQ(support::printable_name(std::string(300, 'x')), std::string(200, 'x') + "... (300 bytes)");
}

}  // namespace
