// FakeOpenAi: an OpenAI-compatible chat-completions server on 127.0.0.1 for the classifier's
// tests and benchmark, built on http::testing::TestServer.
//
// POST /v1/chat/completions answers with the first category (from the request's list) that
// occurs as a word in the caption, or "I am not sure." when none does; in JSON-schema mode it
// answers {"category": "<name>"}. `usage` is always filled (prompt 40, completion 2 tokens).
// The Authorization header must be "Bearer <api_key>" when api_key is set (else 401).
// A caption may carry a directive `[[mode]]` that makes the server misbehave for that caption:
//   first attempt only: 429ra (Retry-After: 0), 429ms (retry-after-ms: 5), 429reset
//     (X-RateLimit-Reset in epoch ms), 429resets (epoch s), 429openai (x-ratelimit-reset-requests
//     "5ms"), 429hf (RateLimit t=0), 500, 502, 503, malformed (bad JSON in a 200),
//     error200 (an error object in a 200), nochoices, slow (answers after `slow_delay`),
//     drop (closes the connection);
//   always: always500, always-malformed, 401, 402, 403, verbose (a sentence around the name).
// Thread-safe. Stop() or the destructor ends it.
#ifndef CONVFOREVER_CAPTION_TESTING_FAKE_OPENAI_H_
#define CONVFOREVER_CAPTION_TESTING_FAKE_OPENAI_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "convforever/http/testing/test_server.h"

namespace cf::caption::testing {

struct FakeOpenAiOptions {
  std::string api_key;                                 // expected key; "" = no check
  absl::Duration latency = absl::ZeroDuration();       // added to every answer
  absl::Duration slow_delay = absl::Seconds(5);        // for [[slow]]
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
  void Stop() {
    if (server_ != nullptr) server_->Stop();
  }

 private:
  http::testing::ServerResponse Answer(const http::testing::ServerRequest& req);
  FakeOpenAiOptions options_;
  std::unique_ptr<http::testing::TestServer> server_;
  std::atomic<int64_t> completions_{0};
  std::mutex mu_;
  std::map<std::string, int> attempts_;
};

}  // namespace cf::caption::testing

#endif  // CONVFOREVER_CAPTION_TESTING_FAKE_OPENAI_H_
