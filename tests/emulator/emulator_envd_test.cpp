// emulator_envd_test.cpp - genesis_e2b_emulator's envd side: /files, Connect
// RPCs (process and filesystem), access tokens, and sandbox isolation with
// bubblewrap. The emulator runs in-process on its own io_context thread; the
// test talks to it over loopback with a small Beast client.
//
// Built only when the emulator library is linked in (GENESIS_LAUNCH_BUILD_EMULATOR).
#if __has_include("emulator.hpp")

#include "emulator.hpp"
#include "envd.hpp"
#include "sandbox_runtime.hpp"
#include "emulator_fixture.hpp"
#include "test_support.hpp"

#include "e2b/connect_codec.hpp"  // the client's codec reads the emulator's bytes: each checks the other

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <thread>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace emu = genesis::e2b_emulator;
namespace codec = genesis::launch::detail::e2b;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using header_list = std::vector<std::pair<std::string, std::string>>;

constexpr auto io_limit = 20s;

// ---- a loopback client: async Beast operations run to completion on a private io_context ----

struct reply {
    error_code ec;
    http::response<http::string_body> res;
    int status() const { return res.result_int(); }
    json::object json_body() const { return json::parse(res.body()).as_object(); }
    std::string header(std::string_view name) const {
        auto it = res.find(name);
        return it == res.end() ? std::string() : std::string(it->value());
    }
};

// Runs the operation `start` launched until it completes (the stream's expiry bounds it).
template <class Start>
error_code run_op(asio::io_context& io, Start start) {
    error_code result;
    start([&result](error_code ec, std::size_t) { result = ec; });
    io.restart();
    io.run();
    return result;
}

http::request<http::string_body> make_request(http::verb verb, const std::string& target, std::string body,
                                              const header_list& headers) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
}

reply exchange(unsigned short port, http::request<http::string_body> req) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    reply r;
    stream.expires_after(io_limit);
    r.ec = run_op(io, [&](auto handler) {
        stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                             [handler](error_code ec) mutable { handler(ec, 0); });
    });
    if (r.ec) return r;
    stream.expires_after(io_limit);
    r.ec = run_op(io, [&](auto handler) { http::async_write(stream, req, handler); });
    if (r.ec) return r;
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u * 1024 * 1024);
    stream.expires_after(io_limit);
    r.ec = run_op(io, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
    r.res = parser.release();
    return r;
}

// A Connect server stream read incrementally: frames as they arrive.
class rpc_stream {
public:
    struct frame {
        bool end_stream = false;
        json::object message;
    };

    rpc_stream(unsigned short port, http::request<http::string_body> req) : stream_(io_) {
        stream_.expires_after(io_limit);
        ec_ = run_op(io_, [&](auto handler) {
            stream_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                  [handler](error_code ec) mutable { handler(ec, 0); });
        });
        if (!ec_) ec_ = run_op(io_, [&](auto handler) { http::async_write(stream_, req, handler); });
        parser_.body_limit(boost::none);
        if (!ec_) ec_ = run_op(io_, [&](auto handler) { http::async_read_header(stream_, buffer_, parser_, handler); });
    }

    int status() const { return ec_ && !parser_.is_header_done() ? 0 : parser_.get().result_int(); }
    std::string content_type() const { return std::string(parser_.get()[http::field::content_type]); }
    const error_code& error() const { return ec_; }

    // The next frame within `limit`; nullopt on timeout, end of body or a transport error.
    std::optional<frame> next(std::chrono::steady_clock::duration limit = io_limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (auto e = decoder_.next()) {
                frame f;
                f.end_stream = e->end_stream();
                f.message = json::parse(e->payload).as_object();
                return f;
            }
            if (decoder_.failed() || ec_ || parser_.is_done() || std::chrono::steady_clock::now() >= deadline)
                return std::nullopt;
            read_some(deadline - std::chrono::steady_clock::now());
        }
    }

    void close() {
        error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

private:
    void read_some(std::chrono::steady_clock::duration limit) {
        char buf[16 * 1024];
        parser_.get().body().data = buf;
        parser_.get().body().size = sizeof buf;
        stream_.expires_after(limit);
        auto ec = run_op(io_, [&](auto handler) { http::async_read_some(stream_, buffer_, parser_, handler); });
        if (ec == http::error::need_buffer) ec = {};
        if (ec == beast::error::timeout) ec = {};  // the caller's deadline decides
        ec_ = ec;
        decoder_.feed(std::string_view(buf, sizeof buf - parser_.get().body().size));
    }

    asio::io_context io_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    http::response_parser<http::buffer_body> parser_;
    codec::envelope_decoder decoder_;
    error_code ec_;
};

// What a Start/Connect stream delivered, read to its end.
struct run_result {
    int http_status = 0;
    std::optional<std::uint32_t> pid;
    std::string out, err;
    std::optional<json::object> end;                // the end event
    std::optional<codec::end_stream_message> tail;  // the end-stream frame
    int keepalives = 0;
    int events = 0;
    std::size_t largest_data = 0;
    bool start_first = false;

    std::optional<std::string> error_code() const {
        if (tail && tail->error) return tail->error->code;
        return std::nullopt;
    }
};

// Applies one event to `r`.
void absorb(run_result& r, const json::object& message) {
    const auto& event = message.at("event").as_object();
    ++r.events;
    if (event.contains("start")) {
        if (r.events == 1) r.start_first = true;
        r.pid = event.at("start").at("pid").to_number<std::uint32_t>();
    } else if (event.contains("data")) {
        const auto& data = event.at("data").as_object();
        for (const auto& [stream, b64] : data) {
            auto bytes = codec::base64_decode(b64.as_string());
            EXPECT_TRUE(bytes) << "data is not base64";
            if (!bytes) continue;
            r.largest_data = std::max(r.largest_data, bytes->size());
            (stream == "stdout" ? r.out : r.err) += *bytes;
        }
    } else if (event.contains("keepalive")) {
        ++r.keepalives;
    } else if (event.contains("end")) {
        r.end = event.at("end").as_object();
    }
}

run_result read_to_end(rpc_stream& s, run_result r = {}) {
    r.http_status = s.status();
    while (auto f = s.next()) {
        if (f->end_stream) {
            r.tail = codec::parse_end_stream(json::serialize(f->message));
            break;
        }
        absorb(r, f->message);
    }
    return r;
}

std::string envelope_of(const json::object& message) { return codec::encode_envelope(json::serialize(message)); }

// A StartRequest for /bin/bash -l -c <cmd>, like the SDK's commands.run.
json::object bash_request(const std::string& command, const json::object& envs = {}, const std::string& cwd = {},
                          bool stdin_open = false) {
    json::object process;
    process["cmd"] = "/bin/bash";
    process["args"] = json::array{"-l", "-c", command.c_str()};
    if (!envs.empty()) process["envs"] = envs;
    if (!cwd.empty()) process["cwd"] = cwd;
    json::object req;
    req["process"] = std::move(process);
    req["stdin"] = stdin_open;
    return req;
}

std::string sha256_b64_raw(const std::string& text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
    auto b64 = codec::base64_encode(std::string_view(reinterpret_cast<const char*>(md), len));
    while (!b64.empty() && b64.back() == '=') b64.pop_back();
    return b64;
}

