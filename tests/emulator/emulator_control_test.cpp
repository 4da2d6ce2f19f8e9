// emulator_control_test.cpp - genesis_e2b_emulator's control plane, router,
// knobs and admin endpoints, driven in-process over loopback HTTP(S).
//
// Built only when the emulator library is linked in (GENESIS_LAUNCH_BUILD_EMULATOR).
#if __has_include("emulator.hpp")

#include "emulator.hpp"
#include "test_support.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace emu = genesis::e2b_emulator;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using headers = std::vector<std::pair<std::string, std::string>>;

constexpr auto io_timeout = 10s;

// ---- a tiny loopback HTTP client -------------------------------------------------

struct reply {
    boost::system::error_code ec;  // transport error (reset, EOF, timeout)
    http::response<http::string_body> res;

    int status() const { return res.result_int(); }
    json::value body_json() const { return json::parse(res.body()); }
    std::string header(std::string_view name) const {
        auto it = res.find(name);
        return it == res.end() ? std::string() : std::string(it->value());
    }
};

http::request<http::string_body> make_request(http::verb verb, const std::string& target, std::string body,
                                              const headers& extra, bool chunked) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::user_agent, "emulator-control-test");
    for (const auto& [name, value] : extra) req.set(name, value);
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
    if (chunked)
        req.chunked(true);
    else
        req.prepare_payload();
    return req;
}

template <class Stream>
reply exchange(Stream& stream, http::request<http::string_body>& req, beast::flat_buffer& buffer) {
    reply r;
    beast::get_lowest_layer(stream).expires_after(io_timeout);
    http::write(stream, req, r.ec);
    if (r.ec) return r;
    beast::get_lowest_layer(stream).expires_after(io_timeout);
    http::read(stream, buffer, r.res, r.ec);
    return r;
}

// One keep-alive connection to the emulator (plain HTTP).
class connection {
public:
    explicit connection(unsigned short port) : stream_(io_) {
        stream_.expires_after(io_timeout);
        stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    }

    reply send(http::verb verb, const std::string& target, std::string body = {}, const headers& extra = {},
               bool chunked = false) {
        auto req = make_request(verb, target, std::move(body), extra, chunked);
        return exchange(stream_, req, buffer_);
    }

private:
    asio::io_context io_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
};

// Plain JSON helpers.
json::object parse_object(const std::string& text) { return json::parse(text).as_object(); }

std::string str(const json::value& v) { return std::string(v.as_string()); }

// Polls `done` every 50 ms for up to `limit`.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (done()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return done();
}

// ---- fixture: an emulator on its own io_context thread ---------------------------

class EmulatorControl : public ::testing::Test {
protected:
    void start(emu::emulator_options options = {}) {
        emulator_ = std::make_unique<emu::emulator>(io_.get_executor(), std::move(options));
        std::string error;
        ASSERT_TRUE(emulator_->start(error)) << error;
        port_ = emulator_->port();
        key_ = emulator_->api_key();
        thread_ = std::thread([this] { io_.run(); });
    }

    void TearDown() override {
        if (thread_.joinable()) {
            asio::post(io_, [this] {
                emulator_->stop();
                io_.stop();
            });
            thread_.join();
        }
        emulator_.reset();
    }

    headers auth() const { return {{"X-API-KEY", key_}}; }

    reply call(http::verb verb, const std::string& target, std::string body = {}, std::optional<headers> extra = {},
               bool chunked = false) {
        connection c(port_);
        return c.send(verb, target, std::move(body), extra ? *extra : auth(), chunked);
    }

    // Creates a sandbox through POST /v2/sandboxes; its ID.
    std::string create(const std::string& body = R"({"templateID":"base"})") {
        auto r = call(http::verb::post, "/v2/sandboxes", body);
        EXPECT_EQ(r.status(), 201) << r.res.body();
        if (r.status() != 201) return {};
        return str(r.body_json().at("sandboxID"));
    }

    json::object stats() {
        auto r = call(http::verb::get, "/_emulator/stats", {}, headers{});
        EXPECT_EQ(r.status(), 200);
        return parse_object(r.res.body());
    }

    std::int64_t stat(std::string_view name) { return stats().at(name).to_number<std::int64_t>(); }

    void configure(const std::string& body) {
        auto r = call(http::verb::post, "/_emulator/config", body);
        ASSERT_EQ(r.status(), 200) << r.res.body();
    }

    headers envd_headers(const std::string& id, const std::string& port = "49983") const {
        return {{"E2b-Sandbox-Id", id}, {"E2b-Sandbox-Port", port}};
    }

    asio::io_context io_;
    std::unique_ptr<emu::emulator> emulator_;
    std::thread thread_;
    unsigned short port_ = 0;
    std::string key_;
};

void expect_error_body(const reply& r, int code, std::string_view message_part) {
    EXPECT_EQ(r.status(), code) << r.res.body();
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    auto body = parse_object(r.res.body());
    EXPECT_EQ(body.at("code").to_number<int>(), code);
    EXPECT_NE(std::string(body.at("message").as_string()).find(message_part), std::string::npos)
        << "message: " << body.at("message");
}

// ---- authentication -------------------------------------------------------------

