#include "convforever/sweep/results.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "convforever/sweep/csv.h"
#include "gtest/gtest.h"

namespace cf::sweep {
namespace {

nlohmann::json Summary() {
  return nlohmann::json::parse(R"({
    "format": "convforever.summary/1", "completed": true, "stopped_by_signal": false,
    "model": "convforever", "depth": 4, "params": 359242, "image_size": 32,
    "gmacs_per_image": 0.001421472, "micro_batch_size": 1, "gradient_accumulation_steps": 16,
    "world_size": 2, "steps": 12, "total_steps": 12, "samples_seen": 192,
    "train_flops": 2183380992.0, "wall_seconds": 1800.0, "images_per_sec": 78.88378607845583,
    "final_eval": {"loss": 2.6795709915459156, "samples": 64, "top1": 0.859375, "top5": 1.0},
    "best_top1": 0.875, "final_train_loss": "NaN"})");
}

TEST(ResultsCsv, HeaderAndOneLinePerRow) {
  std::vector<ResultRow> rows(3);
  rows[0].row = 0;
  rows[0].name = "00-d4-x";
  rows[0].status = RowStatus::kDone;
  rows[0].input_values = {"40", "True"};
  rows[0].summary = Summary();
  rows[1].row = 1;
  rows[1].name = "01-d5-y";
  rows[1].status = RowStatus::kRunning;
  rows[1].input_values = {"50", "a,b"};
  rows[2].row = 2;
  rows[2].name = "02-z";
  rows[2].status = RowStatus::kFailed;
  rows[2].input_values = {"60", ""};
  nlohmann::json partial = Summary();
  partial["completed"] = false;
  partial.erase("world_size");
  partial["final_eval"]["top1"] = "NaN";
  rows[2].summary = partial;
  rows[2].ranks = 4;
  const std::string text = FormatResultsCsv({"approx_num_layers", "note"}, rows);
  absl::StatusOr<CsvTable> t = ParseCsv(text, "results.csv");
  ASSERT_TRUE(t.ok()) << t.status() << "\n" << text;
  EXPECT_EQ(t->header,
            (std::vector<std::string>{"row", "name", "status", "approx_num_layers", "note", "params",
                                      "gmacs_per_image", "train_flops", "final_top1", "final_top5",
                                      "final_loss", "best_top1", "steps", "wall_seconds",
                                      "images_per_sec", "gpu_hours"}));
  ASSERT_EQ(t->rows.size(), 3u);
  EXPECT_EQ(t->rows[0],
            (std::vector<std::string>{"0", "00-d4-x", "DONE", "40", "True", "359242", "0.00142147",
                                      "2.18338e+09", "0.859375", "1", "2.67957", "0.875", "12",
                                      "1800", "78.8838", "1"}));  // 1800 s x 2 ranks = 1 GPU-hour
  EXPECT_EQ(t->rows[1], (std::vector<std::string>{"1", "01-d5-y", "RUNNING", "50", "a,b", "", "",
                                                   "", "", "", "", "", "", "", "", ""}));
  EXPECT_EQ(t->rows[2][2], "FAILED");
  EXPECT_EQ(t->rows[2][8], "NaN");
  EXPECT_EQ(t->rows[2][15], "2");  // no world_size in the summary: the plan's 4 ranks
}

TEST(ResultsCsv, WrittenAtomically) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp ? tmp : "/tmp") + "/results_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<ResultRow> rows(1);
  rows[0].name = "00-a";
  rows[0].input_values = {"1"};
  ASSERT_TRUE(WriteResultsCsv(dir + "/results.csv", {"x"}, rows).ok());
  std::ifstream in(dir + "/results.csv");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), FormatResultsCsv({"x"}, rows));
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);  // no temporary left behind
}

TEST(ResultsTable, PercentagesAndStatus) {
  std::vector<ResultRow> rows(2);
  rows[0].name = "00-d4-x";
  rows[0].status = RowStatus::kDone;
  rows[0].summary = Summary();
  rows[1].row = 1;
  rows[1].name = "01-y";
  const std::string table = FormatResultsTable(rows);
  EXPECT_NE(table.find("00-d4-x"), std::string::npos) << table;
  EXPECT_NE(table.find("85.94%"), std::string::npos) << table;
  EXPECT_NE(table.find("87.50%"), std::string::npos) << table;
  EXPECT_NE(table.find("1800.0"), std::string::npos) << table;
  EXPECT_NE(table.find("PENDING"), std::string::npos) << table;
}

}  // namespace
}  // namespace cf::sweep