// Percent-encodes a query parameter value.
std::string query_escape(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

std::string random_token(std::size_t n = 12) {
    static std::mt19937_64 rng{std::random_device{}()};
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += alphabet[rng() % 36];
    return s;
}

bool bubblewrap_works() {
    return emu::check_bubblewrap().empty() &&
           std::system("bwrap --ro-bind / / --unshare-pid --proc /proc --dev /dev true >/dev/null 2>&1") == 0;
}

// ---- fixture ------------------------------------------------------------------------

struct sandbox_ref {
    std::string id;
    std::string token;
};

class EmulatorEnvd : public ::testing::Test {
protected:
    void SetUp() override {
        if (!bubblewrap_works()) GTEST_SKIP() << "bubblewrap cannot create sandboxes here";
        start({});
    }

    void start(emu::emulator_options options) {
        emulator_ = std::make_unique<emu::emulator>(io_.get_executor(), std::move(options));
        std::string error;
        ASSERT_TRUE(emulator_->start(error)) << error;
        port_ = emulator_->port();
        thread_ = std::thread([this] { io_.run(); });
    }

    // Replaces the running emulator with one built from `options`.
    void restart(emu::emulator_options options) {
        TearDown();
        io_.restart();
        start(std::move(options));
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

    // Runs `f` on the emulator's thread and returns its result.
    template <class F>
    auto on_io(F f) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto result = task.get_future();
        asio::post(io_, [&task] { task(); });
        return result.get();
    }

    sandbox_ref create(const json::object& env_vars = {}, bool internet = false) {
        json::object body;
        body["templateID"] = "base";
        if (!env_vars.empty()) body["envVars"] = env_vars;
        if (internet) body["allow_internet_access"] = true;
        auto r = exchange(port_, make_request(http::verb::post, "/v2/sandboxes", json::serialize(body),
                                              {{"X-API-Key", emulator_->api_key()},
                                               {"Content-Type", "application/json"}}));
        EXPECT_EQ(r.status(), 201) << r.res.body();
        if (r.status() != 201) return {};
        auto sb = r.json_body();
        return {std::string(sb.at("sandboxID").as_string()), std::string(sb.at("envdAccessToken").as_string())};
    }

    fs::path host_home(const sandbox_ref& sb) {
        return on_io([&] {
            auto s = emulator_->state().sandboxes.find(sb.id);
            return s ? s->home() : fs::path();
        });
    }

    header_list envd_headers(const sandbox_ref& sb, bool with_token = true) const {
        header_list h{{"E2b-Sandbox-Id", sb.id}, {"E2b-Sandbox-Port", "49983"}};
        if (with_token) h.emplace_back("X-Access-Token", sb.token);
        return h;
    }

    reply envd(const sandbox_ref& sb, http::verb verb, const std::string& target, std::string body = {},
               header_list extra = {}, bool with_token = true) {
        auto h = envd_headers(sb, with_token);
        h.insert(h.end(), extra.begin(), extra.end());
        return exchange(port_, make_request(verb, target, std::move(body), h));
    }

    reply unary(const sandbox_ref& sb, const std::string& method, const json::object& message,
                bool with_token = true) {
        return envd(sb, http::verb::post, "/" + method, json::serialize(message),
                    {{"Content-Type", "application/json"}, {"Connect-Protocol-Version", "1"}}, with_token);
    }

    std::unique_ptr<rpc_stream> open_stream(const sandbox_ref& sb, const std::string& method,
                                            const json::object& message, header_list extra = {}) {
        auto h = envd_headers(sb);
        h.emplace_back("Content-Type", "application/connect+json");
        h.emplace_back("Connect-Protocol-Version", "1");
        h.insert(h.end(), extra.begin(), extra.end());
        return std::make_unique<rpc_stream>(port_, make_request(http::verb::post, "/" + method,
                                                                envelope_of(message), h));
    }

    run_result run(const sandbox_ref& sb, const json::object& start_request, header_list extra = {}) {
        auto s = open_stream(sb, "process.Process/Start", start_request, std::move(extra));
        return read_to_end(*s);
    }

    run_result bash(const sandbox_ref& sb, const std::string& command, const json::object& envs = {},
                    const std::string& cwd = {}) {
        return run(sb, bash_request(command, envs, cwd));
    }

    reply upload_raw(const sandbox_ref& sb, const std::string& path, std::string data) {
        return envd(sb, http::verb::post, "/files?path=" + path, std::move(data),
                    {{"Content-Type", "application/octet-stream"}});
    }

    reply download(const sandbox_ref& sb, const std::string& path) {
        return envd(sb, http::verb::get, "/files?path=" + path);
    }

    asio::io_context io_;
    std::unique_ptr<emu::emulator> emulator_;
    std::thread thread_;
    unsigned short port_ = 0;
};

std::string multipart(const std::string& boundary, const std::vector<std::pair<std::string, std::string>>& files) {
    std::string body;
    for (const auto& [filename, data] : files) {
        body += "--" + boundary + "\r\n";
        body += "Content-Disposition: form-data; name=\"file\"; filename=\"" + filename + "\"\r\n";
        body += "Content-Type: application/octet-stream\r\n\r\n";
        body += data + "\r\n";
    }
    return body + "--" + boundary + "--\r\n";
}

void expect_envd_error(const reply& r, int status, const std::string& message) {
    EXPECT_EQ(r.status(), status) << r.res.body();
    auto body = r.json_body();
    EXPECT_EQ(body.at("code").to_number<int>(), status);
    EXPECT_EQ(std::string(body.at("message").as_string()), message);
}

std::vector<std::string> entry_paths(const reply& list_dir) {
    std::vector<std::string> paths;
    const auto body = list_dir.json_body();
    for (const auto& e : body.at("entries").as_array()) paths.emplace_back(e.at("path").as_string());
    return paths;
}

void expect_connect_error(const reply& r, int status, const std::string& code, const std::string& message_part) {
    EXPECT_EQ(r.status(), status) << r.res.body();
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    auto e = codec::parse_error_body(r.res.body());
    ASSERT_TRUE(e) << r.res.body();
    EXPECT_EQ(e->code, code);
    EXPECT_NE(e->message.find(message_part), std::string::npos) << e->message;
}

// ---- /health and /files ----------------------------------------------------------------

TEST_F(EmulatorEnvd, HealthAnswers204WithoutToken) {
    auto sb = create();
    auto r = envd(sb, http::verb::get, "/health", {}, {}, false);
    EXPECT_EQ(r.status(), 204);
    EXPECT_TRUE(r.res.body().empty());
}

TEST_F(EmulatorEnvd, UploadsMultipartAndOctetStreamAndDownloads) {
    auto sb = create();
    const std::string boundary = "----genesis" + random_token();
    const header_list form{{"Content-Type", "multipart/form-data; boundary=" + boundary}};

    // One part, destination from the path parameter (like the SDK's files.write(path, data)).
    auto one = envd(sb, http::verb::post, "/files?path=%2Fhome%2Fuser%2Fwork%2Fevaluate.sh",
                    multipart(boundary, {{"/home/user/work/evaluate.sh", "echo hi\n"}}), form);
    ASSERT_EQ(one.status(), 200) << one.res.body();
    EXPECT_EQ(json::serialize(json::parse(one.res.body())),
              R"([{"path":"/home/user/work/evaluate.sh","name":"evaluate.sh","type":"file"}])");

    // Several parts without `path`: each filename is its destination; relative -> home.
    auto many = envd(sb, http::verb::post, "/files",
                     multipart(boundary, {{"work/b.bin", "BBB"}, {"/home/user/c.txt", "CCC"}, {"/tmp/t.txt", "TTT"}}),
                     form);
    ASSERT_EQ(many.status(), 200) << many.res.body();
    auto entries = json::parse(many.res.body()).as_array();
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[0].at("path").as_string(), "/home/user/work/b.bin");
    EXPECT_EQ(entries[1].at("path").as_string(), "/home/user/c.txt");
    EXPECT_EQ(entries[2].at("path").as_string(), "/tmp/t.txt");

    // Duplicate destinations are refused before anything is written.
    auto dup = envd(sb, http::verb::post, "/files", multipart(boundary, {{"d.txt", "1"}, {"/home/user/d.txt", "2"}}),
                    form);
    EXPECT_EQ(dup.status(), 400);
    EXPECT_EQ(download(sb, "d.txt").status(), 404);

    // Raw body; overwrites; parents created.
    ASSERT_EQ(upload_raw(sb, "work/evaluate.sh", "echo replaced\n").status(), 200);
    EXPECT_EQ(upload_raw(sb, "", "x").status(), 400);  // path required

    auto got = download(sb, "/home/user/work/evaluate.sh");
    ASSERT_EQ(got.status(), 200);
    EXPECT_EQ(got.res.body(), "echo replaced\n");
    EXPECT_EQ(got.header("Content-Length"), "14");
    EXPECT_EQ(got.header("Content-Disposition"), "inline; filename=evaluate.sh");
    EXPECT_EQ(download(sb, "~/work/b.bin").res.body(), "BBB");
    EXPECT_EQ(download(sb, "/tmp/t.txt").res.body(), "TTT");

    // The files are where the sandbox's processes see them.
    auto seen = bash(sb, "cat /home/user/c.txt work/b.bin /tmp/t.txt");
    EXPECT_EQ(seen.out, "CCCBBBTTT");
    EXPECT_TRUE(fs::exists(host_home(sb) / "work" / "b.bin"));

    // Errors.
    expect_envd_error(download(sb, "/home/user/missing.txt"), 404, "path '/home/user/missing.txt' does not exist");
    expect_envd_error(download(sb, "work"), 400, "path '/home/user/work' is a directory");
    EXPECT_EQ(upload_raw(sb, "work", "x").status(), 400);  // a directory is there

    // An empty file.
    ASSERT_EQ(upload_raw(sb, "empty", "").status(), 200);
    auto empty = download(sb, "empty");
    EXPECT_EQ(empty.status(), 200);
    EXPECT_EQ(empty.header("Content-Length"), "0");
    EXPECT_TRUE(empty.res.body().empty());
}

