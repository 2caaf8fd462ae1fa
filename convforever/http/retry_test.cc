#include "convforever/http/retry.h"

#include <string>

#include "absl/random/random.h"
#include "gtest/gtest.h"

namespace cf::http {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

TEST(RetryHeadersTest, RetryAfterSecondsAndDate) {
  EXPECT_EQ(ParseRetryAfter("120", kNow), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 1.5 ", kNow), absl::Milliseconds(1500));
  // 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT.
  EXPECT_EQ(ParseRetryAfter("Tue, 14 Nov 2023 22:13:50 GMT", kNow), absl::Seconds(30));
  EXPECT_EQ(ParseRetryAfter("Tue, 14 Nov 2023 22:00:00 GMT", kNow), absl::ZeroDuration());
  EXPECT_FALSE(ParseRetryAfter("soon", kNow).has_value());
  EXPECT_FALSE(ParseRetryAfter("", kNow).has_value());
}

TEST(RetryHeadersTest, RetryAfterMs) {
  EXPECT_EQ(ParseRetryAfterMs("250"), absl::Milliseconds(250));
  EXPECT_FALSE(ParseRetryAfterMs("x").has_value());
}

TEST(RetryHeadersTest, RateLimitResetDetectsSecondsOrMilliseconds) {
  EXPECT_EQ(ParseRateLimitReset("1700000010", kNow), absl::Seconds(10));
  EXPECT_EQ(ParseRateLimitReset("1700000002500", kNow), absl::Milliseconds(2500));
  EXPECT_EQ(ParseRateLimitReset("7", kNow), absl::Seconds(7));  // small: a delta
  EXPECT_EQ(ParseRateLimitReset("1600000000", kNow), absl::ZeroDuration());  // in the past
  EXPECT_FALSE(ParseRateLimitReset("abc", kNow).has_value());
}

TEST(RetryHeadersTest, GoDurations) {
  EXPECT_EQ(ParseGoDuration("6m0s"), absl::Minutes(6));
  EXPECT_EQ(ParseGoDuration("1.5s"), absl::Milliseconds(1500));
  EXPECT_EQ(ParseGoDuration("20ms"), absl::Milliseconds(20));
  EXPECT_EQ(ParseGoDuration("1h2m3s"), absl::Seconds(3723));
  EXPECT_FALSE(ParseGoDuration("6 minutes").has_value());
  EXPECT_FALSE(ParseGoDuration("").has_value());
  EXPECT_FALSE(ParseGoDuration("s").has_value());
}

TEST(RetryHeadersTest, HuggingFaceRateLimit) {
  EXPECT_EQ(ParseRateLimitHeader("\"api\";r=0;t=55"), absl::Seconds(55));
  EXPECT_EQ(ParseRateLimitHeader("\"api\";r=0;t=5, \"resolvers\";r=3;t=30"), absl::Seconds(30));
  EXPECT_FALSE(ParseRateLimitHeader("\"api\";r=0").has_value());
}

// Numbers past int64's range once reached an integer conversion (undefined behavior, caught by
// UBSan); every parser now clamps to kMaxServerHint first.
TEST(RetryHeadersTest, HugeHintsAreClampedToTheMaximum) {
  const std::string huge = "5555555555555555555555555555555555";
  EXPECT_EQ(ParseRateLimitReset(huge, kNow), kMaxServerHint);
  EXPECT_EQ(ParseRateLimitReset("99999999999", kNow), kMaxServerHint);  // epoch s, year 5138
  EXPECT_EQ(ParseRetryAfterMs(huge), kMaxServerHint);
  EXPECT_EQ(ParseRetryAfter(huge, kNow), kMaxServerHint);
  EXPECT_EQ(ParseRetryAfter("Fri, 01 Jan 9999 00:00:00 GMT", kNow), kMaxServerHint);
  EXPECT_EQ(ParseGoDuration(huge + "h"), kMaxServerHint);
  EXPECT_EQ(ParseGoDuration("25h"), kMaxServerHint);
  EXPECT_EQ(ParseRateLimitHeader("\"api\";r=0;t=" + huge), kMaxServerHint);
  EXPECT_EQ(ParseRateLimitReset("-" + huge, kNow), absl::ZeroDuration());
  Headers h{{"X-RateLimit-Reset", huge}};
  EXPECT_EQ(RetryHintFromHeaders(h, kNow), kMaxServerHint);
  // Within the maximum nothing changes.
  EXPECT_EQ(ParseRateLimitReset("1700003600", kNow), absl::Hours(1));
  EXPECT_EQ(ParseGoDuration("23h59m"), absl::Hours(23) + absl::Minutes(59));
}

TEST(RetryHeadersTest, HintPrecedence) {
  Headers h{{"Retry-After", "3"}, {"retry-after-ms", "1200"}, {"X-RateLimit-Reset", "9"}};
  EXPECT_EQ(RetryHintFromHeaders(h, kNow), absl::Milliseconds(1200));
  Headers only_reset{{"x-ratelimit-reset", "1700000004000"}};
  EXPECT_EQ(RetryHintFromHeaders(only_reset, kNow), absl::Seconds(4));
  Headers openai{{"x-ratelimit-reset-requests", "1m30s"}};
  EXPECT_EQ(RetryHintFromHeaders(openai, kNow), absl::Seconds(90));
  Headers garbage{{"Retry-After", "later"}};
  EXPECT_FALSE(RetryHintFromHeaders(garbage, kNow).has_value());
}

TEST(RetryPolicyTest, DefaultStatuses) {
  RetryPolicy p;
  for (int s : {408, 409, 429, 500, 502, 503, 504, 599}) EXPECT_TRUE(IsRetryableStatus(p, s)) << s;
  for (int s : {200, 400, 401, 402, 403, 404, 422}) EXPECT_FALSE(IsRetryableStatus(p, s)) << s;
  p.retry_all_5xx = false;
  p.retry_statuses = {503};
  EXPECT_TRUE(IsRetryableStatus(p, 503));
  EXPECT_FALSE(IsRetryableStatus(p, 500));
  EXPECT_FALSE(IsRetryableStatus(p, 429));
}

TEST(RetryPolicyTest, TransportErrorsAndCustomPredicate) {
  RetryPolicy p;
  EXPECT_TRUE(ShouldRetry(p, absl::UnavailableError("reset")));
  EXPECT_TRUE(ShouldRetry(p, absl::DeadlineExceededError("timeout")));
  EXPECT_FALSE(ShouldRetry(p, absl::InvalidArgumentError("bad url")));
  Response ok;
  ok.status = 200;
  ok.body = "{\"error\":{}}";
  EXPECT_FALSE(ShouldRetry(p, ok));
  p.retry_if = [](const Response& r) { return r.body.find("error") != std::string::npos; };
  EXPECT_TRUE(ShouldRetry(p, ok));
  p.retry_transport_errors = false;
  EXPECT_FALSE(ShouldRetry(p, absl::UnavailableError("reset")));
}

TEST(RetryPolicyTest, BackoffIsCappedExponentialWithJitterBelow) {
  RetryPolicy p;  // 0.5 s base, 8 s cap, 25% jitter
  absl::BitGen rng;
  for (int n = 0; n < 8; ++n) {
    const double full = std::min(8.0, 0.5 * (1 << n));
    for (int k = 0; k < 50; ++k) {
      const double d = absl::ToDoubleSeconds(BackoffDelay(p, n, rng));
      EXPECT_LE(d, full + 1e-9);
      EXPECT_GE(d, 0.75 * full - 1e-9);
    }
  }
  p.jitter = 0;
  EXPECT_EQ(BackoffDelay(p, 2, rng), absl::Seconds(2));
  EXPECT_EQ(BackoffDelay(p, 40, rng), absl::Seconds(8));
}

TEST(RetryPolicyTest, DelayPrefersCappedServerHint) {
  RetryPolicy p;
  p.jitter = 0;
  p.max_hint = absl::Seconds(30);
  absl::BitGen rng;
  Response r;
  r.status = 429;
  r.headers.Set("Retry-After", "7");
  EXPECT_EQ(RetryDelay(p, 0, r, kNow, rng), absl::Seconds(7));
  r.headers.Set("Retry-After", "3600");
  EXPECT_EQ(RetryDelay(p, 0, r, kNow, rng), absl::Seconds(30));
  p.honor_server_hints = false;
  EXPECT_EQ(RetryDelay(p, 0, r, kNow, rng), absl::Milliseconds(500));
  EXPECT_EQ(RetryDelay(p, 1, absl::UnavailableError("x"), kNow, rng), absl::Seconds(1));
}

TEST(RetryBudgetTest, FloorPlusRatio) {
  RetryBudget budget(0.5, 2);
  EXPECT_TRUE(budget.TryConsumeRetry());
  EXPECT_TRUE(budget.TryConsumeRetry());
  EXPECT_FALSE(budget.TryConsumeRetry());
  for (int i = 0; i < 4; ++i) budget.RecordRequest();  // +2 retries
  EXPECT_TRUE(budget.TryConsumeRetry());
  EXPECT_TRUE(budget.TryConsumeRetry());
  EXPECT_FALSE(budget.TryConsumeRetry());
  EXPECT_EQ(budget.retries(), 4);
}

}  // namespace
}  // namespace cf::http
