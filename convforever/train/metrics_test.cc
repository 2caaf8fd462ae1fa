#include "convforever/train/metrics.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cf::train {
namespace {

std::string TempDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(root ? root : "/tmp") + "/metrics_XXXXXX";
  return mkdtemp(tmpl.data());
}

std::vector<nlohmann::json> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Records everything it is given; fails on demand.
class RecordingSink : public MetricSink {
 public:
  absl::Status Log(int64_t step, const Scalars& scalars) override {
    steps.push_back(step);
    return fail ? absl::InternalError("recording sink failed") : absl::OkStatus();
  }
  absl::Status LogConfig(const nlohmann::json& config) override {
    configs.push_back(config);
    return absl::OkStatus();
  }
  absl::Status LogSystem(const Scalars& scalars) override {
    ++system;
    return absl::OkStatus();
  }
  absl::Status Flush() override { return absl::OkStatus(); }
  absl::Status Close() override {
    ++closed;
    return absl::OkStatus();
  }
  bool fail = false;
  std::vector<int64_t> steps;
  std::vector<nlohmann::json> configs;
  int system = 0;
  int closed = 0;
};

TEST(JsonlSink, WritesOneObjectPerLineFlushedImmediately) {
  const std::string dir = TempDir() + "/run";  // created by Open
  auto sink = JsonlSink::Open(dir);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->LogConfig({{"lr", 0.001}, {"model", "convnext"}}).ok());
  ASSERT_TRUE((*sink)->Log(10, {{"train/loss", 0.5}, {"lr", 1e-3}}).ok());
  ASSERT_TRUE((*sink)->LogSystem({{"cpu/utilization", 87.5}}).ok());
  // Read before Close(): every line is already on disk.
  const auto lines = ReadLines(dir + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["kind"], "config");
  EXPECT_EQ(lines[0]["config"]["model"], "convnext");
  EXPECT_EQ(lines[1]["kind"], "metrics");
  EXPECT_EQ(lines[1]["step"], 10);
  EXPECT_DOUBLE_EQ(lines[1]["train/loss"].get<double>(), 0.5);
  EXPECT_GT(lines[1]["wall_time"].get<double>(), 1.6e9);
  EXPECT_EQ(lines[2]["kind"], "system");
  EXPECT_DOUBLE_EQ(lines[2]["cpu/utilization"].get<double>(), 87.5);
  EXPECT_TRUE((*sink)->Close().ok());
  EXPECT_TRUE((*sink)->Close().ok());  // idempotent
  EXPECT_EQ((*sink)->Log(11, {}).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(JsonlSink, NonFiniteValuesBecomeStrings) {
  const std::string dir = TempDir();
  auto sink = JsonlSink::Open(dir);
  ASSERT_TRUE(sink.ok());
  const double inf = std::numeric_limits<double>::infinity();
  ASSERT_TRUE((*sink)->Log(1, {{"a", std::nan("")}, {"b", inf}, {"c", -inf}, {"d", 2.0}}).ok());
  const auto lines = ReadLines(dir + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["a"], "NaN");
  EXPECT_EQ(lines[0]["b"], "Infinity");
  EXPECT_EQ(lines[0]["c"], "-Infinity");
  EXPECT_EQ(lines[0]["d"], 2.0);
}

TEST(JsonlSink, AppendsAcrossReopen) {
  const std::string dir = TempDir();
  for (int step : {1, 2}) {
    auto sink = JsonlSink::Open(dir);
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->Log(step, {{"loss", 1.0 / step}}).ok());
  }
  const auto lines = ReadLines(dir + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["step"], 2);
}

TEST(JsonlSink, DiscardAfterDropsLaterStepsForAResumedRun) {
  const std::string dir = TempDir();
  {
    auto sink = JsonlSink::Open(dir);
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->LogConfig({{"lr", 1}}).ok());
    for (int step = 1; step <= 5; ++step) ASSERT_TRUE((*sink)->Log(step, {{"loss", 1.0}}).ok());
    ASSERT_TRUE((*sink)->LogSystem({{"cpu/utilization", 1.0}}).ok());
  }
  // The interrupted run was killed mid-line.
  std::ofstream(dir + "/metrics.jsonl", std::ios::app) << "{\"kind\":\"metrics\",\"st";
  auto sink = JsonlSink::Open(dir);
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->DiscardAfter(3).ok());
  ASSERT_TRUE((*sink)->Log(4, {{"loss", 0.5}}).ok());
  const auto lines = ReadLines(dir + "/metrics.jsonl");
  std::vector<int64_t> steps;
  for (const auto& line : lines) {
    if (line["kind"] == "metrics") steps.push_back(line["step"]);
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(lines.size(), 6u);  // + config + system
  EXPECT_EQ(lines.back()["loss"], 0.5);
}

