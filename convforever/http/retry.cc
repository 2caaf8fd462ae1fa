#include "convforever/http/retry.h"

#include <algorithm>
#include <cmath>

#include "absl/random/distributions.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace cf::http {

bool IsRetryableStatus(const RetryPolicy& policy, int http_status) {
  if (policy.retry_all_5xx && http_status >= 500 && http_status < 600) return true;
  return policy.retry_statuses.count(http_status) > 0;
}

bool IsRetryableError(const RetryPolicy& policy, const absl::Status& status) {
  return policy.retry_transport_errors && (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status));
}

bool ShouldRetry(const RetryPolicy& policy, const absl::StatusOr<Response>& outcome) {
  if (!outcome.ok()) return IsRetryableError(policy, outcome.status());
  if (IsRetryableStatus(policy, outcome->status)) return true;
  return policy.retry_if && policy.retry_if(*outcome);
}

absl::Duration BackoffDelay(const RetryPolicy& policy, int retry_index, absl::BitGenRef rng) {
  const double base = absl::ToDoubleSeconds(policy.base_delay);
  const double cap = absl::ToDoubleSeconds(policy.max_delay);
  const double raw = std::min(cap, base * std::pow(2.0, std::min(retry_index, 60)));
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  const double factor = 1.0 - jitter * absl::Uniform<double>(rng, 0.0, 1.0);
  return absl::Seconds(raw * factor);
}

namespace {

std::optional<double> ParseNumber(absl::string_view value) {
  double v = 0;
  value = absl::StripAsciiWhitespace(value);
  if (value.empty() || !absl::SimpleAtod(value, &v) || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Every hint ends up in [0, kMaxServerHint]. The bound is applied to the number before it becomes
// a duration or a time: a double past int64's range (a header of 40 digits) must not reach a
// conversion to an integer, which would be undefined behavior.
const double kMaxHintSeconds = absl::ToDoubleSeconds(kMaxServerHint);

absl::Duration Clamp(absl::Duration d) { return std::clamp(d, absl::ZeroDuration(), kMaxServerHint); }
absl::Duration ClampedSeconds(double seconds) {
  return absl::Seconds(std::clamp(seconds, 0.0, kMaxHintSeconds));
}

}  // namespace

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  if (auto seconds = ParseNumber(value)) return ClampedSeconds(*seconds);
  // IMF-fixdate, the form RFC 9110 requires senders to use.
  absl::Time when;
  std::string err;
  for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT", "%a, %d %b %Y %H:%M:%S %z",
                             "%A, %d-%b-%y %H:%M:%S GMT"}) {
    if (absl::ParseTime(format, std::string(value), absl::UTCTimeZone(), &when, &err)) {
      return Clamp(when - now);
    }
  }
  return std::nullopt;
}

std::optional<absl::Duration> ParseRetryAfterMs(absl::string_view value) {
  if (auto ms = ParseNumber(value)) return absl::Milliseconds(std::clamp(*ms, 0.0, kMaxHintSeconds * 1e3));
  return std::nullopt;
}

std::optional<absl::Duration> ParseRateLimitReset(absl::string_view value, absl::Time now) {
  auto v = ParseNumber(value);
  if (!v) return std::nullopt;
  // 1e11 s is the year 5138 while 1e11 ms is 1973, so the magnitude tells the unit apart. An
  // epoch past now + kMaxServerHint is cut to that before the integer conversion.
  if (*v >= 1e11) {
    const double latest = static_cast<double>(absl::ToUnixMillis(now)) + kMaxHintSeconds * 1e3;
    return Clamp(absl::FromUnixMillis(static_cast<int64_t>(std::min(*v, latest))) - now);
  }
  if (*v >= 1e9) {
    const double latest = static_cast<double>(absl::ToUnixSeconds(now)) + kMaxHintSeconds;
    return Clamp(absl::FromUnixSeconds(static_cast<int64_t>(std::min(*v, latest))) - now);
  }
  return ClampedSeconds(*v);
}

