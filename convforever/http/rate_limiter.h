// A token-bucket rate limiter (requests per minute with a burst), shared by any number of threads,
// with an injectable clock so tests never sleep or read the wall clock.
//
// Tokens refill continuously at requests_per_minute / 60 per second up to `burst`; each request
// takes one. Over a long window the achieved rate is therefore `rate * T + burst`, so a caller
// that wants an exact steady rate uses burst = 1. PauseFor() empties the bucket and blocks
// everyone until the pause is over (a server-wide 429 with a reset time). requests_per_minute <= 0
// means unlimited. Thread-safe.
#ifndef CONVFOREVER_HTTP_RATE_LIMITER_H_
#define CONVFOREVER_HTTP_RATE_LIMITER_H_

#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cf::http {

// Time source for the limiter and the retry engine. Real() is absl::Now()/absl::SleepFor.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  virtual void SleepFor(absl::Duration d) = 0;
  static Clock* Real();
};

// A manual clock for tests: SleepFor advances the time instead of sleeping. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch() + absl::Hours(24 * 365 * 50))
      : now_(start) {}
  absl::Time Now() override;
  void SleepFor(absl::Duration d) override { Advance(d); }
  void Advance(absl::Duration d);

 private:
  std::mutex mu_;
  absl::Time now_;
};

struct RateLimiterOptions {
  double requests_per_minute = 0;  // <= 0: unlimited
  int burst = 1;                   // bucket capacity (>= 1)
  Clock* clock = nullptr;          // nullptr: Clock::Real(); not owned
  // Tokens at the start; < 0 = a full bucket. A caller that wants an exact long-run rate with some
  // slack for late wake-ups uses burst > 1 and initial_tokens = 1: tokens that accrue while the
  // caller is late are then kept instead of overflowing a one-token bucket.
  double initial_tokens = -1;
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimiterOptions options);

  // Takes a token if one is there and returns zero; otherwise takes nothing and returns how long
  // until one will be (the caller retries after that).
  absl::Duration TryAcquire();
  // Blocks (through the clock) until a token is taken.
  void Acquire();
  // Empties the bucket; no token is handed out before now + d (longer pauses win).
  void PauseFor(absl::Duration d);

  bool unlimited() const { return per_second_ <= 0; }
  double requests_per_minute() const { return per_second_ * 60; }

 private:
  void RefillLocked(absl::Time now);

  Clock* clock_;
  const double per_second_;
  const double burst_;
  std::mutex mu_;
  double tokens_;
  absl::Time last_;
  absl::Time paused_until_ = absl::InfinitePast();
};

}  // namespace cf::http

#endif  // CONVFOREVER_HTTP_RATE_LIMITER_H_
