#include "convforever/caption/classifier.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/base/progress.h"
#include "convforever/base/signals.h"
#include "convforever/base/status_macros.h"
#include "convforever/caption/categories.h"
#include "convforever/caption/label_cache.h"
#include "convforever/http/multi_client.h"
#include "glog/logging.h"

namespace cf::caption {

using json = nlohmann::ordered_json;

std::string ClassifySummary::Format() const {
  std::string out = absl::StrFormat(
      "records written %d (labeled %d, unknown %d of which failed %d), left for a later run %d\n"
      "skipped: already in output %d, duplicate ids %d, bad JSON %d, no id %d, empty caption %d\n"
      "requests %d, retries %d, hedged %d, cache hits %d, joined in flight %d\n"
      "tokens: prompt %d, completion %d, total %d\n"
      "wall %.1f s (%.1f records/s), shards closed %d\n",
      written, labeled, unknown, failed, left_for_later, already_done, duplicates, skipped_bad_json, skipped_no_id,
      skipped_empty_caption, requests, retries, hedged, cache_hits, joined_in_flight, prompt_tokens, completion_tokens,
      total_tokens, wall_seconds, wall_seconds > 0 ? written / wall_seconds : 0.0, shards_written);
  if (!histogram.empty()) {
    std::vector<std::pair<int64_t, std::string>> sorted;
    for (const auto& [label, n] : histogram) sorted.emplace_back(-n, label);
    std::sort(sorted.begin(), sorted.end());
    absl::StrAppend(&out, "labels:");
    for (const auto& [neg, label] : sorted) absl::StrAppend(&out, " ", label, "=", -neg);
    absl::StrAppend(&out, "\n");
  }
  return out;
}

namespace {

bool IsFatal(const absl::Status& s) {
  return absl::IsUnauthenticated(s) || absl::IsPermissionDenied(s) || absl::IsFailedPrecondition(s);
}



// The outcome for one caption, shared by every record with that caption.
struct Outcome {
  int label_id = -1;
  std::string raw;    // the answer when it matched nothing
  std::string error;  // when the request failed for good
};

class Pipeline {
 public:
  Pipeline(const ClassifierOptions& o, ClassifySummary* s) : o_(o), s_(s) {}
  absl::Status Run(std::istream& input, const std::string& source, ShardSink* sink);

 private:
  absl::Status Setup(ShardSink* sink);
  absl::Status Fill(RecordReader& reader);
  void Submit(const std::string& caption);
  absl::Status Complete(const std::string& caption, absl::StatusOr<http::Response> outcome);
  absl::Status Resolve(int64_t seq, const Outcome& outcome);
  std::string ProgressExtra() const;

  const ClassifierOptions& o_;
  ClassifySummary* s_;
  std::unique_ptr<LabeledOutput> output_;
  std::unique_ptr<LabelCache> cache_;
  std::unique_ptr<http::RateLimiter> limiter_;
  std::unique_ptr<http::RetryBudget> budget_;
  std::unique_ptr<http::MultiClient> client_;
  http::RetryPolicy policy_;

