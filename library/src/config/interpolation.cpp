// interpolation.cpp - ${...} resolution (see interpolation.hpp).
#include "config/interpolation.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <sstream>

namespace genesis::launch::config {

namespace {

std::vector<std::string> split_path(const std::string& path) {
    std::vector<std::string> parts;
    std::stringstream stream(path);
    for (std::string part; std::getline(stream, part, '.');) parts.push_back(part);
    return parts;
}

class interpolator {
public:
    interpolator(node& root, const interpolation_context& ctx) : root_(root), ctx_(ctx) {
        now_ = ctx.now != 0 ? ctx.now : std::time(nullptr);
    }

    std::vector<std::string> run() {
        // Hydra's own node: referable, but kept as written.
        std::optional<node> hydra;
        if (const node* h = root_.find("hydra")) hydra = *h;
        for (auto& [key, value] : root_.entries) {
            if (key == "hydra") continue;
            resolve(value, key);
        }
        if (hydra) *root_.find("hydra") = std::move(*hydra);
        return std::move(notes_);
    }

private:
    struct piece {
        bool is_expression = false;
        std::string text;  // literal text, or the expression between ${ and }
    };

    static bool has_interpolation(const node& n) {
        return n.kind == node_kind::string && n.text.find("${") != std::string::npos;
    }

    [[noreturn]] static void fail(const node& at, const std::string& path, const std::string& message) {
        throw config_failure(at.src.describe() + ": " + (path.empty() ? "" : path + ": ") + message);
    }

    static std::string child_path(const std::string& path, const std::string& key) {
        return path.empty() ? key : path + "." + key;
    }

    bool strict(const std::string& path) const { return !ctx_.strict || ctx_.strict(path); }

    [[noreturn]] void too_large(const node& at, const std::string& path) const {
        throw expansion_failure(at.src.describe() + ": " + (path.empty() ? "" : path + ": ") +
                                "interpolation expands to more than " + std::to_string(max_expanded_nodes) +
                                " values or " + std::to_string(max_expanded_bytes >> 20) +
                                " MiB of text (references repeated in references?); refusing to expand it");
    }

    // Counts what a resolved interpolation added to the tree (a whole-node reference
    // copies the map or list it names), against the same limits as a YAML document.
    void charge(const node& n, const node& at, const std::string& path) {
        ++produced_nodes_;
        produced_bytes_ += n.text.size();
        if (produced_nodes_ > max_expanded_nodes || produced_bytes_ > max_expanded_bytes) too_large(at, path);
        for (const auto& item : n.items) charge(item, at, path);
        for (const auto& entry : n.entries) {
            produced_bytes_ += entry.key.size();
            charge(entry.value, at, path);
        }
    }

    void mark_done(node& n) {
        done_.insert(&n);
        for (auto& item : n.items) mark_done(item);
        for (auto& entry : n.entries) mark_done(entry.value);
    }

    // Resolves `n` and everything below it.
    void resolve(node& n, const std::string& path) {
        if (done_.count(&n)) return;
        if (auto failed = failed_.find(&n); failed != failed_.end()) throw config_failure(failed->second);
        if (active_.count(&n)) fail(n, path, "interpolation refers to itself (cycle)");
        if (has_interpolation(n)) {
            active_.insert(&n);
            try {
                node result = evaluate_string(n, path);
                result.src = n.src;
                active_.erase(&n);
                n = std::move(result);
                charge(n, n, path);
                mark_done(n);
            } catch (const expansion_failure&) {
                active_.erase(&n);
                throw;  // never kept as written: the limit protects this process
            } catch (const config_failure& e) {
                active_.erase(&n);
                if (strict(path) || nested_) throw;
                // An engine key: kept as written, for the engine to resolve.
                failed_[&n] = e.what();
                notes_.push_back(std::string(e.what()) + " (an engine key: kept as written)");
            }
            return;
        }
        active_.insert(&n);
        for (std::size_t i = 0; i < n.items.size(); ++i) resolve(n.items[i], child_path(path, std::to_string(i)));
        for (auto& [key, value] : n.entries) resolve(value, child_path(path, key));
        active_.erase(&n);
        done_.insert(&n);
    }

