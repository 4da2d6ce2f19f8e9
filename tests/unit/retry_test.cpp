#include "e2b/retry.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace genesis::launch::detail::e2b;
using namespace std::chrono_literals;

TEST(Retry, TransientStatuses) {
    for (unsigned s : {408u, 429u, 500u, 502u, 503u, 504u}) EXPECT_TRUE(is_transient_status(s)) << s;
    for (unsigned s : {200u, 201u, 400u, 401u, 403u, 404u, 409u, 501u, 507u}) EXPECT_FALSE(is_transient_status(s)) << s;
}

TEST(Retry, RetryAfterSeconds) {
    EXPECT_EQ(parse_retry_after("3"), 3000ms);
    EXPECT_EQ(parse_retry_after(" 0 "), 0ms);
    EXPECT_FALSE(parse_retry_after(""));
    EXPECT_FALSE(parse_retry_after("-1"));
    EXPECT_FALSE(parse_retry_after("1.5"));
    EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
}

TEST(Retry, BudgetAndTruncatedBackoffWithJitter) {
    backoff_params p;
    p.initial = 100ms;
    p.maximum = 400ms;
    p.max_attempts = 6;
    retry_state r(p, 42);
    std::vector<std::chrono::milliseconds> ceilings{100ms, 200ms, 400ms, 400ms, 400ms};
    for (auto ceiling : ceilings) {
        auto d = r.next_delay();
        ASSERT_TRUE(d);
        EXPECT_GE(*d, 0ms);
        EXPECT_LE(*d, ceiling);
    }
    EXPECT_EQ(r.attempts(), 6);
    EXPECT_FALSE(r.next_delay());  // budget spent
}

TEST(Retry, RetryAfterIsALowerBoundAndTooLongGivesUp) {
    backoff_params p;
    p.initial = 10ms;
    p.max_retry_after = 5s;
    retry_state r(p, 1);
    EXPECT_EQ(r.next_delay(2s), 2000ms);
    EXPECT_FALSE(r.next_delay(10s));
}

TEST(Retry, JitterSpreadsDelays) {
    backoff_params p;
    p.initial = 1000ms;
    std::set<std::int64_t> seen;
    for (std::uint64_t seed = 0; seed < 20; ++seed) seen.insert(retry_state(p, seed).next_delay()->count());
    EXPECT_GT(seen.size(), 10u);
}
