// Fuzz target: parse_dotenv (the `.env` credentials file). Properties: it never
// throws, every key is a valid variable name, and parsing is deterministic.
#include "genesis/launch/config.hpp"
#include "fuzz_check.hpp"

#include <cctype>

using genesis_fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = genesis_fuzz::as_text(data, size);
    const auto vars = genesis::launch::parse_dotenv(text);
    for (const auto& [key, value] : vars) {
        check(!key.empty(), "empty key");
        const auto first = static_cast<unsigned char>(key.front());
        check(std::isalpha(first) || first == '_', "key starts with a non-letter");
        for (const char c : key) {
            const auto u = static_cast<unsigned char>(c);
            check(std::isalnum(u) || c == '_' || c == '.' || c == '-', "bad character in key");
        }
    }
    check(genesis::launch::parse_dotenv(text) == vars, "parse is not deterministic");
    return 0;
}
