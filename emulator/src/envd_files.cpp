// envd's plain-HTTP endpoints (GET /health, POST /files, GET /files), the
// dispatcher for every envd request, and the access-token rules
// (docs/e2b-wire.md, "envd access" and "envd files").
#include "envd.hpp"
#include "sandbox_runtime.hpp"

#include "connect_wire.hpp"

#include <boost/beast/zlib/inflate_stream.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <set>

namespace genesis::e2b_emulator {

namespace json = boost::json;

namespace envd_detail {

response http_error(const request& req, int status, std::string_view message) {
    json::object body;
    body["code"] = status;
    body["message"] = message;
    return make_response(req, static_cast<http::status>(status), json::serialize(body));
}

bool token_matches(const sandbox& sb, const request& req) {
    if (sb.access_token.empty()) return true;
    auto it = req.find("X-Access-Token");
    if (it == req.end()) return false;
    const auto given = it->value();
    return given.size() == sb.access_token.size() &&
           CRYPTO_memcmp(given.data(), sb.access_token.data(), given.size()) == 0;
}

}  // namespace envd_detail

using envd_detail::http_error;

namespace {

std::string_view path_of(const request& req) {
    std::string_view target = req.target();
    return target.substr(0, target.find('?'));
}

// Decoded query parameters (the first occurrence of each).
std::map<std::string, std::string> query_of(const request& req) {
    std::map<std::string, std::string> out;
    auto url = boost::urls::parse_origin_form(req.target());
    if (!url) return out;
    for (auto param : url->params())
        if (!out.count(param.key)) out.emplace(param.key, param.has_value ? param.value : std::string());
    return out;
}

std::optional<std::string> param(const std::map<std::string, std::string>& q, const std::string& key) {
    auto it = q.find(key);
    if (it == q.end()) return std::nullopt;
    return it->second;
}

// --- authorization of /files (docs/e2b-wire.md, "Access token") ---

std::string sha256_base64_raw(std::string_view text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
    std::string b64 = wire::base64_encode(std::string_view(reinterpret_cast<const char*>(md), len));
    while (!b64.empty() && b64.back() == '=') b64.pop_back();
    return b64;
}

// v1_ + base64(sha256("<path>:<read|write>:<username>:<token>[:<expiration>]")) without padding.
std::string expected_signature(const std::string& token, const std::map<std::string, std::string>& q,
                               std::string_view operation) {
    std::string text = param(q, "path").value_or("") + ":" + std::string(operation) + ":" +
                       param(q, "username").value_or("") + ":" + token;
    if (auto expiration = param(q, "signature_expiration")) text += ":" + *expiration;
    return "v1_" + sha256_base64_raw(text);
}

bool same_secret(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view files_operation(const request& req) { return req.method() == http::verb::get ? "read" : "write"; }

// Empty when the request may use /files, else the 401 message.
std::string files_auth_error(const sandbox& sb, const request& req, const std::map<std::string, std::string>& q) {
    if (sb.access_token.empty()) return {};
    if (req.find("X-Access-Token") != req.end())
        return envd_detail::token_matches(sb, req) ? "" : "access token present in header but does not match";
    auto signature = param(q, "signature");
    if (!signature) return "missing signature query parameter";
    if (!same_secret(expected_signature(sb.access_token, q, files_operation(req)), *signature))
        return "invalid signature";
    if (auto expiration = param(q, "signature_expiration")) {
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
        long long exp = 0;
        auto [end, ec] = std::from_chars(expiration->data(), expiration->data() + expiration->size(), exp);
        if (ec != std::errc{} || end != expiration->data() + expiration->size()) return "invalid signature expiration";
        if (exp < now) return "signature is already expired";
    }
    return {};
}

// The sandbox's users (both map to the same view; processes run as one uid).
std::string user_error(const std::map<std::string, std::string>& q) {
    auto user = param(q, "username");
    if (!user || user->empty() || *user == "user" || *user == "root") return {};
    return "error looking up user '" + *user + "': user: unknown user " + *user;
}

// --- multipart/form-data ---

struct form_file {
    std::string filename;  // full filename parameter (a path), may be empty
    std::string_view data;
};

// The value of `name` in a header's parameters (`; name="value"` or `; name=value`).
std::optional<std::string> header_param(std::string_view header, std::string_view name) {
    std::size_t i = 0;
    while ((i = header.find(';', i)) != std::string_view::npos) {
        ++i;
        while (i < header.size() && (header[i] == ' ' || header[i] == '\t')) ++i;
        auto eq = header.find('=', i);
        if (eq == std::string_view::npos) return std::nullopt;
        std::string key(header.substr(i, eq - i));
        while (!key.empty() && key.back() == ' ') key.pop_back();
        std::size_t v = eq + 1;
        std::string value;
        if (v < header.size() && header[v] == '"') {
            for (++v; v < header.size() && header[v] != '"'; ++v) {
                if (header[v] == '\\' && v + 1 < header.size()) ++v;
                value += header[v];
            }
        } else {
            auto end = header.find(';', v);
            value = std::string(header.substr(v, end == std::string_view::npos ? std::string_view::npos : end - v));
            while (!value.empty() && value.back() == ' ') value.pop_back();
        }
        if (key.size() == name.size() &&
            std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
            return value;
        i = v;
    }
    return std::nullopt;
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), text.begin(),
                      [](char a, char b) { return std::tolower(a) == std::tolower(b); });
}

// The `file` parts of a multipart body; an error message when it is malformed.
std::string parse_multipart(std::string_view body, std::string_view boundary, std::vector<form_file>& files) {
    const std::string delim = "--" + std::string(boundary);
    auto pos = body.find(delim);
    if (pos == std::string_view::npos) return "multipart body has no boundary";
    pos += delim.size();
    for (;;) {
        if (body.substr(pos, 2) == "--") return {};  // closing delimiter
        if (body.substr(pos, 2) != "\r\n") return "malformed multipart delimiter";
        pos += 2;
        auto head_end = body.find("\r\n\r\n", pos);
        if (head_end == std::string_view::npos) return "malformed multipart part headers";
        std::string_view head = body.substr(pos, head_end - pos + 2);
        auto data_start = head_end + 4;
        auto next = body.find("\r\n" + delim, data_start);
        if (next == std::string_view::npos) return "multipart body is truncated";

        std::optional<std::string> name, filename;
        for (std::size_t line = 0; line < head.size();) {
            auto eol = head.find("\r\n", line);
            std::string_view h = head.substr(line, eol - line);
            if (iequals_prefix(h, "content-disposition:")) {
                name = header_param(h, "name");
                filename = header_param(h, "filename");
            }
            line = eol + 2;
        }
        if (name == "file") files.push_back({filename.value_or(""), body.substr(data_start, next - data_start)});
        pos = next + 2 + delim.size();
    }
}

// --- Content-Encoding: gzip (RFC 1952) ---

std::uint32_t crc32(std::string_view data) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    std::uint32_t c = 0xffffffffu;
    for (unsigned char b : data) c = table[(c ^ b) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

std::uint32_t le32(std::string_view s, std::size_t at) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<std::size_t>(i)]);
    return v;
}

