#include "options.hpp"

#include "faults.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <functional>
#include <limits>
#include <map>
#include <vector>

namespace genesis::e2b_emulator {

namespace {

// Thrown inside this file only; becomes load_options_file's error message.
struct config_error {
    std::string message;
};

[[noreturn]] void fail(const std::string& key, const std::string& what) {
    throw config_error{"key '" + key + "': " + what};
}

template <class T>
T scalar(const YAML::Node& node, const std::string& key, const char* expected) {
    if (!node.IsScalar()) fail(key, std::string("expected ") + expected);
    try {
        return node.as<T>();
    } catch (const YAML::Exception&) {
        fail(key, std::string("expected ") + expected + ", got '" + node.Scalar() + "'");
    }
}

int integer(const YAML::Node& node, const std::string& key, long min, long max) {
    auto v = scalar<long>(node, key, "an integer");
    if (v < min || v > max) fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return static_cast<int>(v);
}

int non_negative(const YAML::Node& node, const std::string& key) {
    return integer(node, key, 0, std::numeric_limits<int>::max());
}

std::string text(const YAML::Node& node, const std::string& key) { return scalar<std::string>(node, key, "a string"); }

bool boolean(const YAML::Node& node, const std::string& key) { return scalar<bool>(node, key, "true or false"); }

// Calls `each(key, value, "<path>.<key>")` for every member of a map.
void for_each_member(const YAML::Node& node, const std::string& path,
                     const std::function<void(const std::string&, const YAML::Node&, const std::string&)>& each) {
    if (node.IsNull()) return;
    if (!node.IsMap()) fail(path, "expected a map");
    for (const auto& member : node) {
        auto name = member.first.as<std::string>();
        each(name, member.second, path.empty() ? name : path + "." + name);
    }
}

std::map<std::string, std::string> string_map(const YAML::Node& node, const std::string& path) {
    std::map<std::string, std::string> out;
    for_each_member(node, path,
                    [&](const std::string& k, const YAML::Node& v, const std::string& p) { out[k] = text(v, p); });
    return out;
}

// A path from the config, relative to the config file's folder.
std::filesystem::path config_path(const YAML::Node& node, const std::string& key, const std::filesystem::path& base) {
    std::filesystem::path p = text(node, key);
    return p.is_relative() ? base / p : p;
}

bool is_semver(const std::string& v) {
    int dots = 0;
    bool digit_seen = false;
    for (char c : v) {
        if (c == '.') {
            if (!digit_seen) return false;
            ++dots;
            digit_seen = false;
        } else if (std::isdigit(static_cast<unsigned char>(c))) {
            digit_seen = true;
        } else {
            return false;
        }
    }
    return dots == 2 && digit_seen;
}

// Reads the members of a map through a table of per-key readers; an unknown key
// is an error that lists the known ones.
using member_reader = std::function<void(const YAML::Node& value, const std::string& path)>;

void read_members(const YAML::Node& node, const std::string& path, const std::map<std::string, member_reader>& readers) {
    for_each_member(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& p) {
        auto it = readers.find(key);
        if (it != readers.end()) return it->second(value, p);
        std::string known;
        for (const auto& [name, reader] : readers) known += (known.empty() ? "" : ", ") + name;
        fail(p, "unknown key (known: " + known + ")");
    });
}

template_spec read_template(const std::string& name, const YAML::Node& node, const std::string& path) {
    template_spec t;
    t.name = name;
    constexpr long max_int = std::numeric_limits<int>::max();
    read_members(node, path,
                 {
                     {"python", [&](auto& v, auto& p) { t.python = text(v, p); }},
                     {"env", [&](auto& v, auto& p) { t.env = string_map(v, p); }},
                     {"internet", [&](auto& v, auto& p) { t.internet = boolean(v, p); }},
                     {"cpu_count", [&](auto& v, auto& p) { t.cpu_count = integer(v, p, 1, 1024); }},
                     {"memory_mb", [&](auto& v, auto& p) { t.memory_mb = integer(v, p, 1, max_int); }},
                     {"disk_size_mb", [&](auto& v, auto& p) { t.disk_size_mb = integer(v, p, 1, max_int); }},
                 });
    return t;
}

fault_rule read_fault(const YAML::Node& node, const std::string& path) {
    if (!node.IsMap()) fail(path, "expected a map");
    fault_rule f;
    read_members(node, path,
                 {
                     {"endpoint", [&](auto& v, auto& p) { f.endpoint = text(v, p); }},
                     {"kind", [&](auto& v, auto& p) { f.kind = text(v, p); }},
                     {"status", [&](auto& v, auto& p) { f.status = integer(v, p, 400, 599); }},
                     {"retry_after", [&](auto& v, auto& p) { f.retry_after = non_negative(v, p); }},
                     {"message", [&](auto& v, auto& p) { f.message = text(v, p); }},
                     {"skip", [&](auto& v, auto& p) { f.skip = non_negative(v, p); }},
                     {"count", [&](auto& v, auto& p) { f.count = integer(v, p, -1, std::numeric_limits<int>::max()); }},
                     {"after_events", [&](auto& v, auto& p) { f.after_events = non_negative(v, p); }},
                     {"after_ms", [&](auto& v, auto& p) { f.after_ms = non_negative(v, p); }},
                     {"probability", [&](auto& v, auto& p) { f.probability = scalar<double>(v, p, "a number"); }},
                 });
    if (!node["endpoint"]) fail(path + ".endpoint", "is required");
    if (auto err = validate_fault(f); !err.empty()) fail(path, err);
    return f;
}

std::vector<fake_entry> read_fake_entries(const YAML::Node& node, const std::string& path) {
    std::vector<fake_entry> entries;
    if (node.IsNull()) return entries;
    if (!node.IsSequence()) fail(path, "expected a list");
    for (std::size_t i = 0; i < node.size(); ++i) {
        const std::string ip = path + "[" + std::to_string(i) + "]";
        if (!node[i].IsMap()) fail(ip, "expected a map");
        fake_entry e;
        read_members(node[i], ip,
                     {
                         {"path", [&](auto& v, auto& p) { e.path = text(v, p); }},
                         {"type", [&](auto& v, auto& p) { e.type = text(v, p); }},
                         {"content", [&](auto& v, auto& p) { e.content = text(v, p); }},
                     });
        if (e.path.empty()) fail(ip + ".path", "is required");
        if (e.type != "file" && e.type != "directory" && e.type != "symlink")
            fail(ip + ".type", "must be file, directory or symlink");
        entries.push_back(std::move(e));
    }
    return entries;
}

std::vector<fault_rule> read_faults(const YAML::Node& node, const std::string& path) {
    std::vector<fault_rule> faults;
    if (node.IsNull()) return faults;
    if (!node.IsSequence()) fail(path, "expected a list");
    for (std::size_t i = 0; i < node.size(); ++i)
        faults.push_back(read_fault(node[i], path + "[" + std::to_string(i) + "]"));
    return faults;
}

void read_top_level(const YAML::Node& root, const std::filesystem::path& base, emulator_options& o) {
    if (!root.IsNull() && !root.IsMap()) throw config_error{"the file must hold a map of settings"};
    auto version = [&](const YAML::Node& v, const std::string& p) {
        o.envd_version = text(v, p);
        if (!is_semver(o.envd_version)) fail(p, "must be a version MAJOR.MINOR.PATCH, e.g. 0.6.13");
    };
    auto templates = [&](const YAML::Node& v, const std::string& p) {
        for_each_member(v, p, [&](const std::string& name, const YAML::Node& t, const std::string& tp) {
            o.templates[name] = read_template(name, t, tp);
        });
    };
    auto endpoint_latency = [&](const YAML::Node& v, const std::string& p) {
        for_each_member(v, p, [&](const std::string& name, const YAML::Node& ms, const std::string& mp) {
            o.endpoint_latency[name] = std::chrono::milliseconds(non_negative(ms, mp));
        });
    };
    auto rate = [&](const YAML::Node& v, const std::string& p) {
        o.create_rate_per_second = scalar<double>(v, p, "a number");
        if (o.create_rate_per_second < 0) fail(p, "must be >= 0");
    };
    read_members(
        root, "",
        {
            {"host", [&](auto& v, auto& p) { o.host = text(v, p); }},
            {"port", [&](auto& v, auto& p) { o.port = static_cast<unsigned short>(integer(v, p, 0, 65535)); }},
            {"api_key", [&](auto& v, auto& p) { o.api_key = text(v, p); }},
            {"domain", [&](auto& v, auto& p) { o.domain = text(v, p); }},
            {"state_dir", [&](auto& v, auto& p) { o.state_dir = config_path(v, p, base); }},
            {"tls_cert", [&](auto& v, auto& p) { o.tls_cert = config_path(v, p, base); }},
            {"tls_key", [&](auto& v, auto& p) { o.tls_key = config_path(v, p, base); }},
            {"envd_version", version},
            {"templates", templates},
            {"latency_ms", [&](auto& v, auto& p) { o.latency = std::chrono::milliseconds(non_negative(v, p)); }},
            {"endpoint_latency_ms", endpoint_latency},
            {"faults", [&](auto& v, auto& p) { o.faults = read_faults(v, p); }},
            {"max_concurrent_sandboxes", [&](auto& v, auto& p) { o.max_concurrent_sandboxes = non_negative(v, p); }},
            {"create_rate_per_second", rate},
            {"max_timeout_seconds",
             [&](auto& v, auto& p) { o.max_timeout_seconds = integer(v, p, 1, std::numeric_limits<int>::max()); }},
            {"seed", [&](auto& v, auto& p) { o.seed = static_cast<std::uint64_t>(non_negative(v, p)); }},
            {"fake_entries", [&](auto& v, auto& p) { o.fake_entries = read_fake_entries(v, p); }},
            {"bench", [&](auto& v, auto& p) { o.bench = boolean(v, p); }},
        });
}

}  // namespace

std::string bench_file_content(std::string_view path) {
    const std::string_view name = path.substr(path.rfind('/') + 1);
    if (name == "metrics.json") return "{\"combined_score\": 1.0, \"public\": {}, \"private\": {}}\n";
    if (name == "correct.json") return "{\"correct\": true, \"error\": null}\n";
    return "bench\n";
}

std::string load_options_file(const std::filesystem::path& file, emulator_options& options) {
    YAML::Node root;
    try {
        root = YAML::LoadFile(file.string());
    } catch (const YAML::BadFile&) {
        return "cannot read config file '" + file.string() + "'";
    } catch (const YAML::Exception& e) {
        return file.string() + ": " + e.what();
    }
    emulator_options updated = options;
    try {
        read_top_level(root, file.parent_path(), updated);
    } catch (const config_error& e) {
        return file.string() + ": " + e.message;
    } catch (const YAML::Exception& e) {
        return file.string() + ": " + e.what();
    }
    options = std::move(updated);
    return {};
}

}  // namespace genesis::e2b_emulator
