// RunRecorder on one rank, read back from the metrics.jsonl it writes: the records every
// --log_every_steps and at the last step, train/loss as the mean of the finite losses since the
// last record, the skipped-step count, the evaluation's EMA scalars only with EMA, and a resumed
// run dropping the records past its checkpoint. The comm/ scalars need several ranks:
// train_test.cc TrainerDataParallel checks them.
#include "convforever/train/run_recorder.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

std::string TempDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(root ? root : "/tmp") + "/recorder_XXXXXX";
  return mkdtemp(tmpl.data());
}

// The "metrics" records of metrics.jsonl, in order.
std::vector<nlohmann::json> MetricRecords(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("kind", "") == "metrics") out.push_back(j);
  }
  return out;
}

TrainerOptions Options(const std::string& dir) {
  TrainerOptions o;
  o.run_dir = dir;
  o.tensorboard = false;
  o.log_every_steps = 2;
  return o;
}

std::unique_ptr<RunRecorder> MakeRecorder(const TrainerOptions& o) {
  return std::make_unique<RunRecorder>(o, /*comm=*/nullptr, [] { return data::Counters{}; },
                                       /*total_steps=*/5, /*images_per_step=*/8);
}

TEST(RunRecorder, RecordsEveryNStepsAndTheLastWithTheWindowMean) {
  const TrainerOptions o = Options(TempDir());
  std::unique_ptr<RunRecorder> r = MakeRecorder(o);
  r->RecordTrainStep(1, 0, 9.0, 0.1, 1.0, false);  // before Open(): counted, not written
  ASSERT_TRUE(r->Open(0).ok());
  EXPECT_EQ(r->metrics_path(), o.run_dir + "/metrics.jsonl");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r->RecordTrainStep(1, 0, 1.0, 0.1, 1.5, false);
  r->RecordTrainStep(2, 0, nan, 0.1, 0.0, true);  // a skipped step: left out of the mean
  r->RecordTrainStep(3, 0, 3.0, 0.1, 1.0, false);
  r->RecordTrainStep(4, 1, 5.0, 0.05, 2.5, false);
  r->RecordTrainStep(5, 1, 7.0, 0.05, 3.0, true);  // the last step, off the 2-step grid
  r->Close();

  const std::vector<nlohmann::json> recs = MetricRecords(r->metrics_path());
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0]["step"], 2);
  EXPECT_DOUBLE_EQ(recs[0]["train/loss"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(recs[0]["train/skipped_steps"].get<double>(), 1.0);
  EXPECT_EQ(recs[1]["step"], 4);
  EXPECT_DOUBLE_EQ(recs[1]["train/loss"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(recs[1]["train/step_loss"].get<double>(), 5.0);
  EXPECT_DOUBLE_EQ(recs[1]["train/grad_norm"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(recs[1]["train/epoch"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(recs[1]["train/lr"].get<double>(), 0.05);
  EXPECT_EQ(recs[2]["step"], 5);
  EXPECT_DOUBLE_EQ(recs[2]["train/loss"].get<double>(), 7.0);
  EXPECT_DOUBLE_EQ(recs[2]["train/skipped_steps"].get<double>(), 2.0);
  EXPECT_FALSE(recs[2].contains("comm/sent_bytes_per_step"));  // one rank: no communicator
  EXPECT_TRUE(r->CommBytesByKind().empty());
}

TEST(RunRecorder, EvalRecordsEmaOnlyWhenGiven) {
  const TrainerOptions o = Options(TempDir());
  std::unique_ptr<RunRecorder> r = MakeRecorder(o);
  ASSERT_TRUE(r->Open(0).ok());
  EvalResult raw;
  raw.loss = 0.5;
  raw.top1 = 0.75;
  EvalResult ema;
  ema.top1 = 0.8;
  r->RecordEval(3, raw, nullptr);
  r->RecordEval(5, raw, &ema);
  r->Close();
  const std::vector<nlohmann::json> recs = MetricRecords(r->metrics_path());
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_DOUBLE_EQ(recs[0]["eval/top1"].get<double>(), 0.75);
  EXPECT_FALSE(recs[0].contains("eval_ema/top1"));
  EXPECT_DOUBLE_EQ(recs[1]["eval_ema/top1"].get<double>(), 0.8);
}

TEST(RunRecorder, ResumedRunDropsTheRecordsPastItsStep) {
  const TrainerOptions o = Options(TempDir());
  {
    std::unique_ptr<RunRecorder> killed = MakeRecorder(o);
    ASSERT_TRUE(killed->Open(0).ok());
    for (int64_t step = 1; step <= 4; ++step) {
      killed->RecordTrainStep(step, 0, 1.0, 0.1, 1.0, false);
    }
    killed->Close();
  }
  std::unique_ptr<RunRecorder> resumed = MakeRecorder(o);
  ASSERT_TRUE(resumed->Open(/*resumed_step=*/3).ok());
  resumed->RecordTrainStep(4, 0, 2.0, 0.1, 1.0, false);
  resumed->Close();
  const std::vector<nlohmann::json> recs = MetricRecords(resumed->metrics_path());
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0]["step"], 2);
  EXPECT_EQ(recs[1]["step"], 4);
  EXPECT_DOUBLE_EQ(recs[1]["train/loss"].get<double>(), 2.0);
}

}  // namespace
}  // namespace cf::train