TEST_F(EmulatorControl, RejectsMissingMalformedAndWrongApiKeys) {
    start();
    EXPECT_TRUE(key_.starts_with("e2b_"));
    EXPECT_EQ(key_.size(), 44u);

    auto missing = call(http::verb::get, "/v2/sandboxes", {}, headers{});
    expect_error_body(missing, 401, "Invalid API key, please visit https://e2b.dev/docs/api-key for more information.");

    auto malformed = call(http::verb::get, "/v2/sandboxes", {}, headers{{"X-API-Key", "e2b_test_key"}});
    expect_error_body(malformed, 401, "Invalid API key format");

    auto wrong = call(http::verb::get, "/v2/sandboxes", {}, headers{{"X-API-Key", "e2b_0123456789abcdef"}});
    expect_error_body(wrong, 401, "Invalid API key");

    // Header names are case-insensitive.
    EXPECT_EQ(call(http::verb::get, "/v2/sandboxes", {}, headers{{"x-api-key", key_}}).status(), 200);
    // The health probe needs no key.
    auto health = call(http::verb::get, "/health", {}, headers{});
    EXPECT_EQ(health.status(), 200);
    EXPECT_EQ(health.res.body(), "OK");
}

TEST_F(EmulatorControl, AcceptsAConfiguredKeyAndRefusesToStartWithAMalformedOne) {
    emu::emulator_options bad;
    bad.api_key = "e2b_test_key";
    asio::io_context io;
    emu::emulator refused(io.get_executor(), bad);
    std::string error;
    EXPECT_FALSE(refused.start(error));
    EXPECT_NE(error.find("API key"), std::string::npos);

    emu::emulator_options good;
    good.api_key = "e2b_00ff";
    start(good);
    EXPECT_EQ(call(http::verb::get, "/sandboxes").status(), 200);
}

// ---- lifecycle ----------------------------------------------------------------

