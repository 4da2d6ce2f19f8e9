// yaml_tree.cpp - the configuration tree: building from yaml-cpp, merging, JSON.
#include "config/yaml_tree.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

namespace genesis::launch::config {

config_failure::config_failure(const std::string& message) : std::runtime_error(message) {}

std::string source::describe() const {
    if (!override_text.empty()) return "command line override '" + override_text + "'";
    if (line > 0) return file + ":" + std::to_string(line);
    return file;
}

// ---- node ------------------------------------------------------------------------

node node::make_map(source src) {
    node n;
    n.kind = node_kind::map;
    n.src = std::move(src);
    return n;
}

node node::make_string(std::string value, source src) {
    node n;
    n.kind = node_kind::string;
    n.text = std::move(value);
    n.src = std::move(src);
    return n;
}

node node::make_null(source src) {
    node n;
    n.src = std::move(src);
    return n;
}

node* node::find(std::string_view key) {
    if (kind != node_kind::map) return nullptr;
    for (auto& [k, v] : entries)
        if (k == key) return &v;
    return nullptr;
}

const node* node::find(std::string_view key) const {
    return const_cast<node*>(this)->find(key);
}

node& node::set(std::string key, node value) {
    if (node* existing = find(key)) {
        *existing = std::move(value);
        return *existing;
    }
    entries.push_back(map_entry{std::move(key), std::move(value)});
    return entries.back().value;
}

bool node::erase(std::string_view key) {
    auto it = std::find_if(entries.begin(), entries.end(),
                           [&](const auto& entry) { return entry.key == key; });
    if (it == entries.end()) return false;
    entries.erase(it);
    return true;
}

std::vector<std::string> node::keys() const {
    std::vector<std::string> out;
    out.reserve(entries.size());
    for (const auto& entry : entries) out.push_back(entry.key);
    return out;
}

// ---- scalar typing ---------------------------------------------------------------

namespace {

bool all_of_digits(std::string_view s, int base) {
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(), [base](char c) {
        if (base == 8) return c >= '0' && c <= '7';
        if (base == 16) return std::isxdigit(static_cast<unsigned char>(c)) != 0;
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
    });
}

// YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool looks_like_float(std::string_view s) {
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t int_digits = 0, frac_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++int_digits;
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++frac_digits;
    }
    if (int_digits == 0 && frac_digits == 0) return false;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        std::size_t exp_digits = 0;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp_digits;
        if (exp_digits == 0) return false;
    }
    return i == s.size();
}

}  // namespace

node scalar_from_plain_text(std::string text, source src) {
    node n;
    n.src = std::move(src);
    const std::string_view s = text;

    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
        n.kind = node_kind::null;
    } else if (s == "true" || s == "True" || s == "TRUE") {
        n.kind = node_kind::boolean;
        n.bool_value = true;
    } else if (s == "false" || s == "False" || s == "FALSE") {
        n.kind = node_kind::boolean;
        n.bool_value = false;
    } else {
        // Integers: decimal with optional sign, 0x hex, 0o octal.
        std::string_view digits = s;
        bool negative = false;
        int base = 10;
        if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
            negative = digits[0] == '-';
            digits.remove_prefix(1);
        }
        if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'o') &&
            s[0] != '+' && s[0] != '-') {
            base = digits[1] == 'x' ? 16 : 8;
            digits.remove_prefix(2);
        }
        if (all_of_digits(digits, base)) {
            std::uint64_t magnitude = 0;
            auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(),
                                             magnitude, base);
            const std::uint64_t limit =
                negative ? std::uint64_t{1} << 63
                         : static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
            if (ec == std::errc{} && end == digits.data() + digits.size() && magnitude <= limit) {
                n.kind = node_kind::integer;
                n.int_value = negative ? static_cast<std::int64_t>(0 - magnitude)
                                       : static_cast<std::int64_t>(magnitude);
            } else {
                // Too large for 64 bits: keep it as a float, like most YAML loaders.
                n.kind = node_kind::floating;
                n.float_value = std::strtod(text.c_str(), nullptr);
            }
        } else if (looks_like_float(s)) {
            std::string_view unsigned_part = s[0] == '+' ? s.substr(1) : s;
            double value = 0.0;
            auto [end, ec] = std::from_chars(unsigned_part.data(),
                                             unsigned_part.data() + unsigned_part.size(), value);
            if (ec == std::errc::result_out_of_range)
                value = (s[0] == '-' ? -1.0 : 1.0) * std::numeric_limits<double>::infinity();
            (void)end;
            n.kind = node_kind::floating;
            n.float_value = value;
        } else if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf" || s == "+.Inf" ||
                   s == "+.INF") {
            n.kind = node_kind::floating;
            n.float_value = std::numeric_limits<double>::infinity();
        } else if (s == "-.inf" || s == "-.Inf" || s == "-.INF") {
            n.kind = node_kind::floating;
            n.float_value = -std::numeric_limits<double>::infinity();
        } else if (s == ".nan" || s == ".NaN" || s == ".NAN") {
            n.kind = node_kind::floating;
            n.float_value = std::numeric_limits<double>::quiet_NaN();
        } else {
            n.kind = node_kind::string;
        }
    }
    n.text = std::move(text);
    return n;
}