TEST_F(EmulatorEnvd, FiveMiBBinaryRoundTripIsByteExact) {
    auto sb = create();
    std::string data(5 * 1024 * 1024, '\0');
    std::mt19937 rng(42);
    for (auto& c : data) c = static_cast<char>(rng() & 0xff);
    ASSERT_EQ(upload_raw(sb, "big/blob.bin", data).status(), 200);
    auto got = download(sb, "big/blob.bin");
    ASSERT_EQ(got.status(), 200);
    EXPECT_EQ(got.res.body().size(), data.size());
    EXPECT_TRUE(got.res.body() == data);
    auto size = bash(sb, "stat -c %s big/blob.bin");
    EXPECT_EQ(size.out, std::to_string(data.size()) + "\n");
}

TEST_F(EmulatorEnvd, GzipUploadsAreInflated) {
    auto sb = create();
    genesis_test::temp_dir dir;
    std::string data(200000, '\0');
    std::mt19937 rng(7);
    for (auto& c : data) c = static_cast<char>('a' + rng() % 4);  // compressible
    genesis_test::write_file(dir / "a", data.substr(0, 120000));
    genesis_test::write_file(dir / "b", data.substr(120000));
    const std::string cmd = "cd '" + dir.path().string() + "' && gzip -c a > ab.gz && gzip -c b >> ab.gz";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    const std::string gz = genesis_test::read_file(dir / "ab.gz");  // two members
    ASSERT_LT(gz.size(), data.size());

    auto up = envd(sb, http::verb::post, "/files?path=z.bin", gz,
                   {{"Content-Type", "application/octet-stream"}, {"Content-Encoding", "gzip"}});
    ASSERT_EQ(up.status(), 200) << up.res.body();
    EXPECT_TRUE(download(sb, "z.bin").res.body() == data);

    std::string broken = gz;
    broken[broken.size() / 2] ^= 0x55;
    auto bad = envd(sb, http::verb::post, "/files?path=bad.bin", broken,
                    {{"Content-Type", "application/octet-stream"}, {"Content-Encoding", "gzip"}});
    EXPECT_EQ(bad.status(), 400);
    auto br = envd(sb, http::verb::post, "/files?path=br.bin", "x",
                   {{"Content-Type", "application/octet-stream"}, {"Content-Encoding", "br"}});
    EXPECT_EQ(br.status(), 400);
}

TEST_F(EmulatorEnvd, SignedUrlsFindTheirSandbox) {
    auto a = create();
    auto b = create();
    const std::string sig = "v1_" + sha256_b64_raw("/home/user/s.txt:write::" + b.token);
    auto request = make_request(http::verb::post, "/files?path=%2Fhome%2Fuser%2Fs.txt&signature=" + query_escape(sig),
                                "signed", {{"Content-Type", "application/octet-stream"}});
    auto found = on_io([&] { return emu::find_sandbox_by_signature(emulator_->state(), request); });
    ASSERT_TRUE(found);
    EXPECT_EQ(found->id, b.id);
    auto unsigned_request = make_request(http::verb::get, "/files?path=x", {}, {});
    EXPECT_FALSE(on_io([&] { return emu::find_sandbox_by_signature(emulator_->state(), unsigned_request); }));
}

TEST_F(EmulatorEnvd, FilesNeedTheTokenOrASignature) {
    auto sb = create();
    ASSERT_EQ(upload_raw(sb, "f.txt", "data").status(), 200);

    auto wrong = envd(sb, http::verb::get, "/files?path=f.txt", {}, {{"X-Access-Token", "nope"}}, false);
    expect_envd_error(wrong, 401, "access token present in header but does not match");
    auto none = envd(sb, http::verb::get, "/files?path=f.txt", {}, {}, false);
    expect_envd_error(none, 401, "missing signature query parameter");

    // v1_ + base64(sha256("<path>:<read|write>:<username>:<token>[:<expiration>]")), no padding.
    const std::string sig = "v1_" + sha256_b64_raw("f.txt:read::" + sb.token);
    auto signed_read = envd(sb, http::verb::get, "/files?path=f.txt&signature=" + query_escape(sig), {}, {}, false);
    EXPECT_EQ(signed_read.status(), 200);
    EXPECT_EQ(signed_read.res.body(), "data");

    const std::string expired_at = "1000";
    const std::string expired_sig = "v1_" + sha256_b64_raw("f.txt:read::" + sb.token + ":" + expired_at);
    auto expired = envd(sb, http::verb::get,
                        "/files?path=f.txt&signature=" + query_escape(expired_sig) + "&signature_expiration=" + expired_at, {}, {},
                        false);
    expect_envd_error(expired, 401, "signature is already expired");

    const std::string write_sig = "v1_" + sha256_b64_raw("g.txt:write::" + sb.token);
    auto signed_write = envd(sb, http::verb::post, "/files?path=g.txt&signature=" + query_escape(write_sig), "G",
                             {{"Content-Type", "application/octet-stream"}}, false);
    EXPECT_EQ(signed_write.status(), 200);
}

