#include "output_sink.hpp"
#include "test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using genesis::launch::detail::capture_buffer;
using genesis::launch::detail::output_sink;
using ::testing::ElementsAre;

namespace {

TEST(CaptureBuffer, KeepsEverythingUnderTheCap) {
    capture_buffer b(10);
    b.append("abc");
    b.append("def");
    EXPECT_FALSE(b.truncated());
    EXPECT_EQ(b.text(), "abcdef");
}

TEST(CaptureBuffer, KeepsHeadAndTailWithAMark) {
    capture_buffer b(8);
    for (char c = 'a'; c <= 'z'; ++c) b.append(std::string(1, c));
    EXPECT_TRUE(b.truncated());
    EXPECT_EQ(b.text(), "abcd\n[... 18 bytes truncated ...]\nwxyz");
}

TEST(CaptureBuffer, LargeSingleAppend) {
    capture_buffer b(4);
    b.append(std::string(100, 'x') + "END!");
    EXPECT_EQ(b.text(), "xx\n[... 100 bytes truncated ...]\nD!");
}

TEST(OutputSink, SplitsLinesAcrossChunksAndFlushesTheLastOne) {
    std::vector<std::string> lines;
    output_sink s(1024, [&](std::string_view l) { lines.emplace_back(l); });
    s.write("one\ntw");
    s.write("o\n\nthr");
    s.write("ee");
    EXPECT_THAT(lines, ElementsAre("one", "two", ""));
    s.finish();
    EXPECT_THAT(lines, ElementsAre("one", "two", "", "three"));
    EXPECT_EQ(s.capture().text(), "one\ntwo\n\nthree");
    EXPECT_EQ(s.bytes(), 14u);
}

TEST(OutputSink, WritesTheFileInFull) {
    genesis_test::temp_dir dir;
    output_sink s(4, nullptr);
    ASSERT_FALSE(s.open_file(dir / "log"));
    s.write("0123456789");
    s.finish();
    EXPECT_EQ(genesis_test::read_file(dir / "log"), "0123456789");
    EXPECT_TRUE(s.capture().truncated());
}

}  // namespace