TEST_F(EmulatorControl, CreateGetListSetTimeoutKill) {
    start();
    auto created = call(http::verb::post, "/v2/sandboxes",
                        R"({"templateID":"base","metadata":{"job":"demo-42","a b":"c&d=e/ü"},)"
                        R"("envVars":{"K":"v"},"timeout":600})");
    ASSERT_EQ(created.status(), 201) << created.res.body();
    auto sb = parse_object(created.res.body());
    std::string id = str(sb.at("sandboxID"));
    EXPECT_TRUE(std::regex_match(id, std::regex("i[a-z0-9]{20}"))) << id;
    EXPECT_EQ(str(sb.at("templateID")), "base");
    EXPECT_EQ(str(sb.at("alias")), "base");
    EXPECT_EQ(str(sb.at("clientID")), "6532622b");
    EXPECT_EQ(str(sb.at("envdVersion")), "0.6.13");
    EXPECT_FALSE(str(sb.at("envdAccessToken")).empty());
    EXPECT_TRUE(sb.at("domain").is_null());

    auto got = call(http::verb::get, "/sandboxes/" + id);
    ASSERT_EQ(got.status(), 200);
    auto detail = parse_object(got.res.body());
    EXPECT_EQ(str(detail.at("state")), "running");
    EXPECT_TRUE(std::regex_match(str(detail.at("startedAt")), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
    EXPECT_EQ(detail.at("cpuCount").to_number<int>(), 2);
    EXPECT_EQ(detail.at("memoryMB").to_number<int>(), 512);
    EXPECT_EQ(str(detail.at("metadata").at("job")), "demo-42");
    EXPECT_EQ(str(detail.at("envdAccessToken")), str(sb.at("envdAccessToken")));
    EXPECT_FALSE(detail.at("allowInternetAccess").as_bool());

    auto other = create(R"({"templateID":"base","metadata":{"job":"other"}})");

    // Metadata filters exactly as the JS SDK encodes them
    // (three layers: docs/e2b-wire.md, "List and the metadata filter").
    auto by_job = call(http::verb::get, "/v2/sandboxes?metadata=job%3Ddemo-42");
    ASSERT_EQ(by_job.status(), 200);
    ASSERT_EQ(by_job.body_json().as_array().size(), 1u);
    EXPECT_EQ(str(by_job.body_json().as_array()[0].at("sandboxID")), id);
    EXPECT_TRUE(by_job.header("X-Next-Token").empty());
    auto by_odd = call(http::verb::get, "/v2/sandboxes?metadata=a%252520b%3Dc%252526d%25253De%25252F%2525C3%2525BC");
    ASSERT_EQ(by_odd.body_json().as_array().size(), 1u);
    EXPECT_EQ(str(by_odd.body_json().as_array()[0].at("sandboxID")), id);
    auto legacy_list = call(http::verb::get, "/sandboxes?metadata=job%3Dother");
    ASSERT_EQ(legacy_list.body_json().as_array().size(), 1u);
    EXPECT_EQ(str(legacy_list.body_json().as_array()[0].at("sandboxID")), other);
    EXPECT_EQ(call(http::verb::get, "/v2/sandboxes").body_json().as_array().size(), 2u);
    expect_error_body(call(http::verb::get, "/v2/sandboxes?metadata=nokeyvalue"), 400, "Error parsing metadata");
    expect_error_body(call(http::verb::get, "/v2/sandboxes?metadata=a%25zz%3Db"), 400, "Error parsing metadata");

    // set_timeout: can shorten; above the maximum is clamped silently.
    auto end_before = str(detail.at("endAt"));
    EXPECT_EQ(call(http::verb::post, "/sandboxes/" + id + "/timeout", R"({"timeout":30})").status(), 204);
    auto end_after = str(call(http::verb::get, "/sandboxes/" + id).body_json().at("endAt"));
    EXPECT_LT(end_after, end_before);
    EXPECT_EQ(call(http::verb::post, "/sandboxes/" + id + "/timeout", R"({"timeout":999999})").status(), 204);
    expect_error_body(call(http::verb::post, "/sandboxes/inope/timeout", R"({"timeout":30})"), 404, "doesn't exist");

    // kill, then kill again: 404 with the code in the body (the SDK's kill() -> false).
    auto killed = call(http::verb::delete_, "/sandboxes/" + id);
    EXPECT_EQ(killed.status(), 204);
    EXPECT_TRUE(killed.res.body().empty());
    expect_error_body(call(http::verb::delete_, "/sandboxes/" + id), 404,
                      "Sandbox \"" + id + "\" doesn't exist or you don't have access to it");
    expect_error_body(call(http::verb::get, "/sandboxes/" + id), 404, "doesn't exist");

    auto s = stats();
    EXPECT_EQ(s.at("created").to_number<int>(), 2);
    EXPECT_EQ(s.at("killed").to_number<int>(), 1);
    EXPECT_EQ(s.at("live").to_number<int>(), 1);
    EXPECT_EQ(str(s.at("live_sandboxes").as_array()[0]), other);
    auto& by = s.at("requests").at("by_endpoint").as_object();
    EXPECT_EQ(by.at("create").to_number<int>(), 2);
    EXPECT_EQ(by.at("kill").to_number<int>(), 2);
    EXPECT_EQ(by.at("set_timeout").to_number<int>(), 3);
    EXPECT_EQ(by.at("get").to_number<int>(), 3);
    EXPECT_GE(by.at("list").to_number<int>(), 6);
}

TEST_F(EmulatorControl, LegacyCreateDefaultsAndSecureFlag) {
    start();
    auto insecure = call(http::verb::post, "/sandboxes", R"({"templateID":"base"})");
    ASSERT_EQ(insecure.status(), 201);
    EXPECT_FALSE(insecure.body_json().as_object().contains("envdAccessToken"));
    auto secure = call(http::verb::post, "/sandboxes", R"({"templateID":"base","secure":true,"timeout":300})");
    ASSERT_EQ(secure.status(), 201);
    EXPECT_TRUE(secure.body_json().as_object().contains("envdAccessToken"));

    // Legacy default timeout is 15 s, v2's 300 s.
    auto detail = call(http::verb::get, "/sandboxes/" + str(insecure.body_json().at("sandboxID"))).body_json();
    auto started = str(detail.at("startedAt")), ends = str(detail.at("endAt"));
    EXPECT_NE(started, ends);
    auto v2 = create();
    auto v2_detail = call(http::verb::get, "/sandboxes/" + v2).body_json();
    auto seconds = [](const std::string& t) {  // "...THH:MM:SS.mmmZ" -> seconds of the day
        return std::stoi(t.substr(11, 2)) * 3600 + std::stoi(t.substr(14, 2)) * 60 + std::stoi(t.substr(17, 2));
    };
    EXPECT_EQ((seconds(ends) - seconds(started) + 86400) % 86400, 15);
    EXPECT_EQ((seconds(str(v2_detail.at("endAt"))) - seconds(str(v2_detail.at("startedAt"))) + 86400) % 86400, 300);
}

TEST_F(EmulatorControl, CreateValidation) {
    emu::emulator_options options;
    options.templates["py"].cpu_count = 4;
    start(options);
    expect_error_body(call(http::verb::post, "/v2/sandboxes", R"({"timeout":10})"), 400, "templateID");
    expect_error_body(call(http::verb::post, "/v2/sandboxes", R"({"templateID":"nope"})"), 404,
                      "template 'nope' not found");
    expect_error_body(call(http::verb::post, "/v2/sandboxes", R"({"templateID":"Bad Name!"})"), 400,
                      "Invalid template reference");
    expect_error_body(call(http::verb::post, "/v2/sandboxes", R"({"templateID":"base","timeout":0})"), 400,
                      "Timeout must be greater than 0");
    expect_error_body(call(http::verb::post, "/v2/sandboxes", R"({"templateID":"base","timeout":-5})"), 400,
                      "Timeout must be greater than 0");
    expect_error_body(call(http::verb::post, "/v2/sandboxes", R"({"templateID":"base","timeout":86401})"), 400,
                      "Timeout cannot be greater than 24 hours");
    expect_error_body(call(http::verb::post, "/v2/sandboxes", R"({"templateID":)"), 400, "Error when parsing request");
    expect_error_body(call(http::verb::post, "/v2/sandboxes", R"({"templateID":"base","metadata":{"a":1}})"), 400,
                      "metadata");
    expect_error_body(call(http::verb::post, "/v2/sandboxes", R"({"templateID":"base","envVars":[]})"), 400, "envVars");

    // Templates resolve by name, name:tag and namespace/name.
    auto py = call(http::verb::post, "/v2/sandboxes", R"({"templateID":"team/py:latest"})");
    ASSERT_EQ(py.status(), 201) << py.res.body();
    EXPECT_EQ(str(py.body_json().at("templateID")), "py");
    auto detail = call(http::verb::get, "/sandboxes/" + str(py.body_json().at("sandboxID"))).body_json();
    EXPECT_EQ(detail.at("cpuCount").to_number<int>(), 4);
    auto internet = call(http::verb::post, "/v2/sandboxes", R"({"templateID":"base","allow_internet_access":true})");
    auto internet_detail = call(http::verb::get, "/sandboxes/" + str(internet.body_json().at("sandboxID"))).body_json();
    EXPECT_TRUE(internet_detail.at("allowInternetAccess").as_bool());
}

TEST_F(EmulatorControl, ListPagination) {
    start();
    for (int i = 0; i < 3; ++i) create(R"({"templateID":"base","metadata":{"batch":"p"}})");
    create(R"({"templateID":"base","metadata":{"batch":"q"}})");
    auto first = call(http::verb::get, "/v2/sandboxes?metadata=batch%3Dp&limit=2");
    ASSERT_EQ(first.status(), 200);
    EXPECT_EQ(first.body_json().as_array().size(), 2u);
    EXPECT_EQ(first.header("X-Total-Running"), "4");
    auto token = first.header("X-Next-Token");
    ASSERT_FALSE(token.empty());
    auto second = call(http::verb::get, "/v2/sandboxes?metadata=batch%3Dp&limit=2&nextToken=" + token);
    ASSERT_EQ(second.status(), 200);
    ASSERT_EQ(second.body_json().as_array().size(), 1u);
    EXPECT_TRUE(second.header("X-Next-Token").empty());
    // Newest first, no item twice.
    std::set<std::string> seen;
    std::string previous_start = "9999";
    for (const auto& page : {first.body_json(), second.body_json()})
        for (const auto& item : page.as_array()) {
            seen.insert(str(item.at("sandboxID")));
            EXPECT_LE(str(item.at("startedAt")), previous_start);
            previous_start = str(item.at("startedAt"));
        }
    EXPECT_EQ(seen.size(), 3u);

    for (auto bad : {"0", "101", "abc", "-1"})
        expect_error_body(call(http::verb::get, std::string("/v2/sandboxes?limit=") + bad), 400, "limit");
    expect_error_body(call(http::verb::get, "/v2/sandboxes?nextToken=garbage"), 400, "next token");
    EXPECT_EQ(call(http::verb::get, "/v2/sandboxes?state=paused").body_json().as_array().size(), 0u);
    EXPECT_EQ(call(http::verb::get, "/v2/sandboxes?state=running,paused").body_json().as_array().size(), 4u);
}

TEST_F(EmulatorControl, ConnectReturnsTheSandboxAndOnlyExtends) {
    start();
    auto id = create(R"({"templateID":"base","timeout":600})");
    auto end_before = str(call(http::verb::get, "/sandboxes/" + id).body_json().at("endAt"));
    auto connected = call(http::verb::post, "/v2/sandboxes/" + id + "/connect", R"({"timeout":10})");
    ASSERT_EQ(connected.status(), 200) << connected.res.body();
    EXPECT_EQ(str(connected.body_json().at("sandboxID")), id);
    EXPECT_EQ(str(call(http::verb::get, "/sandboxes/" + id).body_json().at("endAt")), end_before);
    EXPECT_EQ(call(http::verb::post, "/sandboxes/" + id + "/connect", R"({"timeout":3600})").status(), 200);
    EXPECT_GT(str(call(http::verb::get, "/sandboxes/" + id).body_json().at("endAt")), end_before);
    expect_error_body(call(http::verb::post, "/v2/sandboxes/inope/connect"), 404, "doesn't exist");
}

TEST_F(EmulatorControl, UnknownRoutesAndMethods) {
    start();
    expect_error_body(call(http::verb::get, "/nowhere"), 404, "Not found");
    expect_error_body(call(http::verb::put, "/v2/sandboxes"), 405, "Method Not Allowed");
    expect_error_body(call(http::verb::get, "/_emulator/nothing"), 404, "Not found");
    EXPECT_EQ(call(http::verb::get, "/_emulator/health", {}, headers{}).status(), 200);
}

TEST_F(EmulatorControl, SandboxExpiresAfterItsTimeout) {
    start();
    auto id = create(R"({"templateID":"base","timeout":1})");
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(call(http::verb::get, "/sandboxes/" + id).status(), 200);
    EXPECT_TRUE(eventually([&] { return call(http::verb::get, "/sandboxes/" + id).status() == 404; }));
    EXPECT_TRUE(eventually([&] { return stat("expired") == 1; }));
    EXPECT_EQ(stat("live"), 0);
    // envd for an expired sandbox: the proxy's 502.
    auto envd = call(http::verb::get, "/health", {}, envd_headers(id));
    EXPECT_EQ(envd.status(), 502);
}

// ---- HTTP transport -------------------------------------------------------------

TEST_F(EmulatorControl, AcceptsChunkedBodiesAndKeepsConnectionsAlive) {
    start();
    connection c(port_);
    auto created = c.send(http::verb::post, "/v2/sandboxes", R"({"templateID":"base","metadata":{"via":"chunked"}})",
                          auth(), /*chunked=*/true);
    ASSERT_FALSE(created.ec) << created.ec.message();
    ASSERT_EQ(created.status(), 201) << created.res.body();
    EXPECT_TRUE(created.res.keep_alive());
    // The same connection serves the next request.
    auto listed = c.send(http::verb::get, "/v2/sandboxes?metadata=via%3Dchunked", {}, auth());
    ASSERT_FALSE(listed.ec) << listed.ec.message();
    EXPECT_EQ(listed.body_json().as_array().size(), 1u);
    auto third = c.send(http::verb::get, "/health");
    ASSERT_FALSE(third.ec);
    EXPECT_EQ(third.status(), 200);
}

// ---- knobs ---------------------------------------------------------------------

TEST_F(EmulatorControl, LatencyDelaysRequests) {
    start();
    configure(R"({"latency_ms":150,"endpoint_latency_ms":{"list":200}})");
    auto timed = [&](const std::string& target) {
        auto t0 = std::chrono::steady_clock::now();
        auto r = call(http::verb::get, target);
        EXPECT_EQ(r.status(), 200);
        return std::chrono::steady_clock::now() - t0;
    };
    EXPECT_GE(timed("/health"), 150ms);
    EXPECT_GE(timed("/v2/sandboxes"), 350ms);
}

TEST_F(EmulatorControl, StatusFaultsWithBudgets) {
    start();
    configure(R"({"faults":[
        {"endpoint":"create","kind":"status","status":429,"retry_after":3},
        {"endpoint":"get","status":500,"skip":1},
        {"endpoint":"get","status":502},
        {"endpoint":"get","status":503,"message":"busy now"}]})");
    auto limited = call(http::verb::post, "/v2/sandboxes", R"({"templateID":"base"})");
    expect_error_body(limited, 429, "Rate limit exceeded");
    EXPECT_EQ(limited.header("Retry-After"), "3");
    auto id = create();  // the 429 fired once
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(stat("created"), 1);

    // Rule order: the 500 lets one request through first, so the first get meets the 502.
    expect_error_body(call(http::verb::get, "/sandboxes/" + id), 502, "");
    expect_error_body(call(http::verb::get, "/sandboxes/" + id), 500, "");
    expect_error_body(call(http::verb::get, "/sandboxes/" + id), 503, "busy now");
    EXPECT_EQ(call(http::verb::get, "/sandboxes/" + id).status(), 200);
    EXPECT_EQ(stat("faults_injected"), 4);
}