TEST_F(EmulatorEnvd, RpcsNeedTheAccessToken) {
    auto sb = create();
    const std::string unauthorized =
        "unauthorized access, please provide a valid access token or method signing if supported";
    expect_envd_error(unary(sb, "process.Process/List", {}, false), 401, unauthorized);
    auto wrong = envd(sb, http::verb::post, "/filesystem.Filesystem/Stat", R"({"path":"/home/user"})",
                      {{"Content-Type", "application/json"}, {"X-Access-Token", sb.token + "x"}}, false);
    expect_envd_error(wrong, 401, unauthorized);
    EXPECT_EQ(unary(sb, "process.Process/List", {}).status(), 200);
}

// ---- process.Process ----------------------------------------------------------------

TEST_F(EmulatorEnvd, StartStreamsOutputWithEnvironmentAndCwd) {
    json::object create_env;
    create_env["SB_A"] = "from-create";
    create_env["SB_B"] = "from-create";
    auto sb = create(create_env);
    ASSERT_EQ(upload_raw(sb, "work/x", "").status(), 200);

    json::object envs;
    envs["SB_B"] = "from-request";
    auto r = bash(sb, "echo $E2B_SANDBOX $SB_A $SB_B $HOME $USER; echo \"$E2B_SANDBOX_ID\"; pwd; echo oops >&2",
                  envs, "/home/user/work");
    EXPECT_EQ(r.http_status, 200);
    EXPECT_TRUE(r.start_first);
    ASSERT_TRUE(r.pid);
    EXPECT_EQ(r.out, "true from-create from-request /home/user user\n" + sb.id + "\n/home/user/work\n");
    EXPECT_EQ(r.err, "oops\n");
    ASSERT_TRUE(r.end);
    EXPECT_EQ(json::serialize(*r.end), R"({"exited":true,"status":"exit status 0"})");
    ASSERT_TRUE(r.tail);
    EXPECT_FALSE(r.tail->error);

    // Relative and ~ cwd resolve against /home/user.
    EXPECT_EQ(bash(sb, "pwd", {}, "work").out, "/home/user/work\n");
    EXPECT_EQ(bash(sb, "pwd", {}, "~").out, "/home/user\n");
}

TEST_F(EmulatorEnvd, TemplateThenCreateThenRequestEnvironment) {
    emu::emulator_options o;
    emu::template_spec base;
    base.name = "base";
    base.env = {{"LAYER_T", "template"}, {"LAYER_C", "template"}, {"LAYER_R", "template"}};
    o.templates["base"] = base;
    restart(o);
    json::object create_env;
    create_env["LAYER_C"] = "create";
    create_env["LAYER_R"] = "create";
    auto sb = create(create_env);
    json::object envs;
    envs["LAYER_R"] = "request";
    auto r = bash(sb, "echo $LAYER_T $LAYER_C $LAYER_R", envs);
    EXPECT_EQ(r.out, "template create request\n") << r.err;
}

TEST_F(EmulatorEnvd, CutStreamFaultDropsTheConnectionButNotTheProcess) {
    emu::emulator_options o;
    emu::fault_rule cut;
    cut.endpoint = "process.start";
    cut.kind = "cut_stream";
    cut.after_events = 2;
    o.faults.push_back(cut);
    restart(o);
    auto sb = create();
    auto s = open_stream(sb, "process.Process/Start", bash_request("echo one; sleep 0.5; echo two > after.txt"));
    auto r = read_to_end(*s);
    EXPECT_TRUE(r.start_first);
    EXPECT_EQ(r.events, 2);  // start, then the first output
    EXPECT_EQ(r.out, "one\n");
    EXPECT_FALSE(r.end);
    EXPECT_FALSE(r.tail);  // no end-stream frame: the connection was reset
    EXPECT_TRUE(genesis_test::eventually([&] { return download(sb, "after.txt").res.body() == "two\n"; }, 10s));
    // The budget is spent: the next Start is whole.
    EXPECT_EQ(bash(sb, "echo ok").out, "ok\n");
}

TEST_F(EmulatorEnvd, LargeOutputIsSplitIntoChunksOfAtMost32KiB) {
    auto sb = create();
    auto r = bash(sb, "head -c 300000 /dev/zero | tr '\\0' 'a'");
    EXPECT_EQ(r.out.size(), 300000u);
    EXPECT_EQ(r.out.find_first_not_of('a'), std::string::npos);
    EXPECT_LE(r.largest_data, 32u * 1024);
    EXPECT_GT(r.largest_data, 0u);
}

TEST_F(EmulatorEnvd, EndEventsForExitCodesSignalsAndMissingCommands) {
    auto sb = create();
    auto three = bash(sb, "exit 3");
    ASSERT_TRUE(three.end);
    EXPECT_EQ(json::serialize(*three.end),
              R"({"exitCode":3,"exited":true,"status":"exit status 3","error":"exit status 3"})");

    auto killed = bash(sb, "kill -9 $$");
    ASSERT_TRUE(killed.end);
    EXPECT_EQ(json::serialize(*killed.end), R"({"exitCode":-1,"status":"signal: killed","error":"signal: killed"})");

    // Executed verbatim through /bin/sh -c 'exec "$@"': a missing command starts, then exits 127.
    json::object missing;
    missing["process"] = json::object{{"cmd", "no-such-command-" + random_token()}};
    auto r = run(sb, missing);
    EXPECT_TRUE(r.start_first);
    ASSERT_TRUE(r.end);
    EXPECT_EQ(r.end->at("exitCode").to_number<int>(), 127);
    EXPECT_EQ(r.end->at("status").as_string(), "exit status 127");

    // A missing cwd: no start event, an invalid_argument end-stream error.
    auto bad_cwd = bash(sb, "pwd", {}, "/home/user/nowhere");
    EXPECT_EQ(bad_cwd.http_status, 200);
    EXPECT_EQ(bad_cwd.events, 0);
    EXPECT_EQ(bad_cwd.error_code(), "invalid_argument");
    EXPECT_EQ(bad_cwd.tail->error->message, "cwd '/home/user/nowhere' does not exist");

    // Not a valid enveloped request.
    auto h = envd_headers(sb);
    h.emplace_back("Content-Type", "application/connect+json");
    rpc_stream garbage(port_, make_request(http::verb::post, "/process.Process/Start", "{}", h));
    EXPECT_EQ(read_to_end(garbage).error_code(), "invalid_argument");
}