// Skips a gzip member header; the offset of its deflate data, or npos.
std::size_t gzip_header_end(std::string_view in, std::size_t pos) {
    if (in.size() - pos < 10 || static_cast<unsigned char>(in[pos]) != 0x1f ||
        static_cast<unsigned char>(in[pos + 1]) != 0x8b || in[pos + 2] != 8)
        return std::string_view::npos;
    const unsigned flags = static_cast<unsigned char>(in[pos + 3]);
    pos += 10;
    if (flags & 0x04) {  // FEXTRA
        if (in.size() - pos < 2) return std::string_view::npos;
        pos += 2 + (static_cast<unsigned char>(in[pos]) | (static_cast<unsigned char>(in[pos + 1]) << 8));
    }
    for (unsigned bit : {0x08u, 0x10u}) {  // FNAME, FCOMMENT: zero-terminated
        if (!(flags & bit)) continue;
        pos = in.find('\0', pos);
        if (pos == std::string_view::npos) return pos;
        ++pos;
    }
    if (flags & 0x02) pos += 2;  // FHCRC
    return pos <= in.size() ? pos : std::string_view::npos;
}

// Decompresses a gzip body (one or more members); nullopt + `why` when it is broken.
std::optional<std::string> gunzip(std::string_view in, std::string& why) {
    namespace zlib = boost::beast::zlib;
    std::string out;
    std::size_t pos = 0;
    while (pos < in.size()) {
        pos = gzip_header_end(in, pos);
        if (pos == std::string_view::npos) {
            why = "not a gzip stream";
            return std::nullopt;
        }
        zlib::inflate_stream inflater;
        zlib::z_params zs;
        zs.next_in = in.data() + pos;
        zs.avail_in = in.size() - pos;
        const std::size_t member_start = out.size();
        for (;;) {
            const std::size_t before = out.size();
            out.resize(before + 256 * 1024);
            zs.next_out = out.data() + before;
            zs.avail_out = 256 * 1024;
            boost::system::error_code ec;
            inflater.write(zs, zlib::Flush::none, ec);
            out.resize(out.size() - zs.avail_out);
            if (ec == zlib::error::end_of_stream) break;
            if (ec && ec != zlib::error::need_buffers) {
                why = "bad gzip data: " + ec.message();
                return std::nullopt;
            }
            if (zs.avail_in == 0 && out.size() == before) {
                why = "truncated gzip data";
                return std::nullopt;
            }
        }
        pos += zs.total_in;
        if (in.size() - pos < 8) {
            why = "truncated gzip trailer";
            return std::nullopt;
        }
        const std::string_view member(out.data() + member_start, out.size() - member_start);
        if (le32(in, pos) != crc32(member) || le32(in, pos + 4) != static_cast<std::uint32_t>(member.size())) {
            why = "gzip checksum mismatch";
            return std::nullopt;
        }
        pos += 8;
    }
    return out;
}