TEST_F(EmulatorControl, ProbabilisticFaultsFireAtTheirRatesReproduciblyAndAreLogged) {
    start();
    // 30% 503 and 20% 500 on list: one draw per request, each rule its own slice.
    const std::string rules = R"({"seed":7,"faults":[
        {"endpoint":"list","status":503,"count":-1,"probability":0.3},
        {"endpoint":"list","status":500,"count":-1,"probability":0.2}]})";
    auto run = [&] {
        configure(rules);
        std::string pattern;
        for (int i = 0; i < 400; ++i) {
            const int status = call(http::verb::get, "/v2/sandboxes").status();
            pattern += status == 503 ? 'a' : status == 500 ? 'b' : status == 200 ? '.' : '?';
        }
        return pattern;
    };
    const std::string first = run();
    const auto count = [&](char c) { return std::count(first.begin(), first.end(), c); };
    EXPECT_EQ(count('?'), 0);
    EXPECT_GT(count('a'), 80);   // 30% of 400 = 120
    EXPECT_LT(count('a'), 160);
    EXPECT_GT(count('b'), 50);   // 20% of 400 = 80
    EXPECT_LT(count('b'), 110);
    EXPECT_EQ(run(), first);  // the same seed, the same faults (budgets and RNG restart with the rules)

    auto s = stats();
    EXPECT_EQ(s.at("faults_by_kind").at("status_503").to_number<std::int64_t>(), 2 * count('a'));
    EXPECT_EQ(s.at("faults_by_kind").at("status_500").to_number<std::int64_t>(), 2 * count('b'));
    EXPECT_EQ(s.at("faults_injected").to_number<std::int64_t>(), 2 * (count('a') + count('b')));

    // Another seed, other draws.
    configure(R"({"seed":8})");
    std::string other;
    for (int i = 0; i < 400; ++i) other += call(http::verb::get, "/v2/sandboxes").status() == 503 ? 'a' : '.';
    std::string first_a = first;
    std::replace(first_a.begin(), first_a.end(), 'b', '.');
    EXPECT_NE(other, first_a);

    // The log names each fault's endpoint, and the job of the sandbox it concerned.
    configure(R"({"faults":[{"endpoint":"get","kind":"status","status":502,"probability":1}]})");
    auto id = create(R"({"templateID":"base","metadata":{"genesis_job":"job-7"}})");
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(call(http::verb::get, "/sandboxes/" + id).status(), 502);
    auto log = call(http::verb::get, "/_emulator/faults", {}, headers{});
    ASSERT_EQ(log.status(), 200);
    const auto entries = log.body_json();
    ASSERT_FALSE(entries.as_array().empty());
    const auto& last = entries.as_array().back().as_object();
    EXPECT_EQ(str(last.at("kind")), "status_502");
    EXPECT_EQ(str(last.at("endpoint")), "get");
    EXPECT_EQ(str(last.at("sandbox_id")), id);
    EXPECT_EQ(str(last.at("job")), "job-7");

    expect_error_body(call(http::verb::post, "/_emulator/config",
                           R"({"faults":[{"endpoint":"get","probability":0}]})"),
                      400, "probability");
    expect_error_body(call(http::verb::post, "/_emulator/config",
                           R"({"faults":[{"endpoint":"get","probability":1.5}]})"),
                      400, "probability");
}