  // Records read and not yet finished, by input position. Each is written the moment it finishes,
  // so a slow or retried record holds back nothing but itself.
  std::unordered_map<int64_t, CaptionRecord> window_;
  std::unordered_map<std::string, std::vector<int64_t>> in_flight_;
  std::unordered_set<std::string> accepted_ids_;
  int64_t next_seq_ = 0, accepted_ = 0;
  size_t max_window_ = 0;
  bool input_done_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, absl::StatusOr<http::Response>>> done_;  // guarded by mu_
};

absl::Status Pipeline::Setup(ShardSink* sink) {
  if (o_.categories.empty()) return absl::InvalidArgumentError("no categories");
  ASSIGN_OR_RETURN(output_, LabeledOutput::Open(o_.output, sink));
  s_->torn_bytes_dropped = output_->torn_bytes_dropped();
  if (!o_.cache_path.empty()) {
    ASSIGN_OR_RETURN(cache_, LabelCache::Open(o_.cache_path, CacheNamespace(o_.prompt.model, kPromptVersion,
                                                                          o_.prompt.json_schema, o_.categories)));
  }
  double rpm = o_.requests_per_minute;
  if (o_.rate_limit_pause_s > 0) rpm = rpm > 0 ? std::min(rpm, 60.0 / o_.rate_limit_pause_s) : 60.0 / o_.rate_limit_pause_s;
  // 100 ms of slack (at least 2 tokens) so the engine waking a little late loses no rate; the
  // bucket starts with one token so the long-run rate is the setting, not the setting + a burst.
  const int burst = std::max(2, static_cast<int>(std::ceil(rpm / 60.0 * 0.1)));
  limiter_ = std::make_unique<http::RateLimiter>(
      http::RateLimiterOptions{.requests_per_minute = rpm, .burst = burst, .initial_tokens = 1});
  budget_ = std::make_unique<http::RetryBudget>(o_.retry_budget_ratio, 100);
  policy_.max_attempts = std::max(1, o_.max_attempts);
  policy_.base_delay = o_.base_backoff;
  policy_.max_delay = o_.max_backoff;
  // An error object, no choices or malformed JSON in a 200: transient upstream trouble, retried;
  // an auth/credit error object is final (and stops the run).
  policy_.retry_if = [](const http::Response& r) {
    if (r.status != 200) return false;
    absl::StatusOr<Completion> c = ParseCompletion(r.body);
    return !c.ok() && !IsFatal(c.status());
  };
  http::MultiClientOptions mo;
  mo.max_in_flight = std::max(1, o_.concurrency);
  mo.retry = policy_;
  mo.retry_budget = budget_.get();
  mo.rate_limiter = limiter_.get();
  // 401/402/403, as a status or as an error object in a 200: no request may start after it.
  mo.halt_on = [](const absl::StatusOr<http::Response>& r) {
    if (!r.ok()) return false;
    if (r->status == 401 || r->status == 402 || r->status == 403) return true;
    if (r->status != 200) return false;
    absl::StatusOr<Completion> c = ParseCompletion(r->body);
    return !c.ok() && IsFatal(c.status());
  };
  mo.pause_after_consecutive_429s = o_.pause_after_consecutive_429s;
  mo.straggler_after = o_.straggler_after;
  mo.straggler_latency_multiple = o_.straggler_latency_multiple;
  mo.hedge_stragglers = o_.hedge_stragglers;
  client_ = std::make_unique<http::MultiClient>(mo);
  // Bounds memory only: records wait here for their answer, in any order.
  max_window_ = static_cast<size_t>(mo.max_in_flight) * 8 + 256;
  return absl::OkStatus();
}

void Pipeline::Submit(const std::string& caption) {
  http::Request req;
  req.method = "POST";
  req.url = absl::StrCat(o_.base_url, "/chat/completions");
  req.timeout = o_.timeout;
  req.headers.Set("Content-Type", "application/json");
  if (!o_.api_key.empty()) req.headers.Set("Authorization", absl::StrCat("Bearer ", o_.api_key));
  for (const auto& [k, v] : o_.extra_headers) req.headers.Set(k, v);
  req.body = BuildRequestBody(o_.prompt, o_.categories, caption);
  client_->Submit(std::move(req), [this, caption](absl::StatusOr<http::Response> outcome) {
    std::lock_guard<std::mutex> lock(mu_);
    done_.emplace_back(caption, std::move(outcome));
    cv_.notify_one();
  });
}

absl::Status Pipeline::Fill(RecordReader& reader) {
  while (!input_done_ && window_.size() < max_window_) {
    if (base::StopRequested()) {  // Ctrl-C / SIGTERM: finish what is in flight, read no more
      input_done_ = true;
      break;
    }
    CaptionRecord rec;
    ASSIGN_OR_RETURN(bool got, reader.Next(&rec));
    if (!got || (o_.limit > 0 && accepted_ >= o_.limit)) {
      input_done_ = true;
      break;
    }
    if (output_->Contains(rec.id_key)) {
      ++s_->already_done;
      continue;
    }
    if (!accepted_ids_.insert(rec.id_key).second) {
      ++s_->duplicates;
      continue;
    }
    ++accepted_;
    const int64_t seq = next_seq_++;
    const std::string caption = rec.caption;
    window_[seq] = std::move(rec);
    if (cache_ != nullptr) {
      ASSIGN_OR_RETURN(std::optional<std::string> hit, cache_->Get(caption));
      if (hit) {
        const auto it = std::find(o_.categories.begin(), o_.categories.end(), *hit);
        if (it != o_.categories.end()) {
          ++s_->cache_hits;
          RETURN_IF_ERROR(Resolve(seq, Outcome{static_cast<int>(it - o_.categories.begin())}));
          continue;
        }
      }
    }
    auto [it, fresh] = in_flight_.try_emplace(caption);
    it->second.push_back(seq);
    if (fresh) {
      Submit(caption);
    } else {
      ++s_->joined_in_flight;
    }
  }
  return absl::OkStatus();
}

absl::Status Pipeline::Complete(const std::string& caption, absl::StatusOr<http::Response> result) {
  Outcome outcome;
  if (!result.ok()) {
    outcome.error = std::string(result.status().message());
  } else if (result->status == 401 || result->status == 402 || result->status == 403) {
    http::Request described;
    described.method = "POST";
    described.url = absl::StrCat(o_.base_url, "/chat/completions");
    return http::HttpStatusToError(described, *result);
  } else if (!result->ok()) {
    outcome.error = absl::StrCat("HTTP ", result->status, " after ", result->attempts,
                                 " attempts: ", result->body.substr(0, 200));
  } else {
    absl::StatusOr<Completion> c = ParseCompletion(result->body);
    if (!c.ok() && IsFatal(c.status())) {
      return absl::Status(c.status().code(), absl::StrCat("POST ", o_.base_url, "/chat/completions: ",
                                                          c.status().message()));
    }
    if (!c.ok()) {
      outcome.error = absl::StrCat(c.status().message(), " (after ", result->attempts, " attempts)");
    } else {
      s_->prompt_tokens += c->prompt_tokens;
      s_->completion_tokens += c->completion_tokens;
      s_->total_tokens += c->total_tokens;
      outcome.label_id = MatchCategory(c->content, o_.categories, o_.prompt.json_schema);
      if (outcome.label_id < 0) {
        outcome.raw = c->content;
      } else if (cache_ != nullptr) {
        RETURN_IF_ERROR(cache_->Put(caption, o_.categories[outcome.label_id]));
      }
    }
  }
  auto it = in_flight_.find(caption);
  if (it == in_flight_.end()) return absl::OkStatus();
  std::vector<int64_t> seqs = std::move(it->second);
  in_flight_.erase(it);
  for (int64_t seq : seqs) RETURN_IF_ERROR(Resolve(seq, outcome));
  return absl::OkStatus();
}

absl::Status Pipeline::Resolve(int64_t seq, const Outcome& outcome) {
  auto node = window_.extract(seq);
  CHECK(!node.empty()) << "record " << seq << " resolved twice";
  const CaptionRecord& record = node.mapped();
  if (!outcome.error.empty() && o_.on_failure == OnFailure::kRetryLater) {
    ++s_->left_for_later;
    return absl::OkStatus();
  }
  json out;
  out[o_.input.id_field] = record.id;
  out[o_.input.caption_field] = record.caption;
  const std::string label = outcome.label_id >= 0 ? o_.categories[outcome.label_id] : std::string(kUnknownLabel);
  out["label"] = label;
  out["label_id"] = outcome.label_id;
  for (auto& [k, v] : record.passthrough.items()) out[k] = v;
  if (!outcome.raw.empty() || (outcome.label_id < 0 && outcome.error.empty())) out["raw"] = outcome.raw;
  if (!outcome.error.empty()) out["error"] = outcome.error;
  RETURN_IF_ERROR(output_->Append(out));
  ++s_->written;
  ++s_->histogram[label];
  if (!outcome.error.empty()) {
    ++s_->failed;
    ++s_->unknown;
  } else if (outcome.label_id < 0) {
    ++s_->unknown;
  } else {
    ++s_->labeled;
  }
  return absl::OkStatus();
}

std::string Pipeline::ProgressExtra() const {
  const double unknown_pct = s_->written > 0 ? 100.0 * s_->unknown / s_->written : 0.0;
  return absl::StrFormat("req %d | retries %d | unknown %.1f%% | cache %d", client_->attempts(),
                         client_->retries(), unknown_pct, s_->cache_hits);
}

absl::Status Pipeline::Run(std::istream& input, const std::string& source, ShardSink* sink) {
  RETURN_IF_ERROR(Setup(sink));
  RecordReader reader(&input, source, o_.input);
  std::unique_ptr<base::ProgressLine> progress;
  if (o_.progress) {
    progress = std::make_unique<base::ProgressLine>(base::ProgressOptions{
        .label = "classify", .unit = "rec", .total = o_.limit});
  }
  absl::Status status;
  for (;;) {
    status = Fill(reader);
    if (!status.ok() || (input_done_ && window_.empty())) break;
    std::vector<std::pair<std::string, absl::StatusOr<http::Response>>> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return !done_.empty(); });
      batch.swap(done_);
    }
    for (auto& [caption, result] : batch) {
      status = Complete(caption, std::move(result));
      if (!status.ok()) break;
    }
    if (!status.ok()) break;
    if (progress) progress->Update(s_->written, ProgressExtra());
  }
  if (!status.ok()) {
    client_->Shutdown();  // stop at once: no retry storm after a fatal answer
  }
  client_->Wait();
  s_->requests = client_->attempts();
  s_->retries = client_->retries();
  s_->hedged = client_->hedges();
  if (progress) progress->Finish(ProgressExtra());
  if (cache_ != nullptr) {
    if (absl::Status c = cache_->Flush(); status.ok()) status = c;
  }
  if (absl::Status f = output_->Finish(); status.ok()) status = f;
  s_->shards_written = output_->shards_written();
  if (absl::Status c = (sink != nullptr ? sink->Close() : absl::OkStatus()); !c.ok()) {
    LOG(WARNING) << "closing the shard sink: " << c;
  }
  const auto counters = reader.counters();
  s_->input_lines = counters.lines;
  s_->skipped_bad_json = counters.bad_json;
  s_->skipped_no_id = counters.no_id;
  s_->skipped_empty_caption = counters.empty_caption;
  return status;
}

}  // namespace

absl::Status RunClassifier(const ClassifierOptions& options, std::istream& input, const std::string& source,
                           ShardSink* sink, ClassifySummary* summary) {
  const absl::Time start = absl::Now();
  *summary = ClassifySummary();
  Pipeline pipeline(options, summary);
  absl::Status status = pipeline.Run(input, source, sink);
  summary->wall_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return status;
}

}  // namespace cf::caption
