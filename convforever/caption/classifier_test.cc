#include "convforever/caption/classifier.h"

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "convforever/caption/testing/fake_openai.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::caption {
namespace {

using json = nlohmann::json;
using testing::FakeOpenAi;

constexpr char kKey[] = "sk-or-v1-TOPSECRET-0123456789";

std::vector<json> ReadJsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

// The output keyed by id (records land in completion order, not input order).
std::map<std::string, json> ById(const std::vector<json>& records) {
  std::map<std::string, json> by_id;
  for (const json& r : records) EXPECT_TRUE(by_id.emplace(r["id"].get<std::string>(), r).second) << r.dump();
  return by_id;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ClassifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = FakeOpenAi::Start({.api_key = kKey, .slow_delay = absl::Seconds(3)});
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(fake).value();
    dir_ = absl::StrCat(::testing::TempDir(), "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    mkdir(dir_.c_str(), 0755);
    o_.base_url = fake_->base_url();
    o_.api_key = kKey;
    o_.prompt.model = "test-model";
    o_.categories = {"dog", "cat", "bird", "fish"};
    o_.concurrency = 4;
    o_.requests_per_minute = 0;
    o_.max_attempts = 4;
    o_.base_backoff = absl::Milliseconds(1);
    o_.max_backoff = absl::Milliseconds(20);
    o_.timeout = absl::Seconds(1);
    o_.output = {.path = dir_ + "/out.jsonl", .shard_dir = dir_ + "/shards", .sync_every = 3};
    o_.cache_path = dir_ + "/cache.sqlite";
    o_.progress = false;
  }

  absl::Status Run(const std::string& input) {
    std::istringstream in(input);
    return RunClassifier(o_, in, "test-input", nullptr, &summary_);
  }

  static std::string Line(const std::string& id, const std::string& caption) {
    return json{{"id", id}, {"caption", caption}, {"url", "http://img/" + id}}.dump() + "\n";
  }

  std::unique_ptr<FakeOpenAi> fake_;
  std::string dir_;
  ClassifierOptions o_;
  ClassifySummary summary_;
};

TEST_F(ClassifierTest, EveryMisbehaviourIsRetriedAndEachRecordWrittenOnce) {
  const std::vector<std::string> modes = {"429ra", "429ms", "429reset", "429resets", "429openai", "429hf",
                                          "500",   "502",   "503",      "malformed", "error200", "nochoices",
                                          "slow",  "drop",  "verbose"};
  std::string input;
  for (size_t i = 0; i < modes.size(); ++i) {
    input += Line(absl::StrCat("m", i), absl::StrCat("[[", modes[i], "]] a cat on a sofa #", i));
  }
  input += Line("plain", "a bird in the sky");
  ASSERT_TRUE(Run(input).ok());
  const auto records = ReadJsonl(o_.output.path);
  ASSERT_EQ(records.size(), modes.size() + 1);
  auto out = ById(records);
  ASSERT_EQ(out.size(), modes.size() + 1);
  for (size_t i = 0; i < modes.size(); ++i) {
    const json& r = out[absl::StrCat("m", i)];
    EXPECT_EQ(r["label"], "cat") << modes[i] << ": " << r.dump();
    EXPECT_EQ(r["label_id"], 1);
    EXPECT_EQ(r["url"], absl::StrCat("http://img/m", i));
    EXPECT_FALSE(r.contains("error")) << r.dump();
  }
  EXPECT_EQ(out["plain"]["label"], "bird");
  // Written as they finished: the plain record is not held behind the slow one (3 s).
  EXPECT_NE(records.back()["caption"].get<std::string>().find("[[slow]]"), std::string::npos);
  // Each misbehaving caption but "verbose" needed exactly one retry (a drop may be absorbed by
  // libcurl's own resend on a reused connection; the slow one may be answered to its hedge).
  EXPECT_GE(summary_.retries + summary_.hedged, static_cast<int64_t>(modes.size()) - 2);
  EXPECT_EQ(summary_.written, static_cast<int64_t>(modes.size()) + 1);
  EXPECT_EQ(summary_.total_tokens, 42 * (static_cast<int64_t>(modes.size()) + 1));
  EXPECT_EQ(summary_.histogram["cat"], static_cast<int64_t>(modes.size()));
}

TEST_F(ClassifierTest, ARecordWaitingForItsRetryHintHoldsNoSlot) {
  o_.concurrency = 1;
  o_.timeout = absl::Seconds(10);
  std::string input = Line("limited", "[[429ra2]] a dog waiting");
  for (int i = 0; i < 10; ++i) input += Line(absl::StrCat("r", i), absl::StrCat("a fish number ", i));
  ASSERT_TRUE(Run(input).ok());
  const auto out = ReadJsonl(o_.output.path);
  ASSERT_EQ(out.size(), 11u);
  // With one slot, the ten others were all answered and written during its 2 s wait.
  EXPECT_EQ(out.back()["id"], "limited");
  EXPECT_EQ(out.back()["label"], "dog");
  const testing::RetryLateness late = fake_->retry_lateness();
  EXPECT_EQ(late.retries, 1);
  EXPECT_EQ(late.early, 0) << "the retry came before its Retry-After";
}

TEST_F(ClassifierTest, NoCategoryGivesUnknownWithRawAnswer) {
  ASSERT_TRUE(Run(Line("a", "a photo of a chair")).ok());
  const auto out = ReadJsonl(o_.output.path);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["label"], "unknown");
  EXPECT_EQ(out[0]["label_id"], -1);
  EXPECT_EQ(out[0]["raw"], "I am not sure.");
  EXPECT_EQ(summary_.unknown, 1);
}