TEST_F(EmulatorEnvd, DeadlineKillsTheWholeProcessTree) {
    auto sb = create();
    const std::string marker = "genesis-deadline-" + random_token();
    const auto started = std::chrono::steady_clock::now();
    // A grandchild too: everything in the sandbox must go.
    auto r = run(sb, bash_request("sleep 600 & sleep 600; : " + marker), {{"Connect-Timeout-Ms", "1500"}});
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(r.start_first);
    EXPECT_FALSE(r.end);  // no end event, only the end-stream error
    ASSERT_TRUE(r.tail && r.tail->error);
    EXPECT_EQ(r.tail->error->code, "deadline_exceeded");
    EXPECT_EQ(r.tail->error->message, "context deadline exceeded");
    EXPECT_GE(elapsed, 1400ms);
    EXPECT_LT(elapsed, 15s);
    EXPECT_TRUE(genesis_test::eventually([&] { return genesis_test::processes_mentioning(marker, true).empty(); }, 10s));
    EXPECT_TRUE(genesis_test::eventually([&] { return genesis_test::processes_mentioning("E2B_SANDBOX_ID=" + sb.id, true).empty(); }, 10s));

    // Garbage in the header is refused.
    auto bad = run(sb, bash_request("true"), {{"Connect-Timeout-Ms", "soon"}});
    EXPECT_EQ(bad.error_code(), "invalid_argument");
}

TEST_F(EmulatorEnvd, ListSendSignalAndTags) {
    auto sb = create();
    json::object envs;
    envs["K"] = "v";
    auto start = bash_request("sleep 600", envs, "/tmp");
    start["tag"] = "sleeper";
    auto s = open_stream(sb, "process.Process/Start", start);
    run_result r;
    auto first = s->next();
    ASSERT_TRUE(first && !first->end_stream);
    absorb(r, first->message);
    ASSERT_TRUE(r.pid);

    auto list = unary(sb, "process.Process/List", {});
    ASSERT_EQ(list.status(), 200) << list.res.body();
    EXPECT_EQ(list.header("Content-Type"), "application/json");
    auto processes = list.json_body().at("processes").as_array();
    ASSERT_EQ(processes.size(), 1u);
    const auto& info = processes[0].as_object();
    EXPECT_EQ(info.at("pid").to_number<std::uint32_t>(), *r.pid);
    EXPECT_EQ(info.at("tag").as_string(), "sleeper");
    EXPECT_EQ(info.at("config").at("cmd").as_string(), "/bin/bash");
    EXPECT_EQ(json::serialize(info.at("config").at("args")), R"(["-l","-c","sleep 600"])");
    EXPECT_EQ(info.at("config").at("envs").at("K").as_string(), "v");
    EXPECT_EQ(info.at("config").at("cwd").as_string(), "/tmp");

    // Only SIGTERM and SIGKILL; unknown processes are not_found.
    json::object bad_signal;
    bad_signal["process"] = json::object{{"pid", *r.pid}};
    bad_signal["signal"] = "SIGNAL_SIGINT";
    expect_connect_error(unary(sb, "process.Process/SendSignal", bad_signal), 501, "unimplemented", "");
    json::object unknown;
    unknown["process"] = json::object{{"pid", 4000000}};
    unknown["signal"] = "SIGNAL_SIGKILL";
    expect_connect_error(unary(sb, "process.Process/SendSignal", unknown), 404, "not_found",
                         "process with pid 4000000 not found");

    // SIGTERM by tag (enum as a number).
    json::object term;
    term["process"] = json::object{{"tag", "sleeper"}};
    term["signal"] = 15;
    auto sent = unary(sb, "process.Process/SendSignal", term);
    EXPECT_EQ(sent.status(), 200) << sent.res.body();
    EXPECT_EQ(sent.res.body(), "{}");
    r = read_to_end(*s, r);
    ASSERT_TRUE(r.end);
    EXPECT_EQ(json::serialize(*r.end),
              R"({"exitCode":-1,"status":"signal: terminated","error":"signal: terminated"})");
    EXPECT_TRUE(unary(sb, "process.Process/List", {}).json_body().at("processes").as_array().empty());

    // SIGTERM reaches the command itself, which may handle it.
    auto graceful = open_stream(sb, "process.Process/Start",
                                bash_request("trap 'exit 7' TERM; echo ready; sleep 600 & wait"));
    run_result g;
    while (g.out.empty()) {  // the trap is set once "ready" arrives
        auto f = graceful->next();
        ASSERT_TRUE(f && !f->end_stream);
        absorb(g, f->message);
    }
    ASSERT_TRUE(g.pid);
    json::object term_pid;
    term_pid["process"] = json::object{{"pid", std::to_string(*g.pid)}};  // uint32 as a string is accepted
    term_pid["signal"] = "SIGNAL_SIGTERM";
    EXPECT_EQ(unary(sb, "process.Process/SendSignal", term_pid).status(), 200);
    g = read_to_end(*graceful, g);
    ASSERT_TRUE(g.end);
    EXPECT_EQ(g.end->at("status").as_string(), "exit status 7");

    // SIGKILL as the SDK's kill() sends it.
    auto k = open_stream(sb, "process.Process/Start", bash_request("sleep 600"));
    run_result kr;
    auto k_first = k->next();
    ASSERT_TRUE(k_first);
    absorb(kr, k_first->message);
    json::object kill;
    kill["process"] = json::object{{"pid", *kr.pid}};
    kill["signal"] = "SIGNAL_SIGKILL";
    EXPECT_EQ(unary(sb, "process.Process/SendSignal", kill).status(), 200);
    kr = read_to_end(*k, kr);
    ASSERT_TRUE(kr.end);
    EXPECT_EQ(kr.end->at("status").as_string(), "signal: killed");
    EXPECT_EQ(kr.end->at("exitCode").to_number<int>(), -1);
}

TEST_F(EmulatorEnvd, StdinSendInputAndCloseStdin) {
    auto sb = create();
    json::object with_stdin;
    with_stdin["process"] = json::object{{"cmd", "cat"}};
    auto s = open_stream(sb, "process.Process/Start", with_stdin);  // stdin absent: a pipe
    run_result r;
    auto first = s->next();
    ASSERT_TRUE(first);
    absorb(r, first->message);
    ASSERT_TRUE(r.pid);

    json::object input;
    input["process"] = json::object{{"pid", *r.pid}};
    input["input"] = json::object{{"stdin", codec::base64_encode("hello\n")}};
    EXPECT_EQ(unary(sb, "process.Process/SendInput", input).status(), 200);
    auto echoed = s->next();
    ASSERT_TRUE(echoed);
    absorb(r, echoed->message);
    EXPECT_EQ(r.out, "hello\n");

    json::object close;
    close["process"] = json::object{{"pid", *r.pid}};
    EXPECT_EQ(unary(sb, "process.Process/CloseStdin", close).status(), 200);
    r = read_to_end(*s, r);
    ASSERT_TRUE(r.end);
    EXPECT_EQ(r.end->at("status").as_string(), "exit status 0");

    // stdin:false -> /dev/null: cat ends at once; input is refused.
    auto closed = bash(sb, "cat; echo done");
    EXPECT_EQ(closed.out, "done\n");
}

