// options.hpp - everything that configures the emulator: listening, TLS,
// templates, and the knobs tests turn (latency, faults, limits).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace genesis::e2b_emulator {

// A sandbox template: what a sandbox built from it offers.
struct template_spec {
    std::string name;                       // "base", or as declared in the config
    std::string python = "/usr/bin/python3";  // what `python`/`python3` on the PATH run
    std::map<std::string, std::string> env;   // added to every process of such a sandbox
    bool internet = false;                    // network namespace shared with the host when true
    int cpu_count = 2;
    int memory_mb = 512;
    int disk_size_mb = 1024;
};

// One fault to inject. Endpoint names: create, kill, set_timeout, get, list, connect,
// health, files.upload, files.download, process.start, process.signal, process.list,
// filesystem.stat, filesystem.list_dir, filesystem.make_dir, filesystem.remove, or "*".
struct fault_rule {
    std::string endpoint;
    // status       answer `status` with an E2B error body (and Retry-After for 429)
    // reset        abort the TCP connection without answering
    // cut_stream   (process.start) send `after_events` events, then cut the connection
    // lose_response (create) create the sandbox, then reset instead of answering
    // vanish       (create) the sandbox is created and answered, then disappears after `after_ms`
    // stall        hold the request `after_ms`, then answer it as usual (a slow service)
    std::string kind = "status";
    int status = 500;
    std::optional<int> retry_after;  // seconds, for 429
    std::string message;             // error message; a sensible default when empty
    int skip = 0;                    // let this many matching requests through first
    int count = 1;                   // fire this many times; -1 = every time
    int after_events = 1;            // cut_stream
    int after_ms = 0;                // vanish, stall
    // Chance (0..1] that a matching request within the budget is hit; 1 = every one.
    // Rules below 1 share one draw per request from the seeded RNG (emulator_options::seed),
    // so each fires at its own rate independently of the rules listed before it.
    double probability = 1.0;
};

// A directory entry envd adds to every ListDir answer whose listing covers it
// (a hostile envd): any path, even "../x", absolute or with control characters.
// Downloading exactly `path` answers `content`.
struct fake_entry {
    std::string path;
    std::string type = "file";  // file, directory or symlink
    std::string content;
};

struct emulator_options {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    std::filesystem::path tls_cert;  // both set = HTTPS
    std::filesystem::path tls_key;
    std::string api_key;             // empty = generate "e2b_" + 40 hex digits
    std::string domain = "e2b.local";  // for <port>-<id>.<domain> host routing
    std::filesystem::path state_dir;   // empty = a fresh folder under the temp dir
    std::string envd_version = "0.6.13";
    std::map<std::string, template_spec> templates;  // "base" is always there

    // Knobs.
    std::chrono::milliseconds latency{0};                          // every request
    std::map<std::string, std::chrono::milliseconds> endpoint_latency;  // per endpoint, on top
    std::vector<fault_rule> faults;
    int max_concurrent_sandboxes = 0;   // 0 = unlimited; else 429 like E2B's concurrency limit
    double create_rate_per_second = 0;  // 0 = unlimited; else 429 "Rate limit exceeded" + Retry-After
    int max_timeout_seconds = 24 * 3600;
    std::uint64_t seed = 1;                 // RNG of probabilistic faults (same seed, same draws)
    std::vector<fake_entry> fake_entries;   // hostile directory listings (see fake_entry)

    // Benchmark mode: the emulator is the cheap, instant server the client is
    // measured against. process.start answers at once (start event, one small
    // stdout chunk, end with exit 0) without spawning anything; uploads are read
    // and discarded; downloads of any path answer a small fixed content (see
    // bench_file_content); ListDir of any folder lists metrics.json and
    // correct.json. Sandbox create/kill keep their bookkeeping; latency applies.
    bool bench = false;
};

// Bench mode: what a download of `path` answers (metrics.json and correct.json
// shaped as the evaluation contract asks, anything else a short text).
std::string bench_file_content(std::string_view path);
// Bench mode: the stdout chunk of every command.
inline constexpr std::string_view bench_stdout = "bench\n";

// Reads a YAML config file into `options` (keys as above; see docs/e2b-emulator.md).
// Returns an error message, or empty on success.
std::string load_options_file(const std::filesystem::path& file, emulator_options& options);

}  // namespace genesis::e2b_emulator
