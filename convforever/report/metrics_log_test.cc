#include "convforever/report/metrics_log.h"

#include "absl/strings/match.h"
#include "convforever/report/test_fixtures.h"
#include "gtest/gtest.h"

namespace cf::report {
namespace {

constexpr char kConfig[] = R"({"kind":"config","wall_time":1.0,"config":{"model":"resnet18","lr":"0.001"}})";

TEST(MetricsLog, ReadsScalarsMergesStepsAndIgnoresSystemRecords) {
  const std::string text = std::string(kConfig) + "\n" +
                           R"({"kind":"metrics","step":10,"wall_time":2.0,"train/loss":2.5,"train/lr":0.1})" "\n"
                           R"({"kind":"system","wall_time":2.5,"cpu/utilization":40})" "\n"
                           R"({"kind":"metrics","step":10,"wall_time":3.0,"eval/loss":2.7,"eval/top1":0.4})" "\n"
                           R"({"kind":"metrics","step":20,"wall_time":4.0,"train/loss":2.0,"train/lr":0.05})" "\n";
  auto log = ParseMetricsLog(text, "m.jsonl");
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->config.at("model"), "resnet18");
  ASSERT_EQ(log->Series("train/loss").size(), 2u);
  EXPECT_EQ(log->Series("train/loss")[1].step, 20);
  EXPECT_DOUBLE_EQ(log->Series("train/loss")[1].value, 2.0);
  ASSERT_EQ(log->Series("eval/top1").size(), 1u);
  EXPECT_DOUBLE_EQ(log->Series("eval/top1")[0].value, 0.4);
  EXPECT_TRUE(log->Series("cpu/utilization").empty());
  EXPECT_TRUE(log->Series("wall_time").empty());
  EXPECT_EQ(log->last_step, 20);
  EXPECT_EQ(log->torn_lines, 0);
}

TEST(MetricsLog, TornLastLineIsSkippedAndCounted) {
  const std::string good = std::string(kConfig) + "\n" + R"({"kind":"metrics","step":1,"train/loss":1.5})" "\n";
  for (const std::string torn : {R"({"kind":"metrics","st)", R"({"kind":"metrics","st)" "\n"}) {
    auto log = ParseMetricsLog(good + torn, "m.jsonl");
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ(log->torn_lines, 1);
    EXPECT_EQ(log->Series("train/loss").size(), 1u);
  }
}

TEST(MetricsLog, BadLineInTheMiddleNamesFileAndLine) {
  const std::string text = std::string(kConfig) + "\n" + "{not json\n" + R"({"kind":"metrics","step":1})" "\n";
  auto log = ParseMetricsLog(text, "/runs/a/metrics.jsonl");
  ASSERT_FALSE(log.ok());
  EXPECT_TRUE(absl::StrContains(log.status().message(), "/runs/a/metrics.jsonl:2:")) << log.status();
}

TEST(MetricsLog, MalformedRecordsNameTheLine) {
  const std::pair<std::string, std::string> cases[] = {
      {"[1,2]", "not a JSON object"},
      {R"({"step":1})", "kind"},
      {R"({"kind":"metrics","step":"x"})", "integer \"step\""},
      {R"({"kind":"metrics","step":-3})", "negative step"},
      {R"({"kind":"config","config":5})", "\"config\" object"},
  };
  for (const auto& [line, what] : cases) {
    auto log = ParseMetricsLog(line + "\n" + kConfig + "\n", "f");
    ASSERT_FALSE(log.ok()) << line;
    EXPECT_TRUE(absl::StrContains(log.status().message(), "f:1: ")) << log.status();
    EXPECT_TRUE(absl::StrContains(log.status().message(), what)) << log.status();
  }
}

TEST(MetricsLog, ResumedRunKeepsTheLastRecordOfAStep) {
  // The first run logged steps 10 and 20, the resumed one (from step 10) logs 20 again.
  const std::string text = std::string(kConfig) + "\n" +
                           R"({"kind":"metrics","step":10,"train/loss":3.0})" "\n"
                           R"({"kind":"metrics","step":20,"train/loss":2.0,"train/lr":0.5})" "\n" +
                           R"({"kind":"config","config":{"lr":"0.002","resume":"latest"}})" "\n"
                           R"({"kind":"metrics","step":20,"train/loss":2.2})" "\n"
                           R"({"kind":"metrics","step":30,"train/loss":1.9})" "\n";
  auto log = ParseMetricsLog(text, "m");
  ASSERT_TRUE(log.ok()) << log.status();
  const auto& loss = log->Series("train/loss");
  ASSERT_EQ(loss.size(), 3u);
  EXPECT_DOUBLE_EQ(loss[1].value, 2.2);
  EXPECT_DOUBLE_EQ(log->Series("train/lr")[0].value, 0.5);  // not logged again: kept
  EXPECT_EQ(log->replaced_values, 1);
  EXPECT_EQ(log->config.at("lr"), "0.002");
  EXPECT_EQ(log->config.at("model"), "resnet18");
  EXPECT_EQ(log->config_records, 2);
}

TEST(MetricsLog, NonFiniteValuesAreCountedNotPlotted) {
  const std::string text = R"({"kind":"metrics","step":5,"train/loss":"NaN","train/lr":0.1})" "\n"
                           R"({"kind":"metrics","step":6,"train/loss":"Infinity","note":"text"})" "\n";
  auto log = ParseMetricsLog(text, "m");
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_TRUE(log->Series("train/loss").empty());
  EXPECT_TRUE(log->Series("note").empty());
  EXPECT_EQ(log->nonfinite_values, 2);
  EXPECT_EQ(log->first_nonfinite, "train/loss at step 5");
}

TEST(MetricsLog, MissingFileIsNotFoundNamingIt) {
  auto log = ReadMetricsLog("/nonexistent/dir/metrics.jsonl");
  ASSERT_FALSE(log.ok());
  EXPECT_TRUE(absl::IsNotFound(log.status()));
  EXPECT_TRUE(absl::StrContains(log.status().message(), "/nonexistent/dir/metrics.jsonl"));
}

TEST(MetricsLog, ReadsTheFixtureFile) {
  const std::string dir = testing::WriteRunDir(testing::MakeTempDir("ml"), {});
  auto log = ReadMetricsLog(dir + "/metrics.jsonl");
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->Series("train/loss").size(), 20u);
  EXPECT_EQ(log->Series("eval_ema/top1").size(), 4u);
}

}  // namespace
}  // namespace cf::report