TEST_F(ClassifierTest, OnFailureUnknownWritesUnknownWithError) {
  o_.on_failure = OnFailure::kUnknown;
  ASSERT_TRUE(Run(Line("a", "[[always500]] a dog") + Line("b", "[[always-malformed]] a dog #2") +
                  Line("c", "a fish")).ok());
  auto out = ById(ReadJsonl(o_.output.path));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out["a"]["label"], "unknown");
  EXPECT_NE(out["a"]["error"].get<std::string>().find("HTTP 500"), std::string::npos) << out["a"].dump();
  EXPECT_NE(out["b"]["error"].get<std::string>().find("malformed JSON"), std::string::npos) << out["b"].dump();
  EXPECT_EQ(out["c"]["label"], "fish");
  EXPECT_EQ(fake_->attempts("[[always500]] a dog"), 4);
  EXPECT_EQ(summary_.failed, 2);
}

TEST_F(ClassifierTest, ByDefaultATransientFailureIsLabeledByTheNextRun) {
  // Two attempts a run; the server fails the caption's first three attempts (a quota blip).
  o_.max_attempts = 2;
  const std::string input = Line("a", "[[503x3]] a dog") + Line("b", "a cat") + Line("c", "a chair");
  ASSERT_TRUE(Run(input).ok());
  auto out = ById(ReadJsonl(o_.output.path));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out.count("a"), 0u) << "a failure must not be written as a permanent answer";
  EXPECT_EQ(out["b"]["label"], "cat");
  // The model answered outside the categories: that is a real answer, kept as unknown.
  EXPECT_EQ(out["c"]["label"], "unknown");
  EXPECT_EQ(out["c"]["raw"], "I am not sure.");
  EXPECT_EQ(summary_.left_for_later, 1);
  EXPECT_EQ(summary_.unknown, 1);
  EXPECT_EQ(fake_->attempts("[[503x3]] a dog"), 2);
  // Rerun: attempt 3 fails again, attempt 4 gets the answer; b and c are not asked again.
  ASSERT_TRUE(Run(input).ok());
  EXPECT_EQ(summary_.already_done, 2);
  EXPECT_EQ(summary_.left_for_later, 0);
  out = ById(ReadJsonl(o_.output.path));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out["a"]["label"], "dog");
  EXPECT_FALSE(out["a"].contains("error"));
  EXPECT_EQ(fake_->attempts("a chair"), 1);
}

TEST_F(ClassifierTest, RetryLaterLeavesFailuresForTheNextRun) {
  o_.on_failure = OnFailure::kRetryLater;
  const std::string input = Line("a", "[[always500]] a dog") + Line("b", "a cat");
  ASSERT_TRUE(Run(input).ok());
  auto out = ReadJsonl(o_.output.path);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["id"], "b");
  EXPECT_EQ(summary_.left_for_later, 1);
  // The next run sends only the record left over (here it fails again and is left again).
  ASSERT_TRUE(Run(input).ok());
  EXPECT_EQ(summary_.already_done, 1);
  EXPECT_EQ(summary_.left_for_later, 1);
  EXPECT_EQ(ReadJsonl(o_.output.path).size(), 1u);
}

TEST_F(ClassifierTest, AuthErrorsStopAtOnceWithoutRetryStorm) {
  for (const std::string code : {"401", "402", "403"}) {
    SetUp();
    std::string input;
    for (int i = 0; i < 200; ++i) input += Line(absl::StrCat("r", i), absl::StrCat("[[", code, "]] a dog ", i));
    const absl::Status s = Run(input);
    ASSERT_FALSE(s.ok()) << code;
    EXPECT_NE(s.message().find(code), std::string::npos) << s;
    EXPECT_NE(s.message().find("/chat/completions"), std::string::npos) << s;
    EXPECT_EQ(s.message().find(kKey), std::string::npos);
    // At most the requests already in flight when the first answer came back, never retried.
    EXPECT_LE(fake_->server().request_count(), o_.concurrency) << code;
    EXPECT_EQ(summary_.retries, 0);
  }
}