TEST_F(EmulatorControl, ResetFaultCutsTheConnection) {
    start();
    configure(R"({"faults":[{"endpoint":"list","kind":"reset"}]})");
    auto cut = call(http::verb::get, "/v2/sandboxes");
    EXPECT_TRUE(cut.ec) << "expected a transport error, got HTTP " << cut.status();
    EXPECT_EQ(call(http::verb::get, "/v2/sandboxes").status(), 200);
}

TEST_F(EmulatorControl, LostCreateResponseStillCreatesTheSandbox) {
    start();
    configure(R"({"faults":[{"endpoint":"create","kind":"lose_response"}]})");
    auto lost = call(http::verb::post, "/v2/sandboxes", R"({"templateID":"base","metadata":{"attempt":"a1"}})");
    EXPECT_TRUE(lost.ec) << "expected a transport error, got HTTP " << lost.status();
    EXPECT_EQ(stat("created"), 1);
    // A careful client finds it by its metadata tag instead of creating another.
    auto found = call(http::verb::get, "/v2/sandboxes?metadata=attempt%3Da1");
    ASSERT_EQ(found.status(), 200);
    EXPECT_EQ(found.body_json().as_array().size(), 1u);
}

TEST_F(EmulatorControl, VanishedSandboxDisappearsAfterTheDelay) {
    start();
    configure(R"({"faults":[{"endpoint":"create","kind":"vanish","after_ms":300}]})");
    auto id = create(R"({"templateID":"base","timeout":600})");
    ASSERT_FALSE(id.empty());
    EXPECT_TRUE(eventually([&] { return call(http::verb::get, "/sandboxes/" + id).status() == 404; }));
    EXPECT_EQ(stat("vanished"), 1);
    EXPECT_EQ(stat("expired"), 0);
    EXPECT_EQ(call(http::verb::get, "/health", {}, envd_headers(id)).status(), 502);
}