// ---- from yaml-cpp -----------------------------------------------------------------

namespace {

int line_of(const YAML::Node& yaml, int fallback) {
    const YAML::Mark mark = yaml.Mark();
    return mark.line >= 0 ? mark.line + 1 : fallback;
}

// What one document has produced so far: yaml-cpp shares an aliased node, this tree
// copies it, so nested aliases multiply (nine levels of nine: 9^9 values).
// Errors name the top-level key being expanded, at its line: an aliased node's own
// position is its anchor's, which says little about where it was multiplied.
struct expansion_budget {
    std::size_t nodes = 0;
    std::size_t bytes = 0;
    std::string top_key;
    int top_line = 0;
};

void charge(expansion_budget& budget, std::size_t bytes, const std::string& file, int line, const std::string& path) {
    ++budget.nodes;
    budget.bytes += bytes;
    const std::string& key = budget.top_key.empty() ? path : budget.top_key;
    if (budget.nodes > max_expanded_nodes || budget.bytes > max_expanded_bytes)
        throw expansion_failure(source::from_file(file, budget.top_line > 0 ? budget.top_line : line).describe() +
                                ": " + (key.empty() ? "" : key + ": ") +
                                "the document expands to more than " +
                                (budget.nodes > max_expanded_nodes ? std::to_string(max_expanded_nodes) + " values"
                                                                   : std::to_string(max_expanded_bytes >> 20) + " MiB of text") +
                                " (YAML aliases nested in aliases?); refusing to expand it");
}

node convert(const YAML::Node& yaml, const std::string& file, int line, const std::string& path,
             expansion_budget& budget) {
    charge(budget, yaml.IsScalar() ? yaml.Scalar().size() : 0, file, line, path);
    switch (yaml.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
        return node::make_null(source::from_file(file, line));
    case YAML::NodeType::Scalar: {
        const std::string& tag = yaml.Tag();
        // "?" = plain scalar (typed by its text); "!" = quoted scalar (always a
        // string); an explicit !!str tag is a string too. Other explicit tags are
        // typed by the text, as yaml-cpp does not interpret them.
        if (tag == "!" || tag == "tag:yaml.org,2002:str")
            return node::make_string(yaml.Scalar(), source::from_file(file, line));
        return scalar_from_plain_text(yaml.Scalar(), source::from_file(file, line));
    }
    case YAML::NodeType::Sequence: {
        node n;
        n.kind = node_kind::sequence;
        n.src = source::from_file(file, line);
        std::size_t index = 0;
        for (const auto& item : yaml) {
            n.items.push_back(convert(item, file, line_of(item, line),
                                      path + (path.empty() ? "" : ".") + std::to_string(index), budget));
            ++index;
        }
        return n;
    }
    case YAML::NodeType::Map: {
        node n = node::make_map(source::from_file(file, line));
        for (const auto& pair : yaml) {
            // yaml-cpp yields key/value pairs by value: keep `pair` alive while used.
            const YAML::Node& key = pair.first;
            const int key_line = line_of(key, line);
            if (!key.IsScalar())
                throw config_failure(source::from_file(file, key_line).describe() + ": " +
                                     (path.empty() ? "" : path + ": ") +
                                     "map keys must be plain strings");
            const std::string name = key.Scalar();
            const std::string child_path = path.empty() ? name : path + "." + name;
            if (n.find(name))
                throw config_failure(source::from_file(file, key_line).describe() + ": " +
                                     child_path + ": duplicate key");
            // A map entry is located at its key's line (the value of `a:` followed by
            // an indented block starts on the next line).
            if (path.empty()) {
                budget.top_key = name;
                budget.top_line = key_line;
            }
            charge(budget, name.size(), file, key_line, child_path);
            n.entries.push_back(map_entry{name, convert(pair.second, file, key_line, child_path, budget)});
        }
        return n;
    }
    }
    return node::make_null(source::from_file(file, line));
}

void set_source_recursive(node& n, const source& src) {
    n.src = src;
    for (auto& item : n.items) set_source_recursive(item, src);
    for (auto& entry : n.entries) set_source_recursive(entry.value, src);
}

}  // namespace

node from_yaml(const YAML::Node& yaml, const std::string& file, int fallback_line) {
    expansion_budget budget;
    return convert(yaml, file, line_of(yaml, fallback_line), "", budget);
}