// --- writing and reading files ---

// Writes one file (parents created, an existing file truncated). An HTTP status + message on failure.
std::pair<int, std::string> write_file(const sandbox& sb, const std::string& view, std::string_view data) {
    host_location loc;
    if (auto ec = locate(sb, view, {.create_parents = true, .follow_last = true}, loc)) {
        if (ec == std::errc::permission_denied) return {400, outside_message(view)};
        if (ec == std::errc::not_a_directory) return {400, "a parent of '" + view + "' is not a directory"};
        return {500, "error resolving path '" + view + "': " + ec.message()};
    }
    if (loc.is_area_root()) return {400, "path is a directory: " + view};
    unique_fd fd(::openat(loc.dir.get(), loc.name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (!fd) {
        if (errno == EISDIR) return {400, "path is a directory: " + view};
        if (errno == ENOSPC) return {507, "not enough disk space available"};
        return {500, "error opening file '" + view + "': " + std::strerror(errno)};
    }
    while (!data.empty()) {
        auto n = ::write(fd.get(), data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOSPC) return {507, "not enough disk space available"};
            return {500, "error writing file '" + view + "': " + std::strerror(errno)};
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {200, {}};
}

std::string base_name(const std::string& view) { return view.substr(view.rfind('/') + 1); }

// `bench`: the files are read and checked, then discarded (emulator_options::bench).
asio::awaitable<void> upload(const sandbox& sb, request& req, response_writer& out,
                             const std::map<std::string, std::string>& q, bool bench) {
    const std::string content_type(req[http::field::content_type]);
    const std::string encoding(req[http::field::content_encoding]);
    if (encoding == "gzip") {
        std::string why;
        auto plain = gunzip(req.body(), why);
        if (!plain) {
            co_await out.send(http_error(req, 400, why));
            co_return;
        }
        req.body() = std::move(*plain);
    } else if (!encoding.empty() && encoding != "identity") {
        co_await out.send(http_error(req, 400, "unsupported Content-Encoding '" + encoding + "'"));
        co_return;
    }
    const auto path = param(q, "path");
    std::vector<form_file> files;
    if (iequals_prefix(content_type, "multipart/form-data")) {
        auto boundary = header_param(content_type, "boundary");
        std::string err = boundary ? parse_multipart(req.body(), *boundary, files) : "missing multipart boundary";
        if (!err.empty()) {
            co_await out.send(http_error(req, 400, "error parsing multipart form: " + err));
            co_return;
        }
    } else if (iequals_prefix(content_type, "application/octet-stream")) {
        if (!path || path->empty()) {
            co_await out.send(http_error(req, 400, "path is required for application/octet-stream uploads"));
            co_return;
        }
        files.push_back(form_file{*path, req.body()});
    } else {
        co_await out.send(http_error(req, 400, "unsupported content type: '" + content_type + "'"));
        co_return;
    }

    // Destinations first: all must be valid and distinct before anything is written.
    std::vector<std::string> views;
    std::set<std::string> seen;
    for (const auto& f : files) {
        const std::string& dest = path && !path->empty() ? *path : f.filename;
        if (dest.empty()) {
            co_await out.send(http_error(req, 400, "missing path: no 'path' parameter and no part filename"));
            co_return;
        }
        views.push_back(normalize_sandbox_path(dest));
        if (!seen.insert(views.back()).second) {
            co_await out.send(http_error(req, 400, "duplicate path: " + views.back()));
            co_return;
        }
    }
    json::array written;
    for (std::size_t i = 0; i < files.size(); ++i) {
        auto [status, message] = bench ? std::pair<int, std::string>(200, std::string()) : write_file(sb, views[i], files[i].data);
        if (status != 200) {
            co_await out.send(http_error(req, status, message));
            co_return;
        }
        json::object entry;
        entry["path"] = views[i];
        entry["name"] = base_name(views[i]);
        entry["type"] = "file";
        written.push_back(std::move(entry));
    }
    co_await out.send(make_response(req, http::status::ok, json::serialize(written)));
}

// Content-Disposition: inline; filename=<name>, quoted when it is not a plain token.
std::string content_disposition(const std::string& name) {
    bool token = !name.empty();
    for (unsigned char c : name)
        if (c <= ' ' || c >= 0x7f || std::string_view("()<>@,;:\\\"/[]?=").find(c) != std::string_view::npos) token = false;
    if (token) return "inline; filename=" + name;
    std::string quoted = "\"";
    for (char c : name) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    return "inline; filename=" + quoted + "\"";
}

// Reads a whole file. An HTTP status + message on failure; 200 + bytes.
std::pair<int, std::string> read_file(const sandbox& sb, const std::string& view) {
    host_location loc;
    if (auto ec = locate(sb, view, {.create_parents = false, .follow_last = true}, loc)) {
        if (ec == std::errc::permission_denied) return {400, outside_message(view)};
        if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory)
            return {404, "path '" + view + "' does not exist"};
        return {500, "error resolving path '" + view + "': " + ec.message()};
    }
    struct stat st {};
    if (::fstatat(loc.dir.get(), loc.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return {404, "path '" + view + "' does not exist"};
    if (S_ISDIR(st.st_mode)) return {400, "path '" + view + "' is a directory"};
    unique_fd fd(::openat(loc.dir.get(), loc.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return {500, "error opening file '" + view + "': " + std::strerror(errno)};
    std::string data;
    data.reserve(static_cast<std::size_t>(st.st_size));
    char buf[64 * 1024];
    for (;;) {
        auto n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return {500, "error reading file '" + view + "': " + std::strerror(errno)};
        if (n == 0) break;
        data.append(buf, static_cast<std::size_t>(n));
    }
    return {200, std::move(data)};
}

asio::awaitable<void> download(const emulator_state& st, const sandbox& sb, request& req, response_writer& out,
                               const std::map<std::string, std::string>& q) {
    // A hostile envd serves its fake entries (options.fake_entries) by their exact path.
    const std::string asked = param(q, "path").value_or("");
    for (const auto& f : st.options.fake_entries) {
        if (f.path != asked) continue;
        co_await out.send(make_response(req, http::status::ok, f.content, "application/octet-stream"));
        co_return;
    }
    const std::string view = normalize_sandbox_path(param(q, "path").value_or(""));
    auto [status, data] = st.options.bench ? std::pair<int, std::string>(200, bench_file_content(view)) : read_file(sb, view);
    if (status != 200) {
        co_await out.send(http_error(req, status, data));
        co_return;
    }
    // Identity encoding always (allowed by the contract; Range and conditionals are not emulated).
    auto res = make_response(req, http::status::ok, std::move(data), "application/octet-stream");
    res.set(http::field::content_disposition, content_disposition(base_name(view)));
    res.set(http::field::vary, "Accept-Encoding");
    co_await out.send(std::move(res));
}

asio::awaitable<void> serve_files(const emulator_state& st, const sandbox& sb, std::string_view endpoint, request& req,
                                  response_writer& out) {
    const auto q = query_of(req);
    const bool reading = endpoint == "files.download";
    if (auto err = files_auth_error(sb, req, q); !err.empty()) {
        co_await out.send(http_error(req, 401, err));
        co_return;
    }
    if (auto err = user_error(q); !err.empty()) {
        co_await out.send(http_error(req, 401, err));
        co_return;
    }
    if (reading) co_await download(st, sb, req, out, q);
    else co_await upload(sb, req, out, q, st.options.bench);
}

struct rpc_name {
    std::string_view path;
    std::string_view endpoint;
};

constexpr rpc_name rpc_names[] = {
    {"/process.Process/Start", "process.start"},
    {"/process.Process/Connect", "process.connect"},
    {"/process.Process/SendSignal", "process.signal"},
    {"/process.Process/List", "process.list"},
    {"/process.Process/SendInput", "process.send_input"},
    {"/process.Process/CloseStdin", "process.close_stdin"},
    {"/process.Process/StreamInput", "process.stream_input"},
    {"/process.Process/Update", "process.update"},
    {"/filesystem.Filesystem/Stat", "filesystem.stat"},
    {"/filesystem.Filesystem/ListDir", "filesystem.list_dir"},
    {"/filesystem.Filesystem/MakeDir", "filesystem.make_dir"},
    {"/filesystem.Filesystem/Remove", "filesystem.remove"},
    {"/filesystem.Filesystem/Move", "filesystem.move"},
    {"/filesystem.Filesystem/WatchDir", "filesystem.watch_dir"},
    {"/filesystem.Filesystem/CreateWatcher", "filesystem.create_watcher"},
    {"/filesystem.Filesystem/GetWatcherEvents", "filesystem.get_watcher_events"},
    {"/filesystem.Filesystem/RemoveWatcher", "filesystem.remove_watcher"},
};

}  // namespace

std::shared_ptr<sandbox> find_sandbox_by_signature(const emulator_state& st, const request& req) {
    if (path_of(req) != "/files" || (req.method() != http::verb::get && req.method() != http::verb::post)) return nullptr;
    const auto q = query_of(req);
    auto signature = param(q, "signature");
    if (!signature) return nullptr;
    for (auto& sb : st.sandboxes.list())
        if (!sb->access_token.empty() &&
            same_secret(expected_signature(sb->access_token, q, files_operation(req)), *signature))
            return sb;
    return nullptr;
}

std::string envd_endpoint_name(const request& req) {
    const auto path = path_of(req);
    const auto method = req.method();
    if (path == "/health" && method == http::verb::get) return "health";
    if (path == "/files" && method == http::verb::get) return "files.download";
    if (path == "/files" && method == http::verb::post) return "files.upload";
    for (const auto& r : rpc_names)
        if (r.path == path) return std::string(r.endpoint);
    return {};
}

asio::awaitable<void> handle_envd(emulator_state& st, std::shared_ptr<sandbox> sb, std::string_view endpoint,
                                  request& req, response_writer& out) {
    if (endpoint == "health") {
        co_await out.send(make_response(req, http::status::no_content, {}, {}));
    } else if (endpoint == "files.upload" || endpoint == "files.download") {
        co_await serve_files(st, *sb, endpoint, req, out);
    } else if (!envd_detail::token_matches(*sb, req)) {
        co_await out.send(http_error(
            req, 401, "unauthorized access, please provide a valid access token or method signing if supported"));
    } else if (endpoint.empty()) {
        co_await out.send(make_response(req, http::status::not_found, "404 page not found\n", "text/plain; charset=utf-8"));
    } else {
        co_await envd_detail::serve_rpc(st, std::move(sb), endpoint, req, out);
    }
}

}  // namespace genesis::e2b_emulator
