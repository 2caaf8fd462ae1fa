// MultiClient: many HTTP requests in flight at once on one thread driving libcurl multi, with
// optional retries (retry.h) and a shared rate limiter (rate_limiter.h).
//
// Submit() queues a request and returns at once; at most `max_in_flight` transfers run together
// (connections are reused across requests by the multi handle's connection cache). Each attempt,
// first or retry, first takes a limiter token. A retryable outcome waits RetryDelay (server hints
// honored) while attempts and the RetryBudget last: waiting holds no in-flight slot, and once due
// it starts before any request that has not started yet (so it is late only by the limiter); an
// attempt stuck on the wire past `straggler_after` frees its slot while it runs on (see the option); the callback then receives the
// final outcome exactly once: a Response (any status; `attempts` set) or a transport error.
// Callbacks run on the engine thread: keep them short and never block in them; they may call
// Submit(). A `halt_on` outcome stops new work at once (see the option). Submit/Wait/counters
// are thread-safe. The destructor (or Shutdown) stops the engine:
// requests not finished get CANCELLED.
#ifndef CONVFOREVER_HTTP_MULTI_CLIENT_H_
#define CONVFOREVER_HTTP_MULTI_CLIENT_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/status/statusor.h"
#include "convforever/http/client.h"
#include "convforever/http/rate_limiter.h"
#include "convforever/http/retry.h"

namespace cf::http {

struct MultiClientOptions {
  int max_in_flight = 64;
  // Retries: nullopt = each request is tried once.
  std::optional<RetryPolicy> retry;
  RetryBudget* retry_budget = nullptr;  // not owned
  RateLimiter* rate_limiter = nullptr;  // not owned; shared with other users is fine
  // A 429 can mean the whole account is limited, not one request: pause the limiter (everyone) for
  // the retry delay instead of letting the other in-flight requests hit the wall too. Providers
  // behind a router also answer 429 for one request while the rest go through; pausing everyone
  // for each of those stalls the job, so the pause needs `pause_after_consecutive_429s` answers
  // in a row to be 429 (1 = every 429 pauses; any other HTTP answer resets the count).
  bool pause_limiter_on_429 = true;
  int pause_after_consecutive_429s = 1;
  // A final outcome for which this returns true (a revoked key, no credits) halts the engine:
  // nothing new starts, every queued or waiting request completes with CANCELLED at once, and
  // later Submits are cancelled; requests already on the wire finish normally. nullptr = never.
  std::function<bool(const absl::StatusOr<Response>&)> halt_on;
  // Connections kept open per host (0 = max_in_flight, twice that with stragglers on).
  int max_host_connections = 0;
  // Stragglers: an attempt on the wire for longer than max(straggler_after, straggler_latency_multiple
  // x the running mean latency of finished attempts) stops counting toward max_in_flight (it is
  // waiting on a stuck upstream, not loading the server), so a few answers that hang until their
  // timeout do not starve everyone else of slots. At most `max_in_flight` stragglers are set
  // aside at once (so at most twice max_in_flight on the wire). Infinite = off.
  absl::Duration straggler_after = absl::InfiniteDuration();
  double straggler_latency_multiple = 0;
  // Also start a copy of a straggler's request at once (once per request, paid from the retry
  // budget); the first of the two to finish for good is the outcome, the other is dropped. For
  // idempotent requests only (a chat completion is; a commit is not).
  bool hedge_stragglers = false;
};

class MultiClient {
 public:
  using Callback = std::function<void(absl::StatusOr<Response>)>;

  explicit MultiClient(MultiClientOptions options = {});
  ~MultiClient();
  MultiClient(const MultiClient&) = delete;
  MultiClient& operator=(const MultiClient&) = delete;

  void Submit(Request request, Callback done);
  std::future<absl::StatusOr<Response>> Submit(Request request);

  // Blocks until every submitted request has completed (callbacks returned).
  void Wait();
  // Stops the engine; unfinished requests complete with CANCELLED. Idempotent.
  void Shutdown();

  int64_t attempts() const;     // HTTP attempts started
  int64_t retries() const;
  int64_t hedges() const;       // copies started for stragglers
  int64_t outstanding() const;  // submitted, not yet completed
  bool halted() const;

 private:
  class Engine;  // the curl multi loop and everything only its thread touches

  std::unique_ptr<Engine> engine_;
  std::thread thread_;
};

}  // namespace cf::http

#endif  // CONVFOREVER_HTTP_MULTI_CLIENT_H_
