// output_sink.hpp - where a job's stdout or stderr goes, for every backend: a
// log file, a line callback, and a capped in-memory capture. Backends feed raw
// chunks (pipe reads, Connect stream events) into write().
#pragma once

#include "genesis/launch/job.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

namespace genesis::launch::detail {

// Keeps the first and the last bytes of a stream, at most `cap` in all.
class capture_buffer {
public:
    explicit capture_buffer(std::size_t cap) : head_cap_(cap / 2), tail_cap_(cap - cap / 2) {}

    void append(std::string_view bytes);
    bool truncated() const noexcept { return dropped_ > 0; }
    std::size_t dropped() const noexcept { return dropped_; }
    // head + "\n[... N bytes truncated ...]\n" + tail (or everything when it fit).
    std::string text() const;

private:
    std::size_t head_cap_;
    std::size_t tail_cap_;
    std::string head_;
    std::string tail_;  // may hold up to 2*tail_cap_ before it is compacted
    std::size_t dropped_ = 0;
};

class output_sink {
public:
    output_sink(std::size_t capture_cap, line_callback on_line)
        : capture_(capture_cap), on_line_(std::move(on_line)) {}
    ~output_sink();
    output_sink(const output_sink&) = delete;
    output_sink& operator=(const output_sink&) = delete;

    // Also write everything to `path` (created or truncated, close-on-exec), at most
    // `limit` bytes: past it a one-line mark is written and the rest is not logged
    // (the capture and the line callback still see everything).
    std::error_code open_file(const std::filesystem::path& path,
                              std::uint64_t limit = std::numeric_limits<std::uint64_t>::max());
    void write(std::string_view bytes);
    // End of stream: delivers a last unterminated line and closes the file.
    void finish();

    const capture_buffer& capture() const noexcept { return capture_; }
    std::size_t bytes() const noexcept { return bytes_; }
    // The file reached its limit and output was left out of it.
    bool file_truncated() const noexcept { return file_truncated_; }

private:
    static constexpr std::size_t max_line = 64 * 1024;  // longer lines are delivered in pieces

    capture_buffer capture_;
    line_callback on_line_;
    std::FILE* file_ = nullptr;
    std::uint64_t file_limit_ = 0;
    std::uint64_t file_bytes_ = 0;
    bool file_truncated_ = false;
    std::string partial_;
    std::size_t bytes_ = 0;
    bool finished_ = false;
};

}  // namespace genesis::launch::detail