TEST_F(EmulatorControl, ConcurrencyCap) {
    emu::emulator_options options;
    options.max_concurrent_sandboxes = 1;
    start(options);
    auto first = create();
    expect_error_body(call(http::verb::post, "/v2/sandboxes", R"({"templateID":"base"})"), 429,
                      "you have reached the maximum number of concurrent E2B sandboxes (1). If you need more, "
                      "please visit 'https://e2b.dev/docs/billing'");
    EXPECT_EQ(call(http::verb::delete_, "/sandboxes/" + first).status(), 204);
    EXPECT_FALSE(create().empty());
}

TEST_F(EmulatorControl, CreationRateLimit) {
    start();
    configure(R"({"create_rate_per_second":0.5})");
    EXPECT_FALSE(create().empty());
    auto limited = call(http::verb::post, "/v2/sandboxes", R"({"templateID":"base"})");
    expect_error_body(limited, 429, "Rate limit exceeded");
    auto retry_after = limited.header("Retry-After");
    ASSERT_TRUE(std::regex_match(retry_after, std::regex("[0-9]+"))) << retry_after;
    EXPECT_GE(std::stoi(retry_after), 1);
    EXPECT_LE(std::stoi(retry_after), 2);
    configure(R"({"create_rate_per_second":0})");
    EXPECT_FALSE(create().empty());
}

TEST_F(EmulatorControl, RuntimeConfigNeedsTheKeyAndValidates) {
    start();
    auto no_key = call(http::verb::post, "/_emulator/config", R"({"latency_ms":1})", headers{});
    EXPECT_EQ(no_key.status(), 401);
    expect_error_body(call(http::verb::post, "/_emulator/config", R"({"latency_ms":-1})"), 400, "latency_ms");
    expect_error_body(call(http::verb::post, "/_emulator/config", R"({"faults":[{"endpoint":"creat"}]})"), 400,
                      "unknown endpoint");
    expect_error_body(call(http::verb::post, "/_emulator/config", R"({"faults":[{"endpoint":"get","kind":"boom"}]})"),
                      400, "unknown kind");
    expect_error_body(call(http::verb::post, "/_emulator/config", R"({"colour":"red"})"), 400, "unknown key");
    auto ok = call(http::verb::post, "/_emulator/config", R"({"max_concurrent_sandboxes":7,"faults":[]})");
    ASSERT_EQ(ok.status(), 200);
    EXPECT_EQ(ok.body_json().at("max_concurrent_sandboxes").to_number<int>(), 7);

    // Replacing the faults resets their budgets.
    configure(R"({"faults":[{"endpoint":"*","kind":"status","status":503,"count":1}]})");
    EXPECT_EQ(call(http::verb::get, "/v2/sandboxes").status(), 503);
    EXPECT_EQ(call(http::verb::get, "/v2/sandboxes").status(), 200);
    configure(R"({"faults":[{"endpoint":"*","kind":"status","status":503,"count":1}]})");
    EXPECT_EQ(call(http::verb::get, "/v2/sandboxes").status(), 503);
}

// ---- envd routing (answers of the edge proxy) ------------------------------------

