#include "convforever/http/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace cf::http {

namespace {

class RealClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  void SleepFor(absl::Duration d) override { absl::SleepFor(d); }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

absl::Time FakeClock::Now() {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

void FakeClock::Advance(absl::Duration d) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ += d;
}

RateLimiter::RateLimiter(RateLimiterOptions options)
    : clock_(options.clock != nullptr ? options.clock : Clock::Real()),
      per_second_(options.requests_per_minute / 60.0),
      burst_(std::max(1, options.burst)),
      tokens_(options.initial_tokens < 0 ? burst_ : std::min(burst_, options.initial_tokens)),
      last_(clock_->Now()) {}

void RateLimiter::RefillLocked(absl::Time now) {
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * per_second_);
    last_ = now;
  }
}

absl::Duration RateLimiter::TryAcquire() {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = clock_->Now();
  if (now < paused_until_) return paused_until_ - now;
  if (unlimited()) return absl::ZeroDuration();
  RefillLocked(now);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return absl::ZeroDuration();
  }
  // Round up to a whole microsecond so the caller never wakes a hair too early and spins.
  const double wait_s = (1.0 - tokens_) / per_second_;
  return absl::Microseconds(std::ceil(wait_s * 1e6));
}

void RateLimiter::Acquire() {
  for (;;) {
    const absl::Duration wait = TryAcquire();
    if (wait <= absl::ZeroDuration()) return;
    clock_->SleepFor(wait);
  }
}

void RateLimiter::PauseFor(absl::Duration d) {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = clock_->Now();
  paused_until_ = std::max(paused_until_, now + d);
  tokens_ = 0;
  last_ = std::max(last_, paused_until_);  // refill starts when the pause ends
}

}  // namespace cf::http