TEST_F(EmulatorEnvd, KeepalivesDuringSilence) {
    auto sb = create();
    auto r = run(sb, bash_request("sleep 2.5; echo late"), {{"Keepalive-Ping-Interval", "1"}});
    EXPECT_GE(r.keepalives, 1);
    EXPECT_EQ(r.out, "late\n");
    ASSERT_TRUE(r.end);
}

TEST_F(EmulatorEnvd, DisconnectKeepsTheProcessRunningAndConnectReattaches) {
    auto sb = create();
    auto s = open_stream(sb, "process.Process/Start",
                         bash_request("for i in $(seq 1 30); do echo $i; sleep 0.1; done; echo finished > after.txt"));
    run_result r;
    auto first = s->next();
    ASSERT_TRUE(first);
    absorb(r, first->message);
    ASSERT_TRUE(r.pid);
    s->close();  // the client goes away

    json::object connect;
    connect["process"] = json::object{{"pid", *r.pid}};
    auto c = open_stream(sb, "process.Process/Connect", connect);
    auto attached = read_to_end(*c);
    EXPECT_TRUE(attached.start_first);
    EXPECT_EQ(attached.pid, r.pid);
    ASSERT_TRUE(attached.end);
    EXPECT_EQ(attached.end->at("status").as_string(), "exit status 0");
    EXPECT_NE(attached.out.find("30\n"), std::string::npos);
    EXPECT_EQ(download(sb, "after.txt").res.body(), "finished\n");

    // After the exit, a late Connect still gets start + end.
    auto late = open_stream(sb, "process.Process/Connect", connect);
    auto again = read_to_end(*late);
    EXPECT_TRUE(again.start_first);
    ASSERT_TRUE(again.end);

    json::object unknown;
    unknown["process"] = json::object{{"pid", 4000000}};
    auto missing = open_stream(sb, "process.Process/Connect", unknown);
    auto gone = read_to_end(*missing);
    EXPECT_EQ(gone.error_code(), "not_found");
}

TEST_F(EmulatorEnvd, LoginShellFindsTheTemplatePythonAndOfflinePip) {
    auto sb = create();
    auto r = bash(sb, "command -v python python3 pip; python -c 'import numpy, sys; print(sys.executable)'");
    EXPECT_EQ(r.out, "/opt/e2b/bin/python\n/opt/e2b/bin/python3\n/opt/e2b/bin/pip\n/usr/bin/python3\n") << r.err;

    auto ok = bash(sb, "pip install -q numpy && pip install 'numpy>=1.0' && python -m pip install numpy");
    EXPECT_EQ(ok.end->at("status").as_string(), "exit status 0") << ok.err;
    EXPECT_NE(ok.out.find("Requirement already satisfied: numpy"), std::string::npos) << ok.out;

    auto missing = bash(sb, "pip install surely-not-installed-" + random_token());
    EXPECT_EQ(missing.end->at("exitCode").to_number<int>(), 1);
    EXPECT_NE(missing.err.find("Could not find a version that satisfies the requirement"), std::string::npos);

    auto version = bash(sb, "pip --version");
    EXPECT_EQ(version.end->at("status").as_string(), "exit status 0");
    EXPECT_NE(version.out.find("pip"), std::string::npos);
}

// ---- filesystem.Filesystem ------------------------------------------------------------

TEST_F(EmulatorEnvd, FilesystemRpcs) {
    auto sb = create();
    ASSERT_EQ(upload_raw(sb, "dir/file.txt", "hello").status(), 200);

    json::object path;
    path["path"] = "dir/file.txt";
    auto stat = unary(sb, "filesystem.Filesystem/Stat", path);
    ASSERT_EQ(stat.status(), 200) << stat.res.body();
    auto entry = stat.json_body().at("entry").as_object();
    EXPECT_EQ(entry.at("name").as_string(), "file.txt");
    EXPECT_EQ(entry.at("type").as_string(), "FILE_TYPE_FILE");
    EXPECT_EQ(entry.at("path").as_string(), "/home/user/dir/file.txt");
    EXPECT_EQ(entry.at("size").as_string(), "5");  // int64 as a JSON string
    EXPECT_EQ(entry.at("mode").to_number<unsigned>(), 0644u);
    EXPECT_EQ(entry.at("permissions").as_string(), "-rw-r--r--");
    EXPECT_FALSE(entry.at("owner").as_string().empty());
    EXPECT_FALSE(entry.at("group").as_string().empty());
    EXPECT_TRUE(std::regex_match(std::string(entry.at("modifiedTime").as_string()),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)")));

    json::object missing;
    missing["path"] = "/home/user/none";
    expect_connect_error(unary(sb, "filesystem.Filesystem/Stat", missing), 404, "not_found", "");

    // MakeDir: parents, already_exists, a file in the way.
    json::object mk;
    mk["path"] = "/home/user/a/b/c";
    auto made = unary(sb, "filesystem.Filesystem/MakeDir", mk);
    ASSERT_EQ(made.status(), 200) << made.res.body();
    EXPECT_EQ(made.json_body().at("entry").at("type").as_string(), "FILE_TYPE_DIRECTORY");
    EXPECT_EQ(made.json_body().at("entry").at("path").as_string(), "/home/user/a/b/c");
    expect_connect_error(unary(sb, "filesystem.Filesystem/MakeDir", mk), 409, "already_exists", "");
    expect_connect_error(unary(sb, "filesystem.Filesystem/MakeDir", path), 400, "invalid_argument", "");

    // ListDir: depth 1 by default, deeper on request (as a string too), unknown fields ignored.
    json::object ls;
    ls["path"] = "/home/user";
    ls["unknownField"] = 1;
    auto one = unary(sb, "filesystem.Filesystem/ListDir", ls);
    ASSERT_EQ(one.status(), 200) << one.res.body();
    EXPECT_EQ(entry_paths(one), (std::vector<std::string>{"/home/user/a", "/home/user/dir"}));
    ls["depth"] = "3";
    EXPECT_EQ(entry_paths(unary(sb, "filesystem.Filesystem/ListDir", ls)), (std::vector<std::string>{"/home/user/a", "/home/user/a/b", "/home/user/a/b/c", "/home/user/dir",
                                               "/home/user/dir/file.txt"}));
    expect_connect_error(unary(sb, "filesystem.Filesystem/ListDir", path), 400, "invalid_argument", "");

    // Move, then Remove (recursive; absent is fine).
    json::object mv;
    mv["source"] = "dir/file.txt";
    mv["destination"] = "/home/user/moved/f.txt";
    auto moved = unary(sb, "filesystem.Filesystem/Move", mv);
    ASSERT_EQ(moved.status(), 200) << moved.res.body();
    EXPECT_EQ(moved.json_body().at("entry").at("path").as_string(), "/home/user/moved/f.txt");
    EXPECT_EQ(download(sb, "moved/f.txt").res.body(), "hello");

    json::object rm;
    rm["path"] = "a";
    EXPECT_EQ(unary(sb, "filesystem.Filesystem/Remove", rm).status(), 200);
    EXPECT_EQ(unary(sb, "filesystem.Filesystem/Remove", rm).status(), 200);
    json::object a;
    a["path"] = "a";
    EXPECT_EQ(unary(sb, "filesystem.Filesystem/Stat", a).status(), 404);

    // Not a JSON request -> 415; streaming methods are not unary.
    auto proto = envd(sb, http::verb::post, "/filesystem.Filesystem/Stat", "x", {{"Content-Type", "application/proto"}});
    EXPECT_EQ(proto.status(), 415);
}

// ---- isolation --------------------------------------------------------------------------

class host_marker_dir {
public:
    host_marker_dir() : path_(fs::path("/home") / ("genesis-envd-test-" + random_token())) {
        fs::create_directories(path_);
        std::ofstream(path_ / "secret.txt") << "host secret";
    }
    ~host_marker_dir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

TEST_F(EmulatorEnvd, SandboxesSeeNeitherEachOtherNorHostHomes) {
    auto a = create();
    auto b = create();
    ASSERT_EQ(upload_raw(a, "secret.txt", "a's secret").status(), 200);
    host_marker_dir marker;
    const fs::path a_home = host_home(a);

    auto r = bash(b, "ls -A /home; ls -A /root | wc -l; cat /home/user/secret.txt; cat " + (marker.path() / "secret.txt").string() +
                         "; ls " + a_home.string());
    EXPECT_EQ(r.out, "user\n0\n") << r.err;
    EXPECT_NE(r.err.find("No such file"), std::string::npos);

    // envd refuses paths outside /home/user and /tmp, and symlinks that lead out.
    expect_envd_error(download(b, "/etc/hostname"), 400, emu::outside_message("/etc/hostname"));
    expect_envd_error(download(b, "/home/user/../../etc/hostname"), 400, emu::outside_message("/etc/hostname"));
    EXPECT_EQ(upload_raw(b, "/etc/genesis-should-not-exist", "x").status(), 400);
    EXPECT_FALSE(fs::exists("/etc/genesis-should-not-exist"));
    auto links = bash(b, "ln -s /etc/hostname abs; ln -s ../../../etc/hostname rel; ln -s /tmp/t.txt intmp; "
                         "echo inside > /tmp/t.txt; ln -s " + (marker.path() / "secret.txt").string() + " host");
    ASSERT_EQ(links.end->at("status").as_string(), "exit status 0") << links.err;
    EXPECT_EQ(download(b, "abs").status(), 400);
    EXPECT_EQ(download(b, "rel").status(), 400);
    EXPECT_EQ(download(b, "host").status(), 400);
    EXPECT_EQ(download(b, "intmp").res.body(), "inside\n");  // followed as the sandbox sees it
    json::object st;
    st["path"] = "intmp";
    auto stat = unary(b, "filesystem.Filesystem/Stat", st);
    EXPECT_EQ(stat.json_body().at("entry").at("symlinkTarget").as_string(), "/tmp/t.txt");
    EXPECT_EQ(stat.json_body().at("entry").at("type").as_string(), "FILE_TYPE_FILE");
}

TEST_F(EmulatorEnvd, NoNetworkUnlessTheSandboxHasInternet) {
    asio::io_context io;
    tcp::acceptor listener(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));  // connects queue in the backlog
    const auto port = std::to_string(listener.local_endpoint().port());
    const std::string probe =
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', " + port + "), timeout=5); print('connected')\"";

    auto offline = create();
    auto r = bash(offline, probe);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.end->at("exitCode").to_number<int>(), 0);

    auto online = create({}, true);
    auto ok = bash(online, probe);
    EXPECT_EQ(ok.out, "connected\n") << ok.err;
}

