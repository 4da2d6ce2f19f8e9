// genesis_e2b_emulator: a local service that speaks the E2B wire protocol
// (control plane + envd on one port), for the official SDKs and our client.
//
// Prints one JSON line on stdout when ready:
//   {"api_url":...,"sandbox_url":...,"api_key":...,"port":N,"pid":N,"tls":false}
// SIGINT/SIGTERM stop it cleanly (sandboxes killed, own state folder removed).
#include "emulator.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

namespace emu = genesis::e2b_emulator;
namespace asio = boost::asio;

namespace {

constexpr std::string_view usage =
    "usage: genesis_e2b_emulator [options]\n"
    "  --host ADDR        address to listen on (default 127.0.0.1)\n"
    "  --port N           port (default 0: any free port)\n"
    "  --tls-cert FILE    serve HTTPS with this certificate chain (PEM)...\n"
    "  --tls-key FILE     ...and this private key (PEM)\n"
    "  --config FILE      YAML settings (templates, latency, faults, limits)\n"
    "  --api-key KEY      the accepted API key, e2b_<hex> (default: generated)\n"
    "  --state-dir DIR    where sandbox folders live (default: a new temporary folder)\n"
    "  --bench            benchmark mode: instant commands, uploads discarded, fixed downloads\n"
    "  --verbose          log one line per request on stderr\n"
    "  --help             this text\n";

struct command_line {
    std::optional<std::string> host, port, tls_cert, tls_key, config, api_key, state_dir;
    bool verbose = false;
    bool bench = false;
    bool help = false;
};

// Parses "--flag value" and "--flag=value". Error message, or empty.
std::string parse(int argc, char** argv, command_line& cl) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--verbose") {
            cl.verbose = true;
            continue;
        }
        if (arg == "--bench") {
            cl.bench = true;
            continue;
        }
        if (arg == "--help" || arg == "-h") {
            cl.help = true;
            continue;
        }
        std::string name(arg.substr(0, arg.find('=')));
        std::optional<std::string>* slot = name == "--host"        ? &cl.host
                                           : name == "--port"      ? &cl.port
                                           : name == "--tls-cert"  ? &cl.tls_cert
                                           : name == "--tls-key"   ? &cl.tls_key
                                           : name == "--config"    ? &cl.config
                                           : name == "--api-key"   ? &cl.api_key
                                           : name == "--state-dir" ? &cl.state_dir
                                                                   : nullptr;
        if (!slot) return "unknown option '" + std::string(arg) + "'";
        if (name.size() < arg.size()) {
            *slot = std::string(arg.substr(name.size() + 1));
        } else if (i + 1 < argc) {
            *slot = argv[++i];
        } else {
            return "option '" + name + "' needs a value";
        }
    }
    return {};
}

std::string apply(const command_line& cl, emu::emulator_options& o) {
    if (cl.config) {
        if (auto err = emu::load_options_file(*cl.config, o); !err.empty()) return err;
    }
    if (cl.host) o.host = *cl.host;
    if (cl.port) {
        try {
            std::size_t used = 0;
            int port = std::stoi(*cl.port, &used);
            if (used != cl.port->size() || port < 0 || port > 65535) throw std::out_of_range("port");
            o.port = static_cast<unsigned short>(port);
        } catch (const std::exception&) {
            return "--port: expected a number from 0 to 65535, got '" + *cl.port + "'";
        }
    }
    if (cl.tls_cert) o.tls_cert = *cl.tls_cert;
    if (cl.tls_key) o.tls_key = *cl.tls_key;
    if (cl.api_key) o.api_key = *cl.api_key;
    if (cl.state_dir) o.state_dir = *cl.state_dir;
    if (cl.bench) o.bench = true;
    if (o.tls_cert.empty() != o.tls_key.empty()) return "--tls-cert and --tls-key go together";
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    command_line cl;
    if (auto err = parse(argc, argv, cl); !err.empty()) {
        std::cerr << "genesis_e2b_emulator: " << err << "\n" << usage;
        return 2;
    }
    if (cl.help) {
        std::cout << usage;
        return 0;
    }
    emu::emulator_options options;
    if (auto err = apply(cl, options); !err.empty()) {
        std::cerr << "genesis_e2b_emulator: " << err << "\n";
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);

    asio::io_context io;
    emu::emulator emulator(io.get_executor(), options);
    if (cl.verbose) emulator.state().request_log = [](const std::string& line) { std::cerr << line << std::endl; };
    std::string error;
    if (!emulator.start(error)) {
        std::cerr << "genesis_e2b_emulator: " << error << "\n";
        return 1;
    }

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (ec) return;
        emulator.stop();
        io.stop();
    });

    boost::json::object ready{{"api_url", emulator.api_url()},
                              {"sandbox_url", emulator.sandbox_url()},
                              {"api_key", emulator.api_key()},
                              {"port", emulator.port()},
                              {"pid", static_cast<std::int64_t>(::getpid())},
                              {"tls", emulator.api_url().starts_with("https")}};
    std::cout << boost::json::serialize(ready) << std::endl;

    io.run();
    // Let closing connections and killed processes finish, briefly.
    io.restart();
    io.run_for(std::chrono::seconds(2));
    return 0;
}