node load_yaml_file(const std::filesystem::path& path, const std::string& display) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_failure(display + ": cannot read the file");
    std::stringstream buffer;
    buffer << in.rdbuf();

    YAML::Node yaml;
    try {
        yaml = YAML::Load(buffer.str());
    } catch (const YAML::Exception& e) {
        const int line = e.mark.line >= 0 ? e.mark.line + 1 : 1;
        throw config_failure(source::from_file(display, line).describe() +
                             ": YAML syntax error: " + e.msg);
    }
    if (yaml.IsNull() || !yaml.IsDefined()) return node::make_map(source::from_file(display, 1));
    node tree = from_yaml(yaml, display, 1);
    if (!tree.is_map())
        throw config_failure(tree.src.describe() + ": the top level must be a map, got " +
                             describe_value(tree));
    return tree;
}

node parse_yaml_value(std::string_view text, const source& src) {
    if (text.empty()) return node::make_string({}, src);
    YAML::Node yaml;
    try {
        yaml = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        throw config_failure(src.describe() + ": invalid YAML value: " + e.msg);
    }
    node value;
    try {
        value = from_yaml(yaml, {}, 0);
    } catch (const expansion_failure& e) {
        const std::string what = e.what();
        throw expansion_failure(src.describe() + ": " + what.substr(what.find(": ") + 2));
    } catch (const config_failure&) {
        throw config_failure(src.describe() + ": invalid YAML value: duplicate or non-scalar map key");
    }
    set_source_recursive(value, src);
    return value;
}

// ---- merge / edit ------------------------------------------------------------------

void merge_into(node& base, const node& overlay) {
    if (base.is_map() && overlay.is_map()) {
        for (const auto& [key, value] : overlay.entries) {
            if (node* existing = base.find(key))
                merge_into(*existing, value);
            else
                base.entries.push_back(map_entry{key, value});
        }
        return;
    }
    base = overlay;
}

boost::json::value to_json(const node& tree) {
    switch (tree.kind) {
    case node_kind::null: return nullptr;
    case node_kind::boolean: return tree.bool_value;
    case node_kind::integer: return tree.int_value;
    case node_kind::floating: return tree.float_value;
    case node_kind::string: return boost::json::string(tree.text);
    case node_kind::sequence: {
        boost::json::array array;
        array.reserve(tree.items.size());
        for (const auto& item : tree.items) array.push_back(to_json(item));
        return array;
    }
    case node_kind::map: {
        boost::json::object object;
        for (const auto& [key, value] : tree.entries) object[key] = to_json(value);
        return object;
    }
    }
    return nullptr;
}

std::string describe_value(const node& value) {
    switch (value.kind) {
    case node_kind::null: return "null";
    case node_kind::sequence: return "a list";
    case node_kind::map: return "a map";
    case node_kind::string: {
        constexpr std::size_t max_chars = 60;
        std::string shown = value.text.size() > max_chars ? value.text.substr(0, max_chars) + "..."
                                                          : value.text;
        // JSON quoting escapes newlines and control characters: the message stays one line.
        return boost::json::serialize(boost::json::value(boost::json::string(shown)));
    }
    default: return value.text;
    }
}

// ---- did you mean ------------------------------------------------------------------

namespace {

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Optimal string alignment distance. With `free_ends`, skipping characters of `b`
// at both ends costs nothing: the distance of `a` to the closest substring of `b`.
std::size_t osa_distance(std::string_view a, std::string_view b, bool free_ends) {
    const std::size_t n = a.size(), m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1, 0));
    for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j) d[0][j] = free_ends ? 0 : j;
    for (std::size_t i = 1; i <= n; ++i) {
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    if (!free_ends) return d[n][m];
    return *std::min_element(d[n].begin(), d[n].end());
}

}  // namespace

std::string trim(std::string_view s) {
    std::size_t begin = 0, end = s.size();
    while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
    while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
    return std::string(s.substr(begin, end - begin));
}

std::vector<std::string> yaml_names_in(const std::filesystem::path& folder) {
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        const std::filesystem::path& p = it->path();
        if (p.extension() == ".yaml" && it->is_regular_file(ec) && !p.stem().empty())
            names.push_back(p.stem().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    return osa_distance(a, b, false);
}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
    const std::string w = lowercase(word);
    std::optional<std::string> best;
    std::size_t best_score = std::numeric_limits<std::size_t>::max();
    for (const auto& candidate : candidates) {
        const std::string c = lowercase(candidate);
        if (c == w) {
            if (candidate != word) return candidate;  // differs only in case
            continue;
        }
        std::size_t score = std::numeric_limits<std::size_t>::max();
        // A few typos, relative to the length of the words.
        const std::size_t distance = osa_distance(w, c, false);
        if (distance <= 2 || distance * 3 <= std::max(w.size(), c.size())) score = distance;
        // A (nearly) contained word: "circle_pakcing" for "circle_packing_example".
        if (w.size() >= 4) {
            const std::size_t inside = osa_distance(w, c, true);
            if (inside <= w.size() / 5) score = std::min(score, inside);
        }
        if (score < best_score) {
            best_score = score;
            best = candidate;
        }
    }
    return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
    if (auto match = closest_match(word, candidates)) return " (did you mean '" + *match + "'?)";
    return {};
}

}  // namespace genesis::launch::config