TEST_F(EmulatorEnvd, OnlyStandardDescriptorsReachTheCommand) {
    // A descriptor of this process without FD_CLOEXEC must not leak into a sandbox.
    const int leak = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(leak, 0);
    auto sb = create();
    // The listing's own descriptor (3) is the only one above stderr.
    auto r = bash(sb, "exec python3 -c \"import os; print(sorted(int(f) for f in os.listdir('/proc/self/fd')))\"");
    ::close(leak);
    EXPECT_EQ(r.out, "[0, 1, 2, 3]\n") << r.err;
}

TEST_F(EmulatorEnvd, KillingTheSandboxKillsItsProcesses) {
    auto sb = create();
    const std::string marker = "genesis-kill-" + random_token();
    auto s = open_stream(sb, "process.Process/Start", bash_request("sleep 600 & sleep 600; : " + marker));
    auto first = s->next();
    ASSERT_TRUE(first);
    ASSERT_TRUE(genesis_test::eventually([&] { return !genesis_test::processes_mentioning(marker, true).empty(); }, 10s));
    const fs::path home = host_home(sb);

    auto killed = exchange(port_, make_request(http::verb::delete_, "/sandboxes/" + sb.id, {},
                                               {{"X-API-Key", emulator_->api_key()}}));
    EXPECT_EQ(killed.status(), 204);
    // The stream is cut (no end event, no end-stream frame), like the edge proxy does.
    run_result r = read_to_end(*s);
    EXPECT_FALSE(r.end);
    EXPECT_FALSE(r.tail);
    // Killed. Not necessarily gone by the time the answer arrives: the command
    // runs inside bubblewrap's pid namespace, whose other processes the kernel
    // kills once its init has died, which a loaded machine (ASan) makes visible.
    EXPECT_TRUE(genesis_test::eventually([&] { return genesis_test::processes_mentioning(marker, true).empty(); }, 10s));
    EXPECT_TRUE(genesis_test::eventually([&] { return genesis_test::processes_mentioning("E2B_SANDBOX_ID=" + sb.id, true).empty(); }, 10s));
    EXPECT_FALSE(fs::exists(home));
}

TEST_F(EmulatorEnvd, StoppingTheEmulatorKillsEverything) {
    auto sb = create();
    const std::string marker = "genesis-stop-" + random_token();
    auto s = open_stream(sb, "process.Process/Start", bash_request("sleep 600; : " + marker));
    ASSERT_TRUE(s->next());
    ASSERT_TRUE(genesis_test::eventually([&] { return !genesis_test::processes_mentioning(marker, true).empty(); }, 10s));
    TearDown();
    EXPECT_TRUE(genesis_test::eventually([&] { return genesis_test::processes_mentioning(marker, true).empty(); }, 10s));
}

// ---- bench mode -----------------------------------------------------------------------

// The emulator as the benchmark's instant server: nothing spawned, nothing written.
class EmulatorBench : public EmulatorEnvd {
protected:
    void SetUp() override { start(bench_options()); }  // no bubblewrap needed

    static emu::emulator_options bench_options() {
        emu::emulator_options o;
        o.bench = true;
        return o;
    }
    json::object stats() {
        return on_io([&] { return emulator_->stats(); });
    }
};

TEST_F(EmulatorBench, StartAnswersExitZeroAtOnceWithoutRunningTheCommand) {
    auto sb = create();
    // A command that would fail, in a folder that does not exist: nothing runs.
    auto r = bash(sb, "touch ran; exit 3", {}, "/home/user/no/such/folder");
    EXPECT_EQ(r.http_status, 200);
    EXPECT_TRUE(r.start_first);
    ASSERT_TRUE(r.pid);
    EXPECT_EQ(r.out, "bench\n");
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.events, 3);  // start, one stdout chunk, end
    ASSERT_TRUE(r.end);
    EXPECT_EQ(json::serialize(*r.end), R"({"exited":true,"status":"exit status 0"})");
    ASSERT_TRUE(r.tail);
    EXPECT_FALSE(r.tail->error);
    EXPECT_FALSE(fs::exists(host_home(sb) / "ran"));
    // No process is left behind in envd's table.
    auto listed = unary(sb, "process.Process/List", json::object{});
    EXPECT_EQ(listed.status(), 200) << listed.res.body();
    EXPECT_TRUE(listed.json_body().at("processes").as_array().empty()) << listed.res.body();
    // Malformed requests are still refused.
    json::object no_cmd;
    no_cmd["process"] = json::object{};
    EXPECT_EQ(run(sb, no_cmd).error_code(), "invalid_argument");
}