TEST_F(EmulatorControl, EnvdRoutingErrors) {
    start();
    auto id = create();

    auto missing = call(http::verb::get, "/health", {}, headers{{"E2b-Sandbox-Id", id}});
    EXPECT_EQ(missing.status(), 400);
    EXPECT_EQ(missing.res.body(), "missing header");

    auto unknown = call(http::verb::get, "/health", {}, envd_headers("inosuchsandbox"));
    EXPECT_EQ(unknown.status(), 502);
    auto body = parse_object(unknown.res.body());
    EXPECT_EQ(str(body.at("sandboxId")), "inosuchsandbox");
    EXPECT_EQ(str(body.at("message")), "The sandbox was not found");
    EXPECT_EQ(body.at("code").to_number<int>(), 502);

    auto closed = call(http::verb::get, "/health", {}, envd_headers(id, "8080"));
    EXPECT_EQ(closed.status(), 502);
    auto closed_body = parse_object(closed.res.body());
    EXPECT_EQ(str(closed_body.at("message")), "The sandbox is running but port is not open");
    EXPECT_EQ(closed_body.at("port").to_number<int>(), 8080);

    auto reserved = call(http::verb::post, "/init", "{}", envd_headers(id));
    EXPECT_EQ(reserved.status(), 404);
    EXPECT_EQ(str(reserved.body_json().at("path")), "/init");

    // Host-name routing: <port>-<sandboxID>.<domain>.
    auto by_host_unknown = call(http::verb::get, "/health", {},
                                headers{{"Host", "49983-inosuchsandbox.e2b.local:" + std::to_string(port_)}});
    EXPECT_EQ(by_host_unknown.status(), 502);
    EXPECT_EQ(str(by_host_unknown.body_json().at("sandboxId")), "inosuchsandbox");
    auto by_host = call(http::verb::get, "/health", {}, headers{{"Host", "49983-" + id + ".e2b.local"}});
    EXPECT_EQ(by_host.status(), 204);  // envd's own health answer
    auto by_header = call(http::verb::get, "/health", {}, envd_headers(id));
    EXPECT_EQ(by_header.status(), 204);

    // A status fault on an envd endpoint.
    configure(R"({"faults":[{"endpoint":"health","kind":"status","status":503}]})");
    EXPECT_EQ(call(http::verb::get, "/health", {}, envd_headers(id)).status(), 503);

    auto by = stats().at("requests").at("by_endpoint").as_object();
    EXPECT_GE(by.at("health").to_number<int>(), 7);
}

// ---- HTTPS ---------------------------------------------------------------------