    static std::vector<piece> split(const node& at, const std::string& path, const std::string& text) {
        std::vector<piece> pieces;
        auto literal = [&](std::string_view s) {
            if (pieces.empty() || pieces.back().is_expression) pieces.push_back({false, {}});
            pieces.back().text += s;
        };
        std::size_t i = 0;
        while (i < text.size()) {
            if (text.compare(i, 3, "\\${") == 0) {
                literal("${");
                i += 3;
            } else if (text.compare(i, 2, "${") == 0) {
                // Find the matching brace; expressions may nest (${oc.env:A,${b}}).
                int depth = 0;
                std::size_t j = i;
                for (; j < text.size(); ++j) {
                    if (text.compare(j, 2, "${") == 0) {
                        ++depth;
                        ++j;
                    } else if (text[j] == '}' && --depth == 0) {
                        break;
                    }
                }
                if (j >= text.size()) fail(at, path, "unterminated interpolation in \"" + text + "\"");
                pieces.push_back({true, text.substr(i + 2, j - i - 2)});
                i = j + 1;
            } else {
                literal(std::string_view(text).substr(i, 1));
                ++i;
            }
        }
        return pieces;
    }

    // A value inserted into a longer string.
    static std::string as_text(const node& value, const node& at, const std::string& path,
                               const std::string& expression) {
        if (value.is_null()) return "None";
        if (!value.is_scalar())
            fail(at, path, "'${" + expression + "}' is " + describe_value(value) +
                               " and cannot be inserted into a string");
        return value.text;
    }

    node evaluate_string(const node& n, const std::string& path) {
        const std::vector<piece> pieces = split(n, path, n.text);
        if (pieces.size() == 1 && pieces.front().is_expression)
            return evaluate_expression(pieces.front().text, n, path);
        std::string out;
        for (const auto& p : pieces) {
            out += p.is_expression ? as_text(evaluate_expression(p.text, n, path), n, path, p.text) : p.text;
            if (out.size() > max_expanded_bytes) too_large(n, path);
        }
        return node::make_string(std::move(out), n.src);
    }

    // Resolver arguments: "A,B" -> {"A", "B"} (only the first comma splits).
    static std::pair<std::string, std::optional<std::string>> split_argument(const std::string& args) {
        const auto comma = args.find(',');
        if (comma == std::string::npos) return {trim(args), std::nullopt};
        return {trim(args.substr(0, comma)), trim(args.substr(comma + 1))};
    }

    static bool is_quoted(const std::string& s) {
        return s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front();
    }

    node evaluate_expression(std::string expression, const node& at, const std::string& path) {
        const std::string original = expression;
        // Nested interpolations inside an expression are replaced textually first.
        if (expression.find("${") != std::string::npos) {
            node inner = node::make_string(expression, at.src);
            expression = evaluate_string(inner, path).text;
        }

        const auto colon = expression.find(':');
        const std::string name = colon == std::string::npos ? "" : trim(expression.substr(0, colon));
        const bool is_resolver = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
        });
        if (!is_resolver) return copy_of_key(absolute_key(trim(expression), path), at, path, original, false).value();

        const std::string args = expression.substr(colon + 1);
        if (name == "oc.env") {
            auto [variable, fallback] = split_argument(args);
            std::optional<std::string> value;
            if (ctx_.getenv) value = ctx_.getenv(variable);
            else if (const char* v = std::getenv(variable.c_str())) value = std::string(v);
            if (value) return node::make_string(*value, at.src);
            if (!fallback)
                fail(at, path, "cannot resolve '${" + original + "}': environment variable '" + variable + "' is not set");
            if (*fallback == "null") return node::make_null(at.src);
            return node::make_string(is_quoted(*fallback) ? fallback->substr(1, fallback->size() - 2) : *fallback, at.src);
        }
        if (name == "oc.select") {
            auto [key, fallback] = split_argument(args);
            if (auto value = copy_of_key(absolute_key(key, path), at, path, original, true)) return *value;
            if (!fallback) return node::make_null(at.src);
            if (is_quoted(*fallback)) return node::make_string(fallback->substr(1, fallback->size() - 2), at.src);
            return scalar_from_plain_text(*fallback, at.src);
        }
        if (name == "oc.decode") return parse_yaml_value(trim(args), at.src);
        if (name == "now") {
            // One instant per load, like Hydra's cached resolver: ${now:%Y.%m.%d}${now:%H%M%S} agree.
            std::tm local{};
            localtime_r(&now_, &local);
            std::array<char, 256> buffer{};
            const std::size_t size = std::strftime(buffer.data(), buffer.size(), args.c_str(), &local);
            return node::make_string(std::string(buffer.data(), size), at.src);
        }
        if (name == "hydra") {
            const std::string key = trim(args);
            if (key == "runtime.cwd") return node::make_string(ctx_.working_dir.string(), at.src);
            if (key == "runtime.output_dir") {
                if (auto dir = copy_of_key("hydra.run.dir", at, path, original, true)) return *dir;
                // Hydra's own default.
                node fallback = node::make_string("outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}", at.src);
                return evaluate_string(fallback, path);
            }
            if (auto value = copy_of_key("hydra." + key, at, path, original, true)) return *value;
            fail(at, path, "cannot resolve '${" + original + "}': 'hydra." + key +
                               "' is set by Hydra at run time; genesis-launch knows runtime.cwd, runtime.output_dir "
                               "and the keys under the config's own 'hydra:' node");
        }
        fail(at, path, "cannot resolve '${" + original + "}': unknown resolver '" + name + "'");
    }

