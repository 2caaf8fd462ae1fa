#include "convforever/plan/report.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::plan {
namespace {

EstimateReport Example() {
  EstimateReport r;
  r.gpu = "rtx4090";
  r.precision = "bf16";
  r.peak_tflops = 165.2;
  r.utilization = 0.3;
  r.usd_per_hour = 0.35;
  r.memory_gb = 24;
  r.throughput = "datasheet x utilisation";
  r.micro_batch = 16;
  r.image_size = 224;
  for (int depth : {30, 100}) {
    EstimateRow row;
    row.model = "convforever";
    row.depth = depth;
    row.params = depth * 1'000'000;
    row.gmacs_per_image = depth * 0.3;
    row.cost.train_flops = depth * 1e18;
    row.cost.wall_seconds = depth * 3600.0;
    row.cost.gpu_hours = depth;
    row.cost.usd = depth * 0.35;
    row.memory.total = depth * 0.25e9;
    row.memory_known = true;
    row.memory_method = "analytic";
    row.fits = FitsInMemory(row.memory.total, r.memory_gb);
    r.rows.push_back(row);
  }
  return r;
}

TEST(Report, TableHasOneLinePerRowAndSaysWhatDoesNotFit) {
  const std::string table = FormatTable(Example());
  EXPECT_NE(table.find("throughput: datasheet x utilisation"), std::string::npos) << table;
  EXPECT_NE(table.find("GPU-hours"), std::string::npos);
  EXPECT_NE(table.find("30.0 h"), std::string::npos) << table;  // wall time of depth 30
  EstimateReport quick = Example();
  quick.rows[0].cost.wall_seconds = 42;
  quick.rows[0].cost.gpu_hours = 42.0 / 3600;
  const std::string short_run = FormatTable(quick);
  EXPECT_NE(short_run.find("42.0 s"), std::string::npos) << short_run;
  EXPECT_NE(short_run.find("0.0117"), std::string::npos) << short_run;  // 3 significant digits
  EXPECT_NE(table.find("yes"), std::string::npos) << table;     // 7.5 GB
  EXPECT_NE(table.find("NO"), std::string::npos) << table;      // 25 GB > 21.6 GB
}

TEST(Report, JsonCarriesTheRows) {
  nlohmann::json j = nlohmann::json::parse(FormatJson(Example()));
  EXPECT_EQ(j["format"], "convforever.estimate/1");
  EXPECT_EQ(j["target"]["gpu"], "rtx4090");
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["depth"], 30);
  EXPECT_DOUBLE_EQ(j["rows"][0]["train_pflops"].get<double>(), 30000);
  EXPECT_DOUBLE_EQ(j["rows"][1]["gpu_hours"].get<double>(), 100);
  EXPECT_EQ(j["rows"][1]["fits"], false);
  EXPECT_DOUBLE_EQ(j["rows"][0]["memory"]["total_gb"].get<double>(), 7.5);
  EstimateReport cpu = Example();
  cpu.memory_gb = 0;  // unknown: fits is null, not false
  EXPECT_TRUE(nlohmann::json::parse(FormatJson(cpu))["rows"][0]["fits"].is_null());
}

}  // namespace
}  // namespace cf::plan
