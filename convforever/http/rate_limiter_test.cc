#include "convforever/http/rate_limiter.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace cf::http {
namespace {

TEST(RateLimiterTest, UnlimitedNeverWaits) {
  FakeClock clock;
  RateLimiter limiter({.requests_per_minute = 0, .burst = 1, .clock = &clock});
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(limiter.TryAcquire(), absl::ZeroDuration());
}

TEST(RateLimiterTest, BurstThenSteadyRate) {
  FakeClock clock;
  RateLimiter limiter({.requests_per_minute = 60, .burst = 3, .clock = &clock});  // 1/s
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.TryAcquire(), absl::ZeroDuration()) << i;
  const absl::Duration wait = limiter.TryAcquire();
  EXPECT_EQ(wait, absl::Seconds(1));
  clock.Advance(absl::Milliseconds(500));
  EXPECT_EQ(limiter.TryAcquire(), absl::Milliseconds(500));
  clock.Advance(absl::Milliseconds(500));
  EXPECT_EQ(limiter.TryAcquire(), absl::ZeroDuration());
}

TEST(RateLimiterTest, AcquireAchievesConfiguredRateOnFakeClock) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  RateLimiter limiter({.requests_per_minute = 1200, .burst = 1, .clock = &clock});  // 20/s
  for (int i = 0; i < 201; ++i) limiter.Acquire();
  // The first is free (full bucket); 200 more take 10 s at 20/s.
  EXPECT_NEAR(absl::ToDoubleSeconds(clock.Now() - start), 10.0, 1e-3);
}

TEST(RateLimiterTest, SlackKeepsTheLongRunRateWhenTheCallerIsLate) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  // 10/s; the caller always comes back 30 ms after the token was due.
  RateLimiter exact({.requests_per_minute = 600, .burst = 3, .clock = &clock, .initial_tokens = 1});
  RateLimiter tight({.requests_per_minute = 600, .burst = 1, .clock = &clock});
  int granted_exact = 0, granted_tight = 0;
  absl::Time next_exact = start, next_tight = start;
  while (clock.Now() - start < absl::Seconds(10)) {
    if (clock.Now() >= next_exact) {
      const absl::Duration w = exact.TryAcquire();
      if (w == absl::ZeroDuration()) ++granted_exact;
      next_exact = clock.Now() + (w == absl::ZeroDuration() ? absl::ZeroDuration() : w + absl::Milliseconds(30));
    }
    if (clock.Now() >= next_tight) {
      const absl::Duration w = tight.TryAcquire();
      if (w == absl::ZeroDuration()) ++granted_tight;
      next_tight = clock.Now() + (w == absl::ZeroDuration() ? absl::ZeroDuration() : w + absl::Milliseconds(30));
    }
    clock.Advance(absl::Milliseconds(1));
  }
  EXPECT_NEAR(granted_exact, 100, 2);  // 10 s at 10/s (+1 initial token)
  EXPECT_LT(granted_tight, 80);        // a one-token bucket loses the late time every time
}

TEST(RateLimiterTest, PauseBlocksEveryoneUntilItEnds) {
  FakeClock clock;
  RateLimiter limiter({.requests_per_minute = 6000, .burst = 10, .clock = &clock});
  limiter.PauseFor(absl::Seconds(5));
  EXPECT_EQ(limiter.TryAcquire(), absl::Seconds(5));
  clock.Advance(absl::Seconds(4));
  EXPECT_EQ(limiter.TryAcquire(), absl::Seconds(1));
  clock.Advance(absl::Seconds(1));
  // Bucket was emptied: the first token comes 1/100 s after the pause.
  EXPECT_GT(limiter.TryAcquire(), absl::ZeroDuration());
  clock.Advance(absl::Milliseconds(10));
  EXPECT_EQ(limiter.TryAcquire(), absl::ZeroDuration());
}

TEST(RateLimiterTest, ThreadSafeTokenCount) {
  FakeClock clock;
  RateLimiter limiter({.requests_per_minute = 60, .burst = 100, .clock = &clock});
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (limiter.TryAcquire() == absl::ZeroDuration()) granted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 100);  // exactly the burst, no more, with the clock frozen
}

}  // namespace
}  // namespace cf::http
