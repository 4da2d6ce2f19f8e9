#include "output_sink.hpp"

#include <cerrno>
#include <string>

namespace genesis::launch::detail {

void capture_buffer::append(std::string_view bytes) {
    if (head_.size() < head_cap_) {
        auto n = std::min(bytes.size(), head_cap_ - head_.size());
        head_.append(bytes.substr(0, n));
        bytes.remove_prefix(n);
    }
    if (bytes.empty()) return;
    tail_.append(bytes);
    if (tail_.size() > 2 * tail_cap_) {
        auto excess = tail_.size() - tail_cap_;
        dropped_ += excess;
        tail_.erase(0, excess);
    }
}

std::string capture_buffer::text() const {
    std::size_t extra = tail_.size() > tail_cap_ ? tail_.size() - tail_cap_ : 0;
    std::size_t dropped = dropped_ + extra;
    if (dropped == 0) return head_ + tail_;
    std::string out = head_;
    out += "\n[... " + std::to_string(dropped) + " bytes truncated ...]\n";
    out.append(tail_, extra, std::string::npos);
    return out;
}

output_sink::~output_sink() {
    if (file_) std::fclose(file_);
}

std::error_code output_sink::open_file(const std::filesystem::path& path, std::uint64_t limit) {
    if (file_) std::fclose(file_);
    file_ = std::fopen(path.c_str(), "wbe");  // "e": O_CLOEXEC, no other child inherits it
    if (!file_) return {errno, std::generic_category()};
    file_limit_ = limit;
    file_bytes_ = 0;
    file_truncated_ = false;
    return {};
}

void output_sink::write(std::string_view bytes) {
    if (bytes.empty() || finished_) return;
    bytes_ += bytes.size();
    if (file_ && !file_truncated_) {
        const std::uint64_t room = file_limit_ - file_bytes_;
        const std::size_t n = room < bytes.size() ? static_cast<std::size_t>(room) : bytes.size();
        std::fwrite(bytes.data(), 1, n, file_);
        file_bytes_ += n;
        if (n < bytes.size()) {
            file_truncated_ = true;
            const std::string mark =
                "\n[... log limit of " + std::to_string(file_limit_) + " bytes reached; the rest is not logged ...]\n";
            std::fwrite(mark.data(), 1, mark.size(), file_);
        }
        std::fflush(file_);  // users follow job_log.* while a job runs
    }
    capture_.append(bytes);
    if (!on_line_) return;
    while (!bytes.empty()) {
        auto nl = bytes.find('\n');
        if (nl == std::string_view::npos) {
            partial_.append(bytes);
            while (partial_.size() >= max_line) {
                on_line_(std::string_view(partial_).substr(0, max_line));
                partial_.erase(0, max_line);
            }
            return;
        }
        if (partial_.empty()) {
            on_line_(bytes.substr(0, nl));
        } else {
            partial_.append(bytes.substr(0, nl));
            on_line_(partial_);
            partial_.clear();
        }
        bytes.remove_prefix(nl + 1);
    }
}

void output_sink::finish() {
    if (finished_) return;
    finished_ = true;
    if (on_line_ && !partial_.empty()) on_line_(partial_);
    partial_.clear();
    if (file_) {
        std::fclose(file_);
        file_ = nullptr;
    }
}

}  // namespace genesis::launch::detail
