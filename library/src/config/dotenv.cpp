// dotenv.cpp - parse_dotenv: the `.env` file format used for credentials.
//
// Supported: `KEY=VALUE` lines, an optional `export ` prefix, blank lines and `#`
// comments (whole-line, or after whitespace following an unquoted value), single
// quotes (literal text) and double quotes (escapes \n \t \r \" \\ \$; may span
// lines). Malformed lines are skipped. Later definitions win. No ${VAR} expansion.
// CRLF and CR line ends count as LF everywhere (as Python's text mode reads them).
#include "genesis/launch/config.hpp"

#include <cctype>

namespace genesis::launch {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

bool is_key_char(char c, bool first) {
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') return true;
    return !first && (std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-');
}

class dotenv_parser {
public:
    explicit dotenv_parser(std::string_view text) : text_(text) {}

    std::map<std::string, std::string> parse() {
        std::map<std::string, std::string> out;
        while (pos_ < text_.size()) {
            std::string key, value;
            if (parse_entry(key, value)) out[key] = std::move(value);
            skip_to_next_line();
        }
        return out;
    }

private:
    bool at_end() const { return pos_ >= text_.size(); }
    char peek() const { return text_[pos_]; }
    void skip_blanks() {
        while (!at_end() && is_blank(peek())) ++pos_;
    }
    void skip_to_next_line() {
        while (!at_end() && peek() != '\n') ++pos_;
        if (!at_end()) ++pos_;
    }

    // Parses one `KEY=VALUE` entry starting at pos_; leaves pos_ on the same line as
    // the end of the entry. Returns false for blank, comment and malformed lines.
    bool parse_entry(std::string& key, std::string& value) {
        skip_blanks();
        if (at_end() || peek() == '\n' || peek() == '#') return false;

        if (text_.substr(pos_).starts_with("export") && pos_ + 6 < text_.size() &&
            is_blank(text_[pos_ + 6])) {
            pos_ += 6;
            skip_blanks();
        }

        const std::size_t key_start = pos_;
        while (!at_end() && is_key_char(peek(), pos_ == key_start)) ++pos_;
        key = std::string(text_.substr(key_start, pos_ - key_start));
        skip_blanks();
        if (key.empty() || at_end() || peek() != '=') return false;
        ++pos_;
        skip_blanks();

        if (at_end() || peek() == '\n') {
            value.clear();
            return true;
        }
        if (peek() == '\'') return parse_single_quoted(value);
        if (peek() == '"') return parse_double_quoted(value);
        parse_unquoted(value);
        return true;
    }

    bool parse_single_quoted(std::string& value) {
        const std::size_t close = text_.find('\'', pos_ + 1);
        if (close == std::string_view::npos) return false;
        value = std::string(text_.substr(pos_ + 1, close - pos_ - 1));
        pos_ = close + 1;
        return true;
    }

    bool parse_double_quoted(std::string& value) {
        value.clear();
        for (std::size_t i = pos_ + 1; i < text_.size(); ++i) {
            const char c = text_[i];
            if (c == '"') {
                pos_ = i + 1;
                return true;
            }
            if (c == '\\' && i + 1 < text_.size()) {
                const char next = text_[++i];
                switch (next) {
                case 'n': value += '\n'; break;
                case 't': value += '\t'; break;
                case 'r': value += '\r'; break;
                case '"':
                case '\\':
                case '$': value += next; break;
                default:
                    value += '\\';
                    value += next;
                }
                continue;
            }
            value += c;
        }
        return false;  // no closing quote: skip the entry
    }

    void parse_unquoted(std::string& value) {
        const std::size_t start = pos_;
        std::size_t end = start;
        while (end < text_.size() && text_[end] != '\n') {
            // `#` starts a comment only after whitespace (so `a#b` is a value).
            if (text_[end] == '#' && end > start && is_blank(text_[end - 1])) break;
            ++end;
        }
        std::size_t last = end;
        while (last > start && is_blank(text_[last - 1])) --last;
        value = std::string(text_.substr(start, last - start));
        pos_ = end;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

}  // namespace

std::map<std::string, std::string> parse_dotenv(std::string_view text) {
    // Line ends as Python's universal newlines read them (python-dotenv opens the
    // file in text mode): CRLF and a lone CR are LF, also inside quoted values.
    std::string normal;
    normal.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r') {
            normal += '\n';
            if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
        } else {
            normal += text[i];
        }
    }
    return dotenv_parser(normal).parse();
}

}  // namespace genesis::launch
