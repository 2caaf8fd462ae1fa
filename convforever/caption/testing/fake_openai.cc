#include "convforever/caption/testing/fake_openai.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace cf::caption::testing {

using http::testing::ServerRequest;
using http::testing::ServerResponse;
using nlohmann::json;

absl::StatusOr<std::unique_ptr<FakeOpenAi>> FakeOpenAi::Start(FakeOpenAiOptions options) {
  auto server = http::testing::TestServer::Start();
  if (!server.ok()) return server.status();
  std::unique_ptr<FakeOpenAi> fake(new FakeOpenAi());
  fake->options_ = std::move(options);
  fake->server_ = std::move(server).value();
  FakeOpenAi* self = fake.get();
  fake->server_->Handle("POST", "/v1/chat/completions",
                        [self](const ServerRequest& r) { return self->Answer(r); });
  return fake;
}

std::string FakeOpenAi::base_url() const { return server_->base_url() + "/v1"; }

int FakeOpenAi::attempts(const std::string& caption) {
  std::lock_guard<std::mutex> lock(mu_);
  return attempts_[caption];
}

namespace {

std::string Between(const std::string& text, const std::string& a, const std::string& b) {
  const size_t i = text.find(a);
  if (i == std::string::npos) return "";
  const size_t j = b.empty() ? std::string::npos : text.find(b, i + a.size());
  return text.substr(i + a.size(), j == std::string::npos ? std::string::npos : j - i - a.size());
}

ServerResponse Error(int status, const std::string& code, const std::string& message) {
  return ServerResponse::Json(status, json{{"error", {{"code", code}, {"message", message}}}}.dump());
}

ServerResponse With429(const std::string& header, const std::string& value) {
  ServerResponse r = Error(429, "429", "rate limited");
  r.headers.Set(header, value);
  return r;
}

// FNV-1a over the seed, the caption and the attempt, mapped to [0, 1).
double Uniform(uint64_t seed, const std::string& caption, int attempt) {
  uint64_t h = 1469598103934665603ull ^ seed;
  auto mix = [&h](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
  for (char c : caption) mix(static_cast<unsigned char>(c));
  for (int i = 0; i < 4; ++i) mix(static_cast<unsigned char>(attempt >> (8 * i)));
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 32;
  return static_cast<double>(h >> 11) / static_cast<double>(1ull << 53);
}

}  // namespace

RetryLateness FakeOpenAi::retry_lateness() {
  std::lock_guard<std::mutex> lock(mu_);
  return lateness_;
}

void FakeOpenAi::NoteRetry(const std::string& caption, absl::Time received) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = hint_expiry_.find(caption);
  if (it == hint_expiry_.end()) return;
  const absl::Duration late = received - it->second;
  hint_expiry_.erase(it);
  ++lateness_.retries;
  if (late < absl::ZeroDuration()) ++lateness_.early;
  if (late > absl::Seconds(2)) ++lateness_.late_over_2s;
  lateness_.max_late = std::max(lateness_.max_late, late);
  lateness_.min_late = std::min(lateness_.min_late, late);
}

bool FakeOpenAi::RandomFault(const std::string& caption, int attempt, ServerResponse* out) {
  const FaultMix& f = options_.faults;
  double u = Uniform(f.seed, caption, attempt);
  const double v = Uniform(f.seed + 1, caption, attempt);  // picks the variant
  if ((u -= f.p429) < 0) {
    const absl::Time now = absl::Now();
    if (v < 1.0 / 3) {
      *out = With429("Retry-After", absl::StrCat(absl::ToInt64Seconds(absl::Ceil(f.hint, absl::Seconds(1)))));
      std::lock_guard<std::mutex> lock(mu_);
      hint_expiry_[caption] = now + absl::Ceil(f.hint, absl::Seconds(1));
      return true;
    }
    absl::Time expiry = now + f.hint;
    if (v < 2.0 / 3) {
      *out = With429("retry-after-ms", absl::StrCat(absl::ToInt64Milliseconds(f.hint)));
    } else {  // an absolute time in whole milliseconds: the hint is what the header says
      const int64_t ms = absl::ToUnixMillis(expiry);
      expiry = absl::FromUnixMillis(ms);
      *out = With429("X-RateLimit-Reset", absl::StrCat(ms));
    }
    std::lock_guard<std::mutex> lock(mu_);
    hint_expiry_[caption] = expiry;
    return true;
  }
  if ((u -= f.p5xx) < 0) {
    const int status = v < 1.0 / 3 ? 500 : (v < 2.0 / 3 ? 502 : 503);
    *out = Error(status, absl::StrCat(status), "upstream trouble");
    return true;
  }
  if ((u -= f.p_error200) < 0) {
    *out = Error(200, "502", "Provider returned error");
    return true;
  }
  if ((u -= f.p_garbage) < 0) {
    *out = ServerResponse::Text(200, "<html><body>502 Bad Gateway</body></html>");
    return true;
  }
  if ((u -= f.p_drop) < 0) {
    out->drop_connection = true;
    return true;
  }
  return false;  // p_delayed is applied to the real answer by the caller
}

