// The caption classifier: reads caption records, asks an OpenAI-compatible chat endpoint for the
// single best category of each, and appends labeled records to a resumable output.
//
// Flow: records are read on the calling thread into a bounded window; each is resolved from the
// SQLite cache, joined to an identical caption already in flight, or sent (http::MultiClient:
// `concurrency` in flight, a token-bucket limiter, retries with backoff honoring the server's
// retry headers; an error object or malformed JSON in a 200 is retried too; a retry waiting for
// its time holds no in-flight slot). Each record is appended to the output (LabeledOutput) the
// moment its answer is final, so records land in completion order, not input order, and one slow
// or retried request holds back only itself. Ids already in the output are skipped, so rerunning
// the same command after kill -9 finishes the job with every record exactly once.
// A record whose retries ran out is, by default (kRetryLater), not written: the next run retries
// it; with kUnknown it is written as `unknown` with its `error` (and a rerun skips it). An answer
// that names no category is always written as `unknown` with its `raw` text: the model answered.
// HTTP 401/402/403 (or such an error object) stops the run at once: RunClassifier returns that
// error; every record finished before it is already written.
// Output record: {id, caption, label, label_id (class id, -1 for unknown), [url|path...],
// [raw] (the answer, when it named no category), [error]}.
// The API key is only ever put in the Authorization header: never logged, never in a message.
#ifndef CONVFOREVER_CAPTION_CLASSIFIER_H_
#define CONVFOREVER_CAPTION_CLASSIFIER_H_

#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "convforever/caption/labeled_output.h"
#include "convforever/caption/prompt.h"
#include "convforever/caption/records.h"
#include "convforever/caption/shard_sink.h"

namespace cf::caption {

enum class OnFailure { kUnknown, kRetryLater };

struct ClassifierOptions {
  std::string base_url = "https://openrouter.ai/api/v1";
  std::string api_key;  // secret; may be empty for local servers
  PromptOptions prompt;
  std::vector<std::string> categories;
  int concurrency = 16;
  double requests_per_minute = 20;  // <= 0: unlimited
  double rate_limit_pause_s = 0;    // > 0: at least this long between request starts
  int max_attempts = 6;
  absl::Duration base_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(8);
  absl::Duration timeout = absl::Seconds(60);
  double retry_budget_ratio = 1.0;  // retries allowed per request sent, across the run
  OnFailure on_failure = OnFailure::kRetryLater;
  // A 429 pauses every request start only after this many 429 answers in a row (an account-wide
  // limit); a lone 429 (one provider behind a router) delays only its own request.
  int pause_after_consecutive_429s = 8;
  // A request on the wire longer than max(straggler_after, 8 x the mean answer time) gives its slot
  // to another while it runs on to its timeout, and (hedge_stragglers) a copy of it is sent at once
  // (http::MultiClientOptions, "Stragglers"): an answer that hangs until --timeout_s neither eats
  // the concurrency nor holds its record for the whole timeout.
  absl::Duration straggler_after = absl::Seconds(1);
  double straggler_latency_multiple = 8;
  bool hedge_stragglers = true;
  InputOptions input;
  OutputOptions output;
  std::string cache_path;  // "" = no cache
  int64_t limit = 0;       // stop after this many new records (0 = all)
  bool progress = true;
  std::vector<std::pair<std::string, std::string>> extra_headers = {{"X-Title", "ConvForever"}};
};

struct ClassifySummary {
  int64_t input_lines = 0, skipped_bad_json = 0, skipped_no_id = 0, skipped_empty_caption = 0;
  int64_t already_done = 0, duplicates = 0;
  int64_t written = 0, labeled = 0, unknown = 0, failed = 0, left_for_later = 0;
  int64_t cache_hits = 0, joined_in_flight = 0;
  int64_t requests = 0, retries = 0, hedged = 0;
  int64_t prompt_tokens = 0, completion_tokens = 0, total_tokens = 0;
  int64_t torn_bytes_dropped = 0, shards_written = 0;
  double wall_seconds = 0;
  std::map<std::string, int64_t> histogram;  // label -> count, this run

  std::string Format() const;  // multi-line human summary
};

// Runs the whole job. `source` names the input in messages. `summary` is filled even on error.
absl::Status RunClassifier(const ClassifierOptions& options, std::istream& input, const std::string& source,
                           ShardSink* sink, ClassifySummary* summary);

}  // namespace cf::caption

#endif  // CONVFOREVER_CAPTION_CLASSIFIER_H_
