#include "genesis/launch/results.hpp"
#include "genesis/launch/json_text.hpp"
#include "outcome.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

namespace genesis::launch {
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::optional<std::string> slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    return std::move(ss).str();
}

// Python's json module writes NaN, Infinity and -Infinity, which are not JSON.
// Replace those bare tokens (outside strings) with null; report whether any was.
bool replace_non_finite(std::string& text) {
    std::string out;
    out.reserve(text.size());
    bool in_string = false, replaced = false;
    for (std::size_t i = 0; i < text.size();) {
        char c = text[i];
        if (in_string) {
            out += c;
            if (c == '\\' && i + 1 < text.size()) {
                out += text[i + 1];
                i += 2;
                continue;
            }
            if (c == '"') in_string = false;
            ++i;
            continue;
        }
        if (c == '"') {
            in_string = true;
            out += c;
            ++i;
            continue;
        }
        auto starts = [&](std::string_view tok) { return text.compare(i, tok.size(), tok) == 0; };
        std::size_t len = 0;
        if (starts("-Infinity")) len = 9;
        else if (starts("Infinity")) len = 8;
        else if (starts("NaN")) len = 3;
        if (len) {
            out += "null";
            i += len;
            replaced = true;
            continue;
        }
        out += c;
        ++i;
    }
    if (replaced) text = std::move(out);
    return replaced;
}

std::string describe(const json::value& v) {
    std::string s = json::serialize(v);
    if (s.size() > 80) s = s.substr(0, 77) + "...";
    return s;
}

void read_metrics(const fs::path& dir, std::optional<std::string> text, evaluation_results& r) {
    if (!text) {
        r.warnings.push_back("metrics.json not found in " + dir.string() + "; using {}");
        return;
    }
    boost::system::error_code ec;
    auto v = json::parse(*text, ec);
    if (ec && replace_non_finite(*text)) {
        v = json::parse(*text, ec);
        if (!ec) r.warnings.push_back("metrics.json: NaN/Infinity values replaced by null");
    }
    if (ec) {
        r.warnings.push_back("metrics.json is not valid JSON (" + ec.message() + "); using {}");
        return;
    }
    if (!v.is_object()) {
        r.warnings.push_back("metrics.json is not a JSON object (got " + describe(v) + "); using {}");
        return;
    }
    r.metrics = std::move(v.as_object());
    if (auto* score = r.metrics.if_contains("combined_score")) {
        if (score->is_number()) {
            r.combined_score = score->to_number<double>();
        } else {
            r.warnings.push_back("metrics.json: combined_score is not a number (got " + describe(*score) +
                                 "); using 0.0");
        }
    } else {
        r.warnings.push_back("metrics.json has no combined_score; using 0.0");
    }
}

void read_correct(const fs::path& dir, std::optional<std::string> text, evaluation_results& r) {
    r.correct = false;
    if (!text) {
        r.error = "correct.json not found in " + dir.string() + " (the evaluator did not write it)";
        return;
    }
    boost::system::error_code ec;
    auto v = json::parse(*text, ec);
    if (ec) {
        r.error = "correct.json is not valid JSON (" + ec.message() + ")";
        return;
    }
    if (!v.is_object()) {
        r.error = "correct.json is not a JSON object (got " + describe(v) + ")";
        return;
    }
    const auto& obj = v.as_object();
    std::string error_text;
    if (auto* e = obj.if_contains("error"); e && !e->is_null())
        error_text = e->is_string() ? std::string(e->as_string()) : json::serialize(*e);
    auto* c = obj.if_contains("correct");
    if (!c) {
        r.error = "correct.json has no 'correct' field";
        if (!error_text.empty()) r.error += "; error: " + error_text;
        return;
    }
    if (!c->is_bool()) {
        r.error = "correct.json: 'correct' must be true or false (got " + describe(*c) + ")";
        if (!error_text.empty()) r.error += "; error: " + error_text;
        return;
    }
    r.correct = c->as_bool();
    r.error = std::move(error_text);
}

}  // namespace

evaluation_results read_results(const fs::path& dir) {
    return detail::read_results(dir, std::nullopt, std::nullopt);
}

evaluation_results detail::read_results(const fs::path& dir, std::optional<std::string> metrics_text,
                                        std::optional<std::string> correct_text,
                                        std::optional<std::vector<fs::path>> files) {
    evaluation_results r;
    if (!metrics_text) metrics_text = slurp(dir / "metrics.json");
    if (!correct_text) correct_text = slurp(dir / "correct.json");
    read_metrics(dir, std::move(metrics_text), r);
    read_correct(dir, std::move(correct_text), r);
    if (files) {
        r.files = std::move(*files);
    } else {
        std::error_code ec;
        for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
             !ec && it != end; it.increment(ec)) {
            if (it->is_regular_file(ec)) r.files.push_back(it->path());
        }
    }
    std::sort(r.files.begin(), r.files.end());
    r.files.erase(std::unique(r.files.begin(), r.files.end()), r.files.end());
    return r;
}

std::vector<std::string> evaluator_arguments(const fs::path& evaluator, const fs::path& program,
                                             const fs::path& results_dir, const json::object& extra_args) {
    std::vector<std::string> args{evaluator.string(), "--program_path", program.string(), "--results_dir",
                                  results_dir.string()};
    for (const auto& [key, value] : extra_args) {
        const std::string flag = "--" + std::string(key);
        if (value.is_bool()) {
            if (value.as_bool()) args.push_back(flag);
        } else if (value.is_null()) {
            continue;
        } else if (value.is_string()) {
            args.push_back(flag);
            args.emplace_back(value.as_string());
        } else if (value.is_number()) {
            args.push_back(flag);
            // As Python's str() writes the same value.
            args.push_back(value.is_int64()    ? std::to_string(value.as_int64())
                           : value.is_uint64() ? std::to_string(value.as_uint64())
                                               : number_text(value.as_double()));
        } else {
            args.push_back(flag);
            args.push_back(json_text(value));
        }
    }
    return args;
}

}  // namespace genesis::launch
