// Retry policy for HTTP calls: what to retry, how long to wait, and how much retrying a whole job
// may do.
//
//  * What: by default 408, 409, 429 and every 5xx, plus transport failures (UNAVAILABLE: refused,
//    reset or dropped connections; DEADLINE_EXCEEDED: timeouts); a caller adds its own predicate
//    (`retry_if`, e.g. an error object inside an HTTP 200). Everything else (401, 402, 403, 404,
//    other 4xx) is final at once.
//  * How long: the server's hint when it gives one (Retry-After in seconds or as an HTTP date,
//    retry-after-ms, X-RateLimit-Reset as epoch seconds or milliseconds, OpenAI's
//    x-ratelimit-reset-requests "6m0s", Hugging Face's `RateLimit: "api";r=0;t=55`), capped at
//    max_hint; otherwise exponential backoff min(base * 2^n, max) shortened by up to `jitter` of
//    itself at random (openai-python's schedule), so clients that failed together spread out.
//  * How much: RetryBudget caps retries across many requests (a ratio of the requests sent plus a
//    floor), so a dead server costs a bounded number of extra calls, not max_attempts times all.
// The header parsers are pure functions (time passed in) with unit tests. RetryBudget is
// thread-safe; the rest is value types and pure functions.
#ifndef CONVFOREVER_HTTP_RETRY_H_
#define CONVFOREVER_HTTP_RETRY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "convforever/http/client.h"
#include "convforever/http/rate_limiter.h"

namespace cf::http {

struct RetryPolicy {
  int max_attempts = 5;  // total, the first included; 1 = never retry
  absl::Duration base_delay = absl::Milliseconds(500);
  absl::Duration max_delay = absl::Seconds(8);
  double jitter = 0.25;  // the delay is multiplied by (1 - jitter * U[0, 1))
  std::set<int> retry_statuses = {408, 409, 429};
  bool retry_all_5xx = true;
  bool retry_transport_errors = true;  // UNAVAILABLE and DEADLINE_EXCEEDED from the client
  bool honor_server_hints = true;
  absl::Duration max_hint = absl::Seconds(120);  // a longer server hint is cut to this
  // Extra per-caller rule: return true to retry a response the status rules call final (e.g. an
  // error object in a 200 body, malformed JSON from a flaky proxy).
  std::function<bool(const Response&)> retry_if;
};

// The status-code part of the policy (without retry_if).
bool IsRetryableStatus(const RetryPolicy& policy, int http_status);
// UNAVAILABLE / DEADLINE_EXCEEDED when the policy retries transport errors.
bool IsRetryableError(const RetryPolicy& policy, const absl::Status& status);
// Whether this outcome of an attempt should be retried (attempt budget not considered).
bool ShouldRetry(const RetryPolicy& policy, const absl::StatusOr<Response>& outcome);

// Backoff before retry number `retry_index` (0 = first retry): min(base * 2^n, max) * jitter.
absl::Duration BackoffDelay(const RetryPolicy& policy, int retry_index, absl::BitGenRef rng);

// --- Server hints (pure; `now` is the current time, used for absolute dates) ----------------
// Every parser returns a hint in [0, kMaxServerHint]: a negative one (a date in the past) becomes
// zero, a longer one (up to a number far beyond any clock) becomes kMaxServerHint. A day is
// beyond any real rate-limit window; RetryPolicy::max_hint then cuts it to what the caller waits.
inline constexpr absl::Duration kMaxServerHint = absl::Hours(24);
// Retry-After: delta seconds ("120", "1.5") or an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT").
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now);
// retry-after-ms: milliseconds.
std::optional<absl::Duration> ParseRetryAfterMs(absl::string_view value);
// X-RateLimit-Reset: epoch milliseconds (>= 1e11), epoch seconds (>= 1e9), else delta seconds.
std::optional<absl::Duration> ParseRateLimitReset(absl::string_view value, absl::Time now);
// Go-style durations as in x-ratelimit-reset-requests: "6m0s", "1.5s", "20ms", "1h2m3s".
std::optional<absl::Duration> ParseGoDuration(absl::string_view value);
// IETF draft / Hugging Face `RateLimit: "api";r=0;t=55`: the reset `t` in seconds.
std::optional<absl::Duration> ParseRateLimitHeader(absl::string_view value);
// The first hint present, in the order: retry-after-ms, Retry-After, RateLimit (t),
// x-ratelimit-reset-requests, X-RateLimit-Reset; in [0, kMaxServerHint] like each of them.
std::optional<absl::Duration> RetryHintFromHeaders(const Headers& headers, absl::Time now);

// The wait before retry `retry_index` after `outcome`: the capped server hint if there is one
// (honor_server_hints), otherwise BackoffDelay.
absl::Duration RetryDelay(const RetryPolicy& policy, int retry_index,
                          const absl::StatusOr<Response>& outcome, absl::Time now,
                          absl::BitGenRef rng);

// A budget of retries shared by many requests: each request deposits `ratio` tokens, each retry
// takes one; `min_retries` are always allowed. Thread-safe.
class RetryBudget {
 public:
  RetryBudget(double ratio = 0.2, int64_t min_retries = 20) : ratio_(ratio), min_(min_retries) {}
  void RecordRequest() { requests_.fetch_add(1, std::memory_order_relaxed); }
  bool TryConsumeRetry();
  int64_t retries() const { return retries_.load(); }

 private:
  const double ratio_;
  const int64_t min_;
  std::atomic<int64_t> requests_{0};
  std::atomic<int64_t> retries_{0};
};

struct RetryOptions {
  RetryPolicy policy;
  RetryBudget* budget = nullptr;      // not owned; nullptr = only max_attempts
  RateLimiter* limiter = nullptr;     // not owned; a token is taken before every attempt
  Clock* clock = nullptr;             // sleeps between attempts; nullptr = Clock::Real()
};

// Synchronous Fetch with retries. Returns the last outcome: a Response (its `attempts` set, maybe
// non-2xx after the attempts ran out) or the last transport error, its message saying how many
// attempts were made.
absl::StatusOr<Response> FetchWithRetry(const Request& request, const RetryOptions& options);

}  // namespace cf::http

#endif  // CONVFOREVER_HTTP_RETRY_H_