ServerResponse FakeOpenAi::Answer(const ServerRequest& req) {
  if (!options_.api_key.empty() && req.headers.Get("Authorization").value_or("") != "Bearer " + options_.api_key) {
    return Error(401, "401", "No auth credentials found");
  }
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.contains("messages")) return Error(400, "400", "bad request body");
  const std::string content = body["messages"].back().value("content", "");
  const std::string caption = Between(content, "\n\nCaption: ", "");
  const std::vector<std::string> categories = absl::StrSplit(Between(content, "from this list:\n", "\n\n"), ", ");
  const bool json_mode = body.contains("response_format");
  int attempt;
  {
    std::lock_guard<std::mutex> lock(mu_);
    attempt = ++attempts_[caption];
  }
  const std::string mode = Between(caption, "[[", "]]");
  if (attempt > 1) NoteRetry(caption, req.received);
  ServerResponse r = AnswerAttempt(caption, categories, json_mode, mode, attempt);
  r.headers.Set("x-fake-attempt", absl::StrCat(attempt));
  return r;
}

ServerResponse FakeOpenAi::AnswerAttempt(const std::string& caption, const std::vector<std::string>& categories,
                                         bool json_mode, const std::string& mode, int attempt) {
  ServerResponse slow;
  if (RandomFault(caption, attempt, &slow)) return slow;
  if (Uniform(options_.faults.seed + 2, caption, attempt) < options_.faults.p_delayed) {
    slow.delay = options_.faults.delayed_by;
  }
  if (mode == "401") return Error(401, "401", "User not found.");
  if (mode == "402") return Error(402, "402", "Insufficient credits");
  if (mode == "403") return Error(403, "403", "Flagged by moderation");
  if (mode == "always500") return Error(500, "500", "internal");
  if (mode == "always-malformed") return ServerResponse::Json(200, "{\"choices\": [");
  if (attempt == 1) {
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    if (mode == "429ra") return With429("Retry-After", "0");
    if (mode == "429ra2") {  // a real wait, measured like FaultMix's 429s (retry_lateness)
      std::lock_guard<std::mutex> lock(mu_);
      hint_expiry_[caption] = absl::Now() + absl::Seconds(2);
      return With429("Retry-After", "2");
    }
    if (mode == "429ms") return With429("retry-after-ms", "5");
    if (mode == "429reset") return With429("X-RateLimit-Reset", absl::StrCat(now_ms + 5));
    if (mode == "429resets") return With429("X-RateLimit-Reset", absl::StrCat(now_ms / 1000));
    if (mode == "429openai") return With429("x-ratelimit-reset-requests", "5ms");
    if (mode == "429hf") return With429("RateLimit", "\"api\";r=0;t=0");
    if (mode == "500" || mode == "502" || mode == "503") return Error(std::stoi(mode), mode, "upstream trouble");
    if (mode == "malformed") return ServerResponse::Json(200, "{\"choices\": [{\"message\": ");
    if (mode == "error200") return Error(200, "502", "Provider returned error");
    if (mode == "nochoices") return ServerResponse::Json(200, "{\"id\": \"x\", \"choices\": []}");
    if (mode == "drop") {
      ServerResponse r;
      r.drop_connection = true;
      return r;
    }
    if (mode == "slow") slow.delay = options_.slow_delay;
  }
  if (mode == "503x3" && attempt <= 3) return Error(503, "503", "upstream trouble");
  std::string answer = "I am not sure.";
  std::string picked;
  const std::string lower = absl::AsciiStrToLower(caption);
  for (const std::string& c : categories) {
    for (absl::string_view word : absl::StrSplit(lower, absl::ByAnyChar(" ,.!?[]"), absl::SkipEmpty())) {
      if (word == absl::AsciiStrToLower(c)) {
        picked = c;
        break;
      }
    }
    if (!picked.empty()) break;
  }
  if (!picked.empty()) {
    answer = json_mode ? json{{"category", picked}}.dump() : picked;
    if (mode == "verbose" && !json_mode) answer = "The best category is: " + picked + ".";
  }
  completions_.fetch_add(1);
  json out = {{"id", "chatcmpl-fake"},
              {"object", "chat.completion"},
              {"choices", json::array({{{"index", 0},
                                        {"message", {{"role", "assistant"}, {"content", answer}}},
                                        {"finish_reason", "stop"}}})},
              {"usage", {{"prompt_tokens", 40}, {"completion_tokens", 2}, {"total_tokens", 42}}}};
  ServerResponse r = ServerResponse::Json(200, out.dump());
  r.delay = options_.latency + slow.delay;
  return r;
}

}  // namespace cf::caption::testing