TEST_F(EmulatorBench, UploadsAreDiscardedAndResultFilesHaveFixedContent) {
    auto sb = create();
    auto up = envd(sb, http::verb::post, "/files", multipart("b0undary", {{"main.py", "x = 1\n"}, {"evaluate.py", "y\n"}}),
                   {{"Content-Type", "multipart/form-data; boundary=b0undary"}});
    ASSERT_EQ(up.status(), 200) << up.res.body();
    EXPECT_EQ(up.res.body(), R"([{"path":"/home/user/main.py","name":"main.py","type":"file"},)"
                             R"({"path":"/home/user/evaluate.py","name":"evaluate.py","type":"file"}])");
    EXPECT_FALSE(fs::exists(host_home(sb) / "main.py"));
    EXPECT_FALSE(fs::exists(host_home(sb) / "evaluate.py"));

    // The results folder lists metrics.json and correct.json, whatever ran.
    json::object ls;
    ls["path"] = "results";
    auto listing = unary(sb, "filesystem.Filesystem/ListDir", ls);
    ASSERT_EQ(listing.status(), 200) << listing.res.body();
    EXPECT_EQ(entry_paths(listing),
              (std::vector<std::string>{"/home/user/results/metrics.json", "/home/user/results/correct.json"}));
    const auto listed = listing.json_body();
    for (const auto& e : listed.at("entries").as_array())
        EXPECT_EQ(e.at("type").as_string(), "FILE_TYPE_FILE");

    auto metrics = download(sb, "/home/user/results/metrics.json");
    ASSERT_EQ(metrics.status(), 200);
    EXPECT_DOUBLE_EQ(metrics.json_body().at("combined_score").to_number<double>(), 1.0);
    auto correct = download(sb, "results/correct.json");
    ASSERT_EQ(correct.status(), 200);
    EXPECT_TRUE(correct.json_body().at("correct").as_bool());
    EXPECT_TRUE(correct.json_body().at("error").is_null());
    // Any other path: a short fixed text, uploaded or not.
    EXPECT_EQ(download(sb, "main.py").res.body(), "bench\n");
    EXPECT_EQ(download(sb, "/etc/anything").res.body(), "bench\n");
}

TEST_F(EmulatorBench, StatsCountRequestsSandboxesAndCpu) {
    const auto before = stats();
    EXPECT_TRUE(before.at("bench").as_bool());
    EXPECT_EQ(before.at("requests").at("total").to_number<int>(), 0);
    auto sb = create();
    EXPECT_EQ(upload_raw(sb, "a", "1").status(), 200);
    EXPECT_EQ(bash(sb, "true").http_status, 200);
    EXPECT_EQ(download(sb, "results/metrics.json").status(), 200);
    auto killed = exchange(port_, make_request(http::verb::delete_, "/sandboxes/" + sb.id, {},
                                               {{"X-API-Key", emulator_->api_key()}}));
    EXPECT_EQ(killed.status(), 204) << killed.res.body();

    const auto after = stats();
    EXPECT_EQ(after.at("requests").at("total").to_number<int>(), 5);
    EXPECT_EQ(after.at("created").to_number<int>(), 1);
    EXPECT_EQ(after.at("killed").to_number<int>(), 1);
    EXPECT_EQ(after.at("live").to_number<int>(), 0);
    EXPECT_EQ(after.at("connections_accepted").to_number<int>(), 5);  // one per exchange() here
    EXPECT_EQ(after.at("tls_handshakes").to_number<int>(), 0);        // plain HTTP
    const auto& cpu = after.at("cpu_seconds").as_object();
    EXPECT_GT(cpu.at("total").to_number<double>(), 0.0);
    EXPECT_DOUBLE_EQ(cpu.at("total").to_number<double>(),
                     cpu.at("user").to_number<double>() + cpu.at("system").to_number<double>());
    EXPECT_GE(cpu.at("total").to_number<double>(), before.at("cpu_seconds").at("total").to_number<double>());
}

TEST_F(EmulatorBench, StatsCountCompletedAndResumedTlsHandshakes) {
    if (!genesis_test::openssl_available()) GTEST_SKIP() << "no openssl CLI";
    genesis_test::temp_dir pki;
    ASSERT_TRUE(genesis_test::make_test_pki(pki.path()));
    auto options = bench_options();
    options.tls_cert = pki.path() / "server.crt";
    options.tls_key = pki.path() / "server.key";
    restart(options);

    // One handshake; `offer`: a session to resume; `kept`: the session the server
    // gave (a ticket, read with one request's answer).
    auto handshake = [&](bool trusting, SSL_SESSION* offer = nullptr, SSL_SESSION** kept = nullptr) {
        asio::io_context io;
        asio::ssl::context ctx(asio::ssl::context::tls_client);
        if (trusting) ctx.load_verify_file((pki.path() / "ca.crt").string());
        ctx.set_verify_mode(asio::ssl::verify_peer);
        beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
        if (offer) SSL_set_session(stream.native_handle(), offer);
        beast::get_lowest_layer(stream).expires_after(io_limit);
        beast::get_lowest_layer(stream).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
        error_code ec;
        stream.handshake(asio::ssl::stream_base::client, ec);
        if (ec) return false;
        if (offer) EXPECT_TRUE(SSL_session_reused(stream.native_handle()));
        if (kept) {
            http::request<http::empty_body> req{http::verb::get, "/health", 11};
            req.set(http::field::host, "127.0.0.1");
            http::write(stream, req, ec);
            beast::flat_buffer buffer;
            http::response<http::string_body> res;
            if (!ec) http::read(stream, buffer, res, ec);
            EXPECT_FALSE(ec) << ec.message();
            // A copy: the connection ends without a TLS shutdown, which makes its own not resumable.
            *kept = SSL_SESSION_dup(SSL_get0_session(stream.native_handle()));
        }
        return true;
    };
    SSL_SESSION* session = nullptr;
    EXPECT_TRUE(handshake(true, nullptr, &session));
    ASSERT_NE(session, nullptr);
    EXPECT_TRUE(handshake(true, session));  // resumed
    SSL_SESSION_free(session);
    EXPECT_FALSE(handshake(false));  // refused by the client: not completed
    // Every session over (the server side of each handshake finished, one way or the other).
    EXPECT_TRUE(genesis_test::eventually([&] {
        auto s = stats();
        return s.at("connections_accepted").to_number<int>() == 3 && s.at("open_connections").to_number<int>() == 0;
    }));
    EXPECT_EQ(stats().at("tls_handshakes").to_number<int>(), 2);
    EXPECT_EQ(stats().at("tls_resumed").to_number<int>(), 1);
}

}  // namespace

#endif  // __has_include("emulator.hpp")
