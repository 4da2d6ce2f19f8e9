// emulator.hpp - a local, wire-compatible E2B service: the control plane and
// envd on one port, each sandbox an isolated local environment (bubblewrap).
//
//   asio::io_context io;
//   emulator emu(io.get_executor(), options);
//   std::string err;
//   if (!emu.start(err)) ...;
//   // E2B_API_URL = E2B_SANDBOX_URL = emu.api_url(), E2B_API_KEY = emu.api_key()
//   io.run();
//
// Single-threaded: everything runs on the executor given (one io_context thread).
#pragma once

#include "http_server.hpp"
#include "options.hpp"
#include "sandbox.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <vector>
#include <set>
#include <string>

namespace genesis::e2b_emulator {

// What the emulator has seen; served at GET /_emulator/stats.
struct request_counters {
    std::uint64_t total = 0;
    std::map<std::string, std::uint64_t> by_endpoint;  // endpoint name -> count
    std::uint64_t faults_injected = 0;
    std::map<std::string, std::uint64_t> faults_by_kind;  // fault_label() -> count
};

// One injected fault, for GET /_emulator/faults: which request it hit and, when
// known, the sandbox and the job (the sandbox's or create request's
// metadata.genesis_job) it belongs to.
struct fault_event {
    std::uint64_t request = 0;  // request_counters::total when it fired
    std::string label;          // "status_429", "reset", "cut_stream", ...
    std::string endpoint;
    std::string sandbox_id;     // "" = none yet (create) or unknown
    std::string job;            // "" = unknown
};

// Whom a request concerns (for fault_event).
struct fault_subject {
    std::string sandbox_id;
    std::string job;
};

// Shared by the router, the control plane and envd.
struct emulator_state {
    asio::any_io_executor ex;
    emulator_options options;
    sandbox_registry sandboxes;
    request_counters requests;
    // Remaining budget per fault rule (index into options.faults).
    std::vector<int> fault_skips;
    std::vector<int> fault_counts;
    std::mt19937_64 fault_rng;            // seeded with options.seed
    std::vector<fault_event> fault_log;   // every fault injected, in order
    std::set<std::string> vanished_ids;   // sandboxes a vanish fault really destroyed

    // cut_stream faults armed by the router, keyed by the request object it passes
    // to handle_envd. An entry exists only for the duration of that handle_envd
    // call (the router erases it when the call returns). envd's streaming handlers
    // (process.start, process.connect) look theirs up with pending_cut(st, req)
    // (faults.hpp), send `after_events` events, then out.reset_connection().
    // Keyed by request rather than a single slot because several requests may be
    // in flight at once on the one thread.
    std::map<const request*, fault_rule> pending_cuts;

    // Creation rate limiter (token bucket; control plane).
    double create_tokens = 0;
    std::chrono::steady_clock::time_point create_tokens_at{};

    // Timers of pending `vanish` faults; cancelled by emulator::stop().
    std::set<std::shared_ptr<asio::steady_timer>> vanish_timers;

    // Optional hooks, set by the emulator / the program.
    std::function<std::size_t()> open_connections;         // for stats
    const http_server* server = nullptr;                   // for stats, while started
    std::function<void(const std::string&)> request_log;  // one line per request (--verbose)

    emulator_state(asio::any_io_executor e, emulator_options o, std::filesystem::path state_dir);
};

// The GET /_emulator/stats document (see emulator::stats()).
boost::json::object make_stats(const emulator_state& st);
// The GET /_emulator/faults document: st.fault_log as an array of
// {"request","kind","endpoint","sandbox_id","job"}.
boost::json::array fault_log_json(const emulator_state& st);

class emulator {
public:
    emulator(asio::any_io_executor ex, emulator_options options);
    ~emulator();
    emulator(const emulator&) = delete;
    emulator& operator=(const emulator&) = delete;

    // Binds the port, prepares the state folder. False + message on failure.
    bool start(std::string& error);
    // Kills every sandbox (and its processes), closes the listener and connections.
    void stop();

    std::string api_url() const;      // "http://127.0.0.1:PORT" (https with TLS)
    std::string sandbox_url() const;  // the same port serves envd
    const std::string& api_key() const;
    unsigned short port() const noexcept { return port_; }

    // Runtime access for in-process tests (same thread as the io_context).
    emulator_state& state() noexcept { return *state_; }
    boost::json::object stats() const;

private:
    std::shared_ptr<emulator_state> state_;
    std::unique_ptr<http_server> server_;
    std::filesystem::path state_dir_;
    bool own_state_dir_ = false;  // created by us (removed by stop())
    unsigned short port_ = 0;
    bool tls_ = false;
    bool started_ = false;
    bool stopped_ = false;
};

}  // namespace genesis::e2b_emulator
