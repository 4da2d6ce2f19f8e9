#include "local/spawner.hpp"

extern char** environ;

namespace genesis::launch::detail {

child_environment::child_environment(const std::map<std::string, std::string>& extra, const std::string& tmp,
                  const std::string& marker) {
    std::map<std::string, std::string> vars;
    for (char** e = environ; e && *e; ++e) {
        std::string_view kv = *e;
        auto eq = kv.find('=');
        if (eq == std::string_view::npos) continue;
        vars[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
    }
    vars["PYTHONUNBUFFERED"] = "1";
    vars["PYTHONIOENCODING"] = "utf-8";
    for (const auto& [k, v] : extra) vars[k] = v;
    if (!tmp.empty())
        for (const char* k : {"TMPDIR", "TMP", "TEMP"}) vars[k] = tmp;
    if (!marker.empty()) vars[std::string(job_marker_variable)] = marker;
    for (const auto& [k, v] : vars) entries.push_back(k + "=" + v);
    for (const auto& e : entries) pointers.push_back(e.c_str());
    pointers.push_back(nullptr);
}

std::string child_environment::get(const std::string& key) const {
    for (const auto& e : entries)
        if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
            return e.substr(key.size() + 1);
    return {};
}

}  // namespace genesis::launch::detail
