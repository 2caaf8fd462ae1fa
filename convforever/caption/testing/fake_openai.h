// FakeOpenAi: an OpenAI-compatible chat-completions server on 127.0.0.1 for the classifier's
// tests and benchmark, built on http::testing::TestServer.
//
// POST /v1/chat/completions answers with the first category (from the request's list) that
// occurs as a word in the caption, or "I am not sure." when none does; in JSON-schema mode it
// answers {"category": "<name>"}. `usage` is always filled (prompt 40, completion 2 tokens).
// The Authorization header must be "Bearer <api_key>" when api_key is set (else 401).
// A caption may carry a directive `[[mode]]` that makes the server misbehave for that caption:
//   first attempt only: 429ra (Retry-After: 0), 429ra2 (Retry-After: 2), 429ms (retry-after-ms: 5), 429reset
//     (X-RateLimit-Reset in epoch ms), 429resets (epoch s), 429openai (x-ratelimit-reset-requests
//     "5ms"), 429hf (RateLimit t=0), 500, 502, 503, malformed (bad JSON in a 200),
//     error200 (an error object in a 200), nochoices, slow (answers after `slow_delay`),
//     drop (closes the connection);
//   first three attempts: 503x3 (HTTP 503 without a hint);
//   always: always500, always-malformed, 401, 402, 403, verbose (a sentence around the name).
// FaultMix adds random faults to every attempt (the mix an OpenRouter endpoint shows), decided
// by a hash of (seed, caption, attempt) so a run is reproducible: 429s with a ~1 s hint in one of
// Retry-After / retry-after-ms / X-RateLimit-Reset (epoch ms), 5xx, an error object in a 200,
// garbage in a 200, dropped connections, answers delayed by `delayed_by`. For every 429 it
// remembers when the hint expires and measures, when the same caption's next attempt arrives,
// how late (or early) that retry came (retry_lateness()).
// Every answer carries `x-fake-attempt: <n>` (the attempts seen for its caption) so a client
// test can see that a retry happened. Thread-safe. Stop() or the destructor ends it.
#ifndef CONVFOREVER_CAPTION_TESTING_FAKE_OPENAI_H_
#define CONVFOREVER_CAPTION_TESTING_FAKE_OPENAI_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "convforever/http/testing/test_server.h"

namespace cf::caption::testing {

struct FaultMix {
  double p429 = 0, p5xx = 0, p_error200 = 0, p_garbage = 0, p_drop = 0, p_delayed = 0;
  absl::Duration hint = absl::Seconds(1);
  absl::Duration delayed_by = absl::Seconds(65);
  uint64_t seed = 1;
};

// Retries after a 429, measured at the server: arrival of the next attempt minus hint expiry.
struct RetryLateness {
  int64_t retries = 0;        // next attempts seen after a 429
  int64_t early = 0;          // arrived before the hint expired
  int64_t late_over_2s = 0;   // arrived more than 2 s after it
  absl::Duration max_late = absl::ZeroDuration();
  absl::Duration min_late = absl::InfiniteDuration();  // < 0: the earliest of the early ones
};

struct FakeOpenAiOptions {
  std::string api_key;                                 // expected key; "" = no check
  absl::Duration latency = absl::ZeroDuration();       // added to every answer
  absl::Duration slow_delay = absl::Seconds(5);        // for [[slow]]
  FaultMix faults;                                     // random faults (none by default)
};

class FakeOpenAi {
 public:
  static absl::StatusOr<std::unique_ptr<FakeOpenAi>> Start(FakeOpenAiOptions options);
  // Stops the server (joining its connection threads) before the members their handlers use
  // (attempts_, mu_) are destroyed.
  ~FakeOpenAi() { Stop(); }
  std::string base_url() const;  // ".../v1"
  http::testing::TestServer& server() { return *server_; }
  int64_t completions() const { return completions_.load(); }  // requests answered 200 with a label
  // Attempts seen for this caption.
  int attempts(const std::string& caption);
  RetryLateness retry_lateness();
  void Stop() {
    if (server_ != nullptr) server_->Stop();
  }

 private:
  http::testing::ServerResponse Answer(const http::testing::ServerRequest& req);
  http::testing::ServerResponse AnswerAttempt(const std::string& caption, const std::vector<std::string>& categories,
                                              bool json_mode, const std::string& mode, int attempt);
  // A random fault for this attempt, if the mix picks one (sets `*out`).
  bool RandomFault(const std::string& caption, int attempt, http::testing::ServerResponse* out);
  void NoteRetry(const std::string& caption, absl::Time received);
  FakeOpenAiOptions options_;
  std::unique_ptr<http::testing::TestServer> server_;
  std::atomic<int64_t> completions_{0};
  std::mutex mu_;
  std::map<std::string, int> attempts_;            // guarded by mu_
  std::map<std::string, absl::Time> hint_expiry_;  // guarded by mu_: caption -> its 429's hint end
  RetryLateness lateness_;                         // guarded by mu_
};

}  // namespace cf::caption::testing

#endif  // CONVFOREVER_CAPTION_TESTING_FAKE_OPENAI_H_
