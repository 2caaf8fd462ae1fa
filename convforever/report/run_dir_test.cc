#include "convforever/report/run_dir.h"

#include <cmath>
#include <filesystem>
#include <map>

#include "absl/strings/match.h"
#include "convforever/report/test_fixtures.h"
#include "gtest/gtest.h"

namespace cf::report {
namespace {

std::map<std::string, std::string> Facts(const RunData& run) {
  std::map<std::string, std::string> facts;
  for (const auto& [label, value] : RunKeyFacts(run)) facts[label] = value;
  return facts;
}

TEST(RunDir, LoadsMetricsSummaryAndLrFinder) {
  testing::FixtureRun fixture;
  fixture.name = "r1";
  fixture.lr_finder = true;
  const std::string dir = testing::WriteRunDir(testing::MakeTempDir("rd"), fixture);
  auto run = LoadRunDir(dir + "/");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->name, "r1");
  ASSERT_TRUE(run->summary.has_value());
  EXPECT_EQ(run->summary->eval_top1.value(), 0.89);
  EXPECT_EQ(run->summary->ema_top1.value(), 0.9);
  ASSERT_TRUE(run->lr_finder.has_value());
  EXPECT_EQ(run->lr_finder->rows.size(), 100u);
  EXPECT_EQ(run->lr_finder->suggested_lr.value(), 0.001);
  auto facts = Facts(*run);
  EXPECT_EQ(facts["model"], "convnext_nano_fmnist");
  EXPECT_EQ(facts["top-1"], "89.00%");
  EXPECT_EQ(facts["EMA top-1"], "90.00%");
  EXPECT_EQ(facts["status"], "completed");
  EXPECT_EQ(facts["steps"], "200 / 200");
  EXPECT_EQ(facts["params"], "1.5M");
  EXPECT_EQ(facts["lr"], "0.001");
}

TEST(RunDir, ConfigNumbersAreShortened) {
  testing::FixtureRun fixture;
  fixture.summary = false;
  const std::string dir = testing::WriteRunDir(testing::MakeTempDir("rd"), fixture);
  testing::WriteFile(dir + "/metrics.jsonl",
                     R"({"kind":"config","config":{"lr":"0.0030000000000000001","model":"resnet18","max_steps":"500"}})"
                     "\n");
  auto run = LoadRunDir(dir);
  ASSERT_TRUE(run.ok()) << run.status();
  auto facts = Facts(*run);
  EXPECT_EQ(facts["lr"], "0.003");
  EXPECT_EQ(facts["model"], "resnet18");
  EXPECT_EQ(facts["steps"], "");  // no metrics record: no step done
}

TEST(RunDir, WithoutSummaryTheMetricsLogGivesTheFinalNumbers) {
  testing::FixtureRun fixture;
  fixture.summary = false;
  const std::string dir = testing::WriteRunDir(testing::MakeTempDir("rd"), fixture);
  auto run = LoadRunDir(dir);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_FALSE(run->summary.has_value());
  auto facts = Facts(*run);
  const double last_top1 = run->metrics.Series("eval/top1").back().value;
  char expected[32];
  std::snprintf(expected, sizeof(expected), "%.2f%%", 100 * last_top1);
  EXPECT_EQ(facts["top-1"], expected);
  EXPECT_EQ(facts["steps"], "200 / 200");
  EXPECT_EQ(facts["status"], "no summary.json");
  EXPECT_EQ(facts["params"], "");
}

TEST(RunDir, MissingMetricsIsAnErrorNamingIt) {
  const std::string dir = testing::MakeTempDir("empty_run");
  auto run = LoadRunDir(dir);
  ASSERT_FALSE(run.ok());
  EXPECT_TRUE(absl::StrContains(run.status().message(), dir + "/metrics.jsonl")) << run.status();
  EXPECT_FALSE(LoadRunDir(dir + "/not_there").ok());
}

TEST(RunDir, MalformedSummaryNamesFileAndField) {
  const std::string dir = testing::WriteRunDir(testing::MakeTempDir("rd"), {});
  testing::WriteFile(dir + "/summary.json", R"({"params":"many"})");
  auto run = LoadRunDir(dir);
  ASSERT_FALSE(run.ok());
  EXPECT_TRUE(absl::StrContains(run.status().message(), dir + "/summary.json: field \"params\"")) << run.status();
  testing::WriteFile(dir + "/summary.json", "{\"params\": 1");
  run = LoadRunDir(dir);
  ASSERT_FALSE(run.ok());
  EXPECT_TRUE(absl::StrContains(run.status().message(), "summary.json: not valid JSON")) << run.status();
}

TEST(RunDir, SummaryNonFiniteStringsAreNumbers) {
  auto s = ParseRunSummary(R"({"best_top1":"NaN","final_eval":{"loss":"Infinity","top1":0.5}})", "s.json");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(std::isnan(s->best_top1.value()));
  EXPECT_TRUE(std::isinf(s->eval_loss.value()));
  EXPECT_EQ(s->eval_top1.value(), 0.5);
}

// `train --lr_finder` writes only lr_finder.csv/.json: a run dir for the report all the same.
TEST(RunDir, AnLrFinderDirectoryHasNoMetricsLog) {
  const std::string dir = testing::MakeTempDir("lr_finder_only");
  testing::WriteFile(dir + "/lr_finder.csv", "step,lr,loss,smoothed_loss\n1,1e-5,2.3,2.3\n2,1e-4,2.2,2.25\n");
  auto run = LoadRunDir(dir);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(run->lr_finder.has_value());
  EXPECT_EQ(run->lr_finder->rows.size(), 2u);
  EXPECT_FALSE(run->summary.has_value());
  std::map<std::string, std::string> facts;
  for (const auto& [label, text] : RunKeyFacts(*run)) facts[label] = text;
  EXPECT_EQ(facts["status"], "LR finder");
}

TEST(RunDir, MalformedLrFinderNamesFileAndLine) {
  testing::FixtureRun fixture;
  fixture.lr_finder = true;
  const std::string dir = testing::WriteRunDir(testing::MakeTempDir("rd"), fixture);
  testing::WriteFile(dir + "/lr_finder.csv", "step,lr,loss,smoothed_loss\n0,1e-5,2.3,2.3\n1,abc,2.2,2.2\n");
  auto run = LoadRunDir(dir);
  ASSERT_FALSE(run.ok());
  EXPECT_TRUE(absl::StrContains(run.status().message(), dir + "/lr_finder.csv:3: column lr")) << run.status();
}

}  // namespace
}  // namespace cf::report