TEST_F(ClassifierTest, WrongKeyIsUnauthenticated) {
  o_.api_key = "sk-wrong-key";
  const absl::Status s = Run(Line("a", "a dog"));
  EXPECT_TRUE(absl::IsUnauthenticated(s)) << s;
  EXPECT_EQ(s.message().find("sk-wrong-key"), std::string::npos) << s;
}

TEST_F(ClassifierTest, CacheAndInFlightJoiningSaveRequests) {
  std::string input;
  for (int i = 0; i < 20; ++i) input += Line(absl::StrCat("r", i), i % 2 ? "a dog" : "a cat");
  ASSERT_TRUE(Run(input).ok());
  EXPECT_EQ(summary_.written, 20);
  EXPECT_LE(summary_.requests, 2 + 2 * o_.concurrency);  // identical captions share answers
  EXPECT_EQ(summary_.cache_hits + summary_.joined_in_flight + summary_.requests, 20);
  // A second job with another output but the same cache makes no request at all.
  o_.output.path = dir_ + "/out2.jsonl";
  o_.output.shard_dir = dir_ + "/shards2";
  const int64_t before = fake_->server().request_count();
  ASSERT_TRUE(Run(input).ok());
  EXPECT_EQ(summary_.cache_hits, 20);
  EXPECT_EQ(summary_.requests, 0);
  EXPECT_EQ(fake_->server().request_count(), before);
  EXPECT_EQ(ReadJsonl(o_.output.path).size(), 20u);
  // A changed configuration does not reuse those labels.
  o_.prompt.model = "other-model";
  o_.output.path = dir_ + "/out3.jsonl";
  o_.output.shard_dir = dir_ + "/shards3";
  ASSERT_TRUE(Run(input).ok());
  EXPECT_EQ(summary_.cache_hits + summary_.joined_in_flight, 20 - summary_.requests);
  EXPECT_GT(summary_.requests, 0);
}

TEST_F(ClassifierTest, ResumeSkipsDoneIdsAndDuplicates) {
  std::string input;
  for (int i = 0; i < 10; ++i) input += Line(absl::StrCat("r", i), absl::StrCat("a fish number ", i));
  o_.limit = 4;
  ASSERT_TRUE(Run(input).ok());
  EXPECT_EQ(ReadJsonl(o_.output.path).size(), 4u);
  o_.limit = 0;
  ASSERT_TRUE(Run(input + Line("r3", "a dog (dup id)")).ok());
  EXPECT_EQ(summary_.already_done, 5);
  auto out = ById(ReadJsonl(o_.output.path));
  ASSERT_EQ(out.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(out.count(absl::StrCat("r", i)), 1u) << i;
  EXPECT_EQ(out["r3"]["label"], "fish");
  ASSERT_TRUE(Run(Line("x", "a cat") + Line("x", "a dog")).ok());
  EXPECT_EQ(summary_.duplicates, 1);
}

TEST_F(ClassifierTest, JsonSchemaMode) {
  o_.prompt.json_schema = true;
  ASSERT_TRUE(Run(Line("a", "a small bird") + Line("b", "a table")).ok());
  auto out = ById(ReadJsonl(o_.output.path));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out["a"]["label"], "bird");
  EXPECT_EQ(out["b"]["label"], "unknown");
  const auto req = json::parse(fake_->server().requests().front().body);
  EXPECT_TRUE(req.contains("response_format"));
}

TEST_F(ClassifierTest, SecretNeverInOutputsLogsOrSummary) {
  ::testing::internal::CaptureStderr();
  o_.progress = true;
  ASSERT_TRUE(Run(Line("a", "a dog") + Line("b", "[[always500]] a cat") + Line("c", "a chair")).ok());
  const std::string err = ::testing::internal::GetCapturedStderr();
  for (const std::string& text : {err, summary_.Format(), ReadAll(o_.output.path), ReadAll(o_.cache_path)}) {
    EXPECT_EQ(text.find(kKey), std::string::npos);
    EXPECT_EQ(text.find("TOPSECRET"), std::string::npos);
  }
  // The key did go where it belongs.
  EXPECT_EQ(fake_->server().requests().front().headers.Get("authorization").value(),
            absl::StrCat("Bearer ", kKey));
}

TEST_F(ClassifierTest, BadInputRecordsAreSkippedAndCounted) {
  ASSERT_TRUE(Run("garbage\n{\"id\":\"a\"}\n{\"caption\":\"x\"}\n" + Line("ok", "a dog")).ok());
  EXPECT_EQ(summary_.skipped_bad_json, 1);
  EXPECT_EQ(summary_.skipped_empty_caption, 1);
  EXPECT_EQ(summary_.skipped_no_id, 1);
  EXPECT_EQ(summary_.written, 1);
}

}  // namespace
}  // namespace cf::caption
