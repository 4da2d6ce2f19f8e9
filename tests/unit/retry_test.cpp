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

// One request's retries end when the next wait would end past the time budget,
// counted from the first attempt; time excluded (a wait that is not a retry) does not count.
TEST(Retry, TheTimeBudgetEndsRetriesWhateverTheAttemptCount) {
    backoff_params p;
    p.initial = 1000ms;
    p.maximum = 1000ms;
    p.max_attempts = 100;
    p.time_budget = 10s;
    const auto t0 = retry_state::clock::time_point{} + 1h;
    retry_state r(p, 7, t0);
    auto d = r.next_delay(2s, t0 + 5s);  // 5 s spent + 2 s asked for: within 10 s
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, 2000ms);
    EXPECT_STREQ(r.gave_up_because(), "");
    EXPECT_FALSE(r.next_delay(3s, t0 + 8s));  // would end at 11 s
    EXPECT_STREQ(r.gave_up_because(), "the time budget is spent");
    EXPECT_EQ(r.attempts(), 2);  // the refused retry is not counted as made

    retry_state waited(p, 7, t0);
    waited.exclude(30s);  // e.g. 30 s waiting for a free slot
    EXPECT_TRUE(waited.next_delay(2s, t0 + 35s));  // 5 s of retrying so far
}

TEST(Retry, AZeroTimeBudgetMeansNoLimitAndAttemptsStillEndRetries) {
    backoff_params p;
    p.initial = 10ms;
    p.max_attempts = 2;
    p.time_budget = 0ms;
    const auto t0 = retry_state::clock::time_point{} + 1h;
    retry_state r(p, 3, t0);
    EXPECT_TRUE(r.next_delay(std::nullopt, t0 + 24h));
    EXPECT_FALSE(r.next_delay(std::nullopt, t0 + 24h));
    EXPECT_STREQ(r.gave_up_because(), "the attempts are spent");
}