// A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI.
bool make_test_pki(const std::filesystem::path& dir) {
    auto q = [](const std::filesystem::path& p) { return "'" + p.string() + "'"; };
    genesis_test::write_file(dir / "server.ext", "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
    std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    std::string commands = "openssl req -x509" + ec + "-keyout " + q(dir / "ca.key") + " -out " + q(dir / "ca.crt") +
                           " -days 1 -subj /CN=genesis-test-ca && "
                           "openssl req" +
                           ec + "-keyout " + q(dir / "server.key") + " -out " + q(dir / "server.csr") +
                           " -subj /CN=127.0.0.1 && "
                           "openssl x509 -req -in " +
                           q(dir / "server.csr") + " -CA " + q(dir / "ca.crt") + " -CAkey " + q(dir / "ca.key") +
                           " -CAcreateserial -out " + q(dir / "server.crt") + " -days 1 -extfile " +
                           q(dir / "server.ext");
    return std::system(("(" + commands + ") >/dev/null 2>&1").c_str()) == 0;
}

TEST_F(EmulatorControl, ServesHttpsWithTheGivenCertificate) {
    if (std::system("openssl version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl CLI";
    genesis_test::temp_dir pki;
    ASSERT_TRUE(make_test_pki(pki.path()));
    emu::emulator_options options;
    options.tls_cert = pki / "server.crt";
    options.tls_key = pki / "server.key";
    start(options);
    EXPECT_EQ(emulator_->api_url(), "https://127.0.0.1:" + std::to_string(port_));

    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.load_verify_file((pki / "ca.crt").string());
    ctx.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
    stream.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
    beast::get_lowest_layer(stream).expires_after(io_timeout);
    beast::get_lowest_layer(stream).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    boost::system::error_code ec;
    stream.handshake(asio::ssl::stream_base::client, ec);
    ASSERT_FALSE(ec) << ec.message();
    beast::flat_buffer buffer;
    auto req = make_request(http::verb::post, "/v2/sandboxes", R"({"templateID":"base"})", auth(), false);
    auto r = exchange(stream, req, buffer);
    ASSERT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.status(), 201);

    // A client that does not trust the test CA fails the handshake.
    asio::ssl::context untrusting(asio::ssl::context::tls_client);
    untrusting.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> other(io, untrusting);
    beast::get_lowest_layer(other).expires_after(io_timeout);
    beast::get_lowest_layer(other).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    other.handshake(asio::ssl::stream_base::client, ec);
    EXPECT_TRUE(ec);
}

TEST_F(EmulatorControl, TlsStartFailsWithAClearMessage) {
    emu::emulator_options options;
    options.tls_cert = "/nonexistent/server.crt";
    options.tls_key = "/nonexistent/server.key";
    asio::io_context io;
    emu::emulator e(io.get_executor(), options);
    std::string error;
    EXPECT_FALSE(e.start(error));
    EXPECT_NE(error.find("/nonexistent/server.crt"), std::string::npos) << error;
}

// ---- state folder and the options file ----------------------------------------------

TEST_F(EmulatorControl, SandboxFoldersLiveUnderTheStateDirAndAreRemoved) {
    genesis_test::temp_dir state;
    emu::emulator_options options;
    options.state_dir = state.path();
    start(options);
    auto id = create();
    EXPECT_TRUE(std::filesystem::is_directory(state / "sandboxes" / id / "home"));
    EXPECT_EQ(call(http::verb::delete_, "/sandboxes/" + id).status(), 204);
    EXPECT_FALSE(std::filesystem::exists(state / "sandboxes" / id));
}

TEST(EmulatorStateDir, AFolderOfItsOwnIsRemovedOnStop) {
    asio::io_context io;
    emu::emulator e(io.get_executor(), {});
    std::string error;
    ASSERT_TRUE(e.start(error)) << error;
    auto dir = e.state().sandboxes.state_dir();
    EXPECT_TRUE(std::filesystem::is_directory(dir / "sandboxes"));
    EXPECT_EQ(std::filesystem::status(dir).permissions() & std::filesystem::perms::all, std::filesystem::perms::owner_all);
    e.stop();
    EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(EmulatorOptions, LoadsAYamlFile) {
    genesis_test::temp_dir dir;
    genesis_test::write_file(dir / "emulator.yaml", R"(
host: 127.0.0.1
port: 0
api_key: e2b_abc123
domain: e2b.test
envd_version: 0.6.13
templates:
  py:
    python: /usr/bin/python3
    env: {A: "1"}
    internet: true
    cpu_count: 4
    memory_mb: 1024
latency_ms: 5
endpoint_latency_ms: {create: 10}
faults:
  - {endpoint: create, kind: status, status: 429, retry_after: 2, skip: 1, count: 2}
  - {endpoint: process.start, kind: cut_stream, after_events: 3}
  - {endpoint: "*", kind: reset, count: -1, probability: 0.02}
max_concurrent_sandboxes: 3
create_rate_per_second: 2.5
max_timeout_seconds: 3600
seed: 99
fake_entries:
  - {path: /home/user/results/../x, content: boo}
  - {path: /etc, type: directory}
)");
    emu::emulator_options o;
    ASSERT_EQ(emu::load_options_file(dir / "emulator.yaml", o), "");
    EXPECT_EQ(o.api_key, "e2b_abc123");
    EXPECT_EQ(o.domain, "e2b.test");
    ASSERT_EQ(o.templates.count("py"), 1u);
    EXPECT_EQ(o.templates["py"].cpu_count, 4);
    EXPECT_EQ(o.templates["py"].env.at("A"), "1");
    EXPECT_TRUE(o.templates["py"].internet);
    EXPECT_EQ(o.latency, 5ms);
    EXPECT_EQ(o.endpoint_latency.at("create"), 10ms);
    ASSERT_EQ(o.faults.size(), 3u);
    EXPECT_EQ(o.faults[0].retry_after, 2);
    EXPECT_EQ(o.faults[0].skip, 1);
    EXPECT_EQ(o.faults[0].probability, 1.0);
    EXPECT_EQ(o.faults[1].after_events, 3);
    EXPECT_DOUBLE_EQ(o.faults[2].probability, 0.02);
    EXPECT_EQ(o.seed, 99u);
    ASSERT_EQ(o.fake_entries.size(), 2u);
    EXPECT_EQ(o.fake_entries[0].path, "/home/user/results/../x");
    EXPECT_EQ(o.fake_entries[0].type, "file");
    EXPECT_EQ(o.fake_entries[0].content, "boo");
    EXPECT_EQ(o.fake_entries[1].type, "directory");
    EXPECT_EQ(o.max_concurrent_sandboxes, 3);
    EXPECT_DOUBLE_EQ(o.create_rate_per_second, 2.5);
    EXPECT_EQ(o.max_timeout_seconds, 3600);
}

TEST(EmulatorOptions, ErrorsNameTheKey) {
    genesis_test::temp_dir dir;
    auto error_for = [&](const std::string& yaml) {
        genesis_test::write_file(dir / "bad.yaml", yaml);
        emu::emulator_options o;
        return emu::load_options_file(dir / "bad.yaml", o);
    };
    EXPECT_NE(error_for("port: 70000\n").find("'port'"), std::string::npos);
    EXPECT_NE(error_for("templates: {py: {cpu_count: two}}\n").find("'templates.py.cpu_count'"), std::string::npos);
    EXPECT_NE(error_for("faults: [{endpoint: create, kind: explode}]\n").find("'faults[0]'"), std::string::npos);
    EXPECT_NE(error_for("faults: [{kind: reset}]\n").find("'faults[0].endpoint'"), std::string::npos);
    EXPECT_NE(error_for("latency: 5\n").find("'latency'"), std::string::npos);
    EXPECT_NE(error_for("faults: [{endpoint: get, probability: 0}]\n").find("'probability' must be in (0, 1]"),
              std::string::npos);
    EXPECT_NE(error_for("fake_entries: [{path: /x, type: fifo}]\n").find("'fake_entries[0].type'"),
              std::string::npos);
    EXPECT_NE(error_for("fake_entries: [{type: file}]\n").find("'fake_entries[0].path'"), std::string::npos);
    EXPECT_NE(error_for("envd_version: latest\n").find("'envd_version'"), std::string::npos);
    EXPECT_NE(error_for("port: [\n").find("bad.yaml"), std::string::npos);
    emu::emulator_options o;
    EXPECT_NE(emu::load_options_file(dir / "missing.yaml", o).find("cannot read"), std::string::npos);
}

}  // namespace

#endif  // __has_include("emulator.hpp")