TEST(JsonlSink, RejectsReservedAndEmptyNames) {
  const std::string dir = TempDir();
  auto sink = JsonlSink::Open(dir);
  ASSERT_TRUE(sink.ok());
  absl::Status s = (*sink)->Log(1, {{"step", 1.0}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("\"step\""), std::string::npos) << s;
  EXPECT_EQ((*sink)->Log(1, {{"", 1.0}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*sink)->LogSystem({{"wall_time", 1.0}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ReadLines(dir + "/metrics.jsonl").empty());  // nothing half-written
}

TEST(JsonlSink, OpenFailsNamingThePath) {
  auto sink = JsonlSink::Open("/proc/no/such/dir");
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("/proc/no/such/dir"), std::string::npos);
}

TEST(JsonlSink, ConfigSecretsAreStripped) {
  const std::string dir = TempDir();
  auto sink = JsonlSink::Open(dir);
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->LogConfig({{"hub_token", "hf_abcdefghijklmnopqrstuvwxyz"}, {"lr", 1}}).ok());
  const std::string text = [&] {
    std::ifstream in(dir + "/metrics.jsonl");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  EXPECT_EQ(text.find("hf_abc"), std::string::npos);
  EXPECT_EQ(text.find("hub_token"), std::string::npos);
  EXPECT_NE(text.find("\"lr\":1"), std::string::npos);
}

TEST(StripSecrets, RemovesSecretKeysAndCredentialValuesRecursively) {
  const nlohmann::json config = {
      {"lr", 0.004},
      {"OPENROUTER_API_KEY", "x"},
      {"Password", "p"},
      {"client_secret", "s"},
      {"keep_last_k", 3},
      {"nested", {{"hf_token", "t"}, {"name", "ok"}, {"list", {"a", "sk-0123456789abcdefghij"}}}},
      {"note", "hf_short"},
      {"leaked", "hf_0123456789abcdefghijKLMN"},
  };
  const nlohmann::json out = StripSecrets(config);
  EXPECT_EQ(out.size(), 4u) << out.dump();  // lr, keep_last_k, nested, note
  EXPECT_TRUE(out.contains("keep_last_k"));
  EXPECT_FALSE(out["nested"].contains("hf_token"));
  EXPECT_EQ(out["nested"]["name"], "ok");
  EXPECT_EQ(out["nested"]["list"], nlohmann::json::array({"a"}));
  EXPECT_EQ(out["note"], "hf_short");  // too short to be a token
  EXPECT_FALSE(out.contains("leaked"));
}

TEST(StripSecrets, RedactsCredentialsInUrls) {
  const nlohmann::json config = {
      {"data_dir", "https://u:pw@data.example/shards/{000..009}.tar?X-Amz-Signature=abc&x=1"},
      {"urls", {"http://h/a?sig=s"}},
      {"plain", "fashion_mnist"},
  };
  const nlohmann::json out = StripSecrets(config);
  EXPECT_EQ(out["data_dir"], "https://data.example/shards/{000..009}.tar?X-Amz-Signature=REDACTED&x=1");
  EXPECT_EQ(out["urls"][0], "http://h/a?sig=REDACTED");
  EXPECT_EQ(out["plain"], "fashion_mnist");
}

TEST(MultiSink, FansOutToAllAndReturnsFirstError) {
  RecordingSink a, b;
  auto owned = std::make_unique<RecordingSink>();
  RecordingSink* c = owned.get();
  MultiSink multi;
  multi.AddUnowned(&a);
  multi.AddUnowned(&b);
  multi.Add(std::move(owned));
  EXPECT_EQ(multi.size(), 3u);
  a.fail = true;
  absl::Status s = multi.Log(7, {{"loss", 1.0}});
  EXPECT_EQ(s.message(), "recording sink failed");
  EXPECT_EQ(b.steps, std::vector<int64_t>{7});  // still called after a failed
  EXPECT_EQ(c->steps, std::vector<int64_t>{7});
  ASSERT_TRUE(multi.LogConfig({{"x", 1}}).ok());
  EXPECT_EQ(b.configs.size(), 1u);
  ASSERT_TRUE(multi.LogSystem({{"cpu/utilization", 1}}).ok());
  ASSERT_TRUE(multi.DiscardAfter(3).ok());
  EXPECT_EQ(c->system, 1);
  ASSERT_TRUE(multi.Close().ok());
  EXPECT_EQ(a.closed + b.closed + c->closed, 3);
}

TEST(JsonNumberOrString, FiniteStaysNumber) {
  EXPECT_TRUE(JsonNumberOrString(1.5).is_number());
  EXPECT_EQ(JsonNumberOrString(-std::numeric_limits<double>::infinity()), "-Infinity");
}

}  // namespace
}  // namespace cf::train