std::optional<absl::Duration> ParseGoDuration(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty()) return std::nullopt;
  absl::Duration total = absl::ZeroDuration();
  size_t i = 0;
  while (i < value.size()) {
    size_t j = i;
    while (j < value.size() && (absl::ascii_isdigit(value[j]) || value[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    double number = 0;
    if (!absl::SimpleAtod(value.substr(i, j - i), &number)) return std::nullopt;
    size_t k = j;
    while (k < value.size() && absl::ascii_isalpha(value[k])) ++k;
    const absl::string_view unit = value.substr(j, k - j);
    if (unit == "h") total += absl::Hours(number);
    else if (unit == "m") total += absl::Minutes(number);
    else if (unit == "s") total += absl::Seconds(number);
    else if (unit == "ms") total += absl::Milliseconds(number);
    else if (unit == "us" || unit == "µs") total += absl::Microseconds(number);
    else if (unit == "ns") total += absl::Nanoseconds(number);
    else return std::nullopt;
    i = k;
  }
  return Clamp(total);
}

std::optional<absl::Duration> ParseRateLimitHeader(absl::string_view value) {
  // "api";r=0;t=55  (several policies may be comma-separated; take the longest reset)
  std::optional<absl::Duration> best;
  for (absl::string_view item : absl::StrSplit(value, ',')) {
    for (absl::string_view param : absl::StrSplit(item, ';')) {
      param = absl::StripAsciiWhitespace(param);
      if (!absl::ConsumePrefix(&param, "t=")) continue;
      if (auto t = ParseNumber(param)) {
        const absl::Duration d = ClampedSeconds(*t);
        if (!best || d > *best) best = d;
      }
    }
  }
  return best;
}

std::optional<absl::Duration> RetryHintFromHeaders(const Headers& headers, absl::Time now) {
  if (auto v = headers.Get("retry-after-ms")) {
    if (auto d = ParseRetryAfterMs(*v)) return d;
  }
  if (auto v = headers.Get("Retry-After")) {
    if (auto d = ParseRetryAfter(*v, now)) return d;
  }
  if (auto v = headers.Get("RateLimit")) {
    if (auto d = ParseRateLimitHeader(*v)) return d;
  }
  if (auto v = headers.Get("x-ratelimit-reset-requests")) {
    if (auto d = ParseGoDuration(*v)) return d;
  }
  if (auto v = headers.Get("X-RateLimit-Reset")) {
    if (auto d = ParseRateLimitReset(*v, now)) return d;
  }
  return std::nullopt;
}

absl::Duration RetryDelay(const RetryPolicy& policy, int retry_index,
                          const absl::StatusOr<Response>& outcome, absl::Time now,
                          absl::BitGenRef rng) {
  if (policy.honor_server_hints && outcome.ok()) {
    if (auto hint = RetryHintFromHeaders(outcome->headers, now)) return std::min(*hint, policy.max_hint);
  }
  return BackoffDelay(policy, retry_index, rng);
}

bool RetryBudget::TryConsumeRetry() {
  for (;;) {
    int64_t used = retries_.load();
    const double allowed = min_ + ratio_ * static_cast<double>(requests_.load());
    if (static_cast<double>(used) + 1 > allowed) return false;
    if (retries_.compare_exchange_weak(used, used + 1)) return true;
  }
}

absl::StatusOr<Response> FetchWithRetry(const Request& request, const RetryOptions& options) {
  Clock* clock = options.clock != nullptr ? options.clock : Clock::Real();
  absl::BitGen rng;
  const int max_attempts = std::max(1, options.policy.max_attempts);
  for (int attempt = 1;; ++attempt) {
    if (options.limiter != nullptr) options.limiter->Acquire();
    if (options.budget != nullptr) options.budget->RecordRequest();
    absl::StatusOr<Response> outcome = Fetch(request);
    if (outcome.ok()) outcome->attempts = attempt;
    const bool more = attempt < max_attempts && ShouldRetry(options.policy, outcome) &&
                      (options.budget == nullptr || options.budget->TryConsumeRetry());
    if (!more) {
      if (!outcome.ok() && attempt > 1) {
        return absl::Status(outcome.status().code(),
                            absl::StrCat(outcome.status().message(), " (after ", attempt, " attempts)"));
      }
      return outcome;
    }
    clock->SleepFor(RetryDelay(options.policy, attempt - 1, outcome, clock->Now(), rng));
  }
}

}  // namespace cf::http