    // `.x` and `..x` relative to the node at `path`; anything else unchanged.
    static std::string absolute_key(const std::string& key, const std::string& path) {
        if (!key.starts_with(".")) return key;
        std::size_t dots = 0;
        while (dots < key.size() && key[dots] == '.') ++dots;
        std::vector<std::string> base = split_path(path);
        // One dot: the node's own container; each further dot one level up.
        for (std::size_t i = 0; i < dots && !base.empty(); ++i) base.pop_back();
        if (dots > split_path(path).size()) return key;  // above the root: reported as invalid
        std::string out;
        for (const auto& part : base) out += part + ".";
        return out + key.substr(dots);
    }

    // A resolved copy of the value at dotted `key`; nullopt (when `optional`) or an
    // error when there is no such key.
    std::optional<node> copy_of_key(const std::string& key, const node& at, const std::string& path,
                                    const std::string& expression, bool optional) {
        auto missing = [&](const std::string& why) -> std::optional<node> {
            if (optional) return std::nullopt;
            fail(at, path, "cannot resolve '${" + expression + "}': " + why);
        };
        if (key.empty() || key.front() == '.' || key.back() == '.')
            return missing("invalid key '" + key + "'");

        node* current = &root_;
        std::string current_path;
        std::stringstream stream(key);
        for (std::string segment; std::getline(stream, segment, '.');) {
            // An interpolated string may stand for a map: resolve it before descending.
            if (has_interpolation(*current)) resolve_referenced(*current, current_path);
            node* next = nullptr;
            if (current->is_map()) {
                next = current->find(segment);
            } else if (current->is_sequence()) {
                std::size_t index = 0;
                auto [end, ec] = std::from_chars(segment.data(), segment.data() + segment.size(), index);
                if (ec == std::errc{} && end == segment.data() + segment.size() && index < current->items.size())
                    next = &current->items[index];
            }
            if (next == nullptr) return missing("key '" + key + "' is not in the config");
            current = next;
            current_path = child_path(current_path, segment);
        }
        resolve_referenced(*current, current_path);
        if (is_missing_value(*current))
            fail(at, path, "cannot resolve '${" + expression + "}': '" + key + "' is ??? (a mandatory value that is not set)");
        return *current;
    }

    // A node reached through a reference: its failures belong to the referring key.
    void resolve_referenced(node& n, const std::string& path) {
        const bool outer = nested_;
        nested_ = true;
        try {
            resolve(n, path);
        } catch (...) {
            nested_ = outer;
            throw;
        }
        nested_ = outer;
    }

    node& root_;
    const interpolation_context& ctx_;
    std::time_t now_;
    bool nested_ = false;  // inside a reference: failures go to the referring key
    std::size_t produced_nodes_ = 0;  // values and bytes interpolation added (see charge)
    std::size_t produced_bytes_ = 0;
    std::set<const node*> done_;
    std::set<const node*> active_;
    std::map<const node*, std::string> failed_;
    std::vector<std::string> notes_;
};

}  // namespace

std::vector<std::string> resolve_interpolations(node& root, const interpolation_context& ctx) {
    return interpolator(root, ctx).run();
}

}  // namespace genesis::launch::config
