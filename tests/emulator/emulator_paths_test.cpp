// The emulator's path rule (sandbox_runtime.hpp): how envd paths map into a sandbox.
#include "sandbox_runtime.hpp"

#include <gtest/gtest.h>

using namespace genesis::e2b_emulator;

TEST(EmulatorPaths, RelativeAndTildeMeanHome) {
    EXPECT_EQ(normalize_sandbox_path("x.txt"), "/home/user/x.txt");
    EXPECT_EQ(normalize_sandbox_path("~"), "/home/user");
    EXPECT_EQ(normalize_sandbox_path("~/a/b"), "/home/user/a/b");
    EXPECT_EQ(normalize_sandbox_path(""), "/home/user");
    EXPECT_EQ(normalize_sandbox_path("work/../r.json"), "/home/user/r.json");
}

TEST(EmulatorPaths, DotDotIsResolvedAsText) {
    EXPECT_EQ(normalize_sandbox_path("/home/user/../../etc/passwd"), "/etc/passwd");
    EXPECT_EQ(normalize_sandbox_path("/../../.."), "/");
    EXPECT_EQ(normalize_sandbox_path("/tmp//a/./b/"), "/tmp/a/b");
}

TEST(EmulatorPaths, OnlyHomeAndTmpAreServed) {
    EXPECT_TRUE(inside_served_area("/home/user"));
    EXPECT_TRUE(inside_served_area("/home/user/results/metrics.json"));
    EXPECT_TRUE(inside_served_area("/tmp"));
    EXPECT_TRUE(inside_served_area("/tmp/x"));
    EXPECT_FALSE(inside_served_area("/home/userx"));
    EXPECT_FALSE(inside_served_area("/home"));
    EXPECT_FALSE(inside_served_area("/etc/passwd"));
    EXPECT_FALSE(inside_served_area("/root/.npmrc"));
    EXPECT_FALSE(inside_served_area(normalize_sandbox_path("/home/user/../../root")));
}
