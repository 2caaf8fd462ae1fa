#include "convforever/plan/gpus.h"

#include <string>

#include "gtest/gtest.h"

namespace cf::plan {
namespace {

constexpr char kHeader[] =
    "name,bf16_tflops,fp16_tflops,fp32_tflops,tf32_tflops,memory_gb,usd_per_hour\n";

TEST(GpuTable, ShippedTableHasTheDatasheetFigures) {
  auto table = ReadGpuTable("convforever/plan/gpus.csv");
  ASSERT_TRUE(table.ok()) << table.status();
  for (const char* name : {"rtx3090", "rtx4090", "rtx5090", "a100_40g", "a100_80g", "h100_sxm",
                           "h100_pcie", "l4", "l40s", "a10g", "t4"}) {
    EXPECT_TRUE(FindGpu(*table, name, "gpus.csv").ok()) << name;
  }
  GpuSpec a100 = FindGpu(*table, "A100_40G", "gpus.csv").value();  // case-insensitive
  EXPECT_EQ(a100.bf16_tflops, 312);
  EXPECT_EQ(a100.fp32_tflops, 19.5);
  EXPECT_EQ(a100.tf32_tflops, 156);
  EXPECT_EQ(a100.memory_gb, 40);
  GpuSpec h100 = FindGpu(*table, "h100_sxm", "gpus.csv").value();
  EXPECT_EQ(h100.bf16_tflops, 989.4);
  EXPECT_EQ(h100.fp32_tflops, 66.9);
  GpuSpec rtx4090 = FindGpu(*table, "rtx4090", "gpus.csv").value();
  EXPECT_EQ(rtx4090.bf16_tflops, 165.2);  // Ada whitepaper: BF16 tensor, FP32 accumulate, dense
  EXPECT_EQ(rtx4090.memory_gb, 24);
  EXPECT_DOUBLE_EQ(PeakFlops(rtx4090, "bf16").value(), 165.2e12);
  EXPECT_DOUBLE_EQ(PeakFlops(rtx4090, "fp32").value(), 82.6e12);
}

TEST(GpuTable, ParsesCommentsBlankLinesAndSpaces) {
  auto table = ParseGpuTable(std::string("# comment\n\n") + kHeader +
                                 "# another\n x1 , 10, 20 ,5,0,12,0.5\n",
                             "t.csv");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->size(), 1u);
  EXPECT_EQ((*table)[0].name, "x1");
  EXPECT_EQ((*table)[0].fp16_tflops, 20);
  EXPECT_EQ((*table)[0].usd_per_hour, 0.5);
}

TEST(GpuTable, BadRowsNameFileLineAndColumn) {
  struct Case {
    std::string body;
    std::string want;
  } cases[] = {
      {"x,1,1,1,1,24\n", "t.csv:2: expected 7 columns, got 6"},
      {"x,1,one,1,1,24,1\n", "t.csv:2: column fp16_tflops: 'one' is not a number >= 0"},
      {"x,1,1,1,1,24,-2\n", "t.csv:2: column usd_per_hour: '-2' is not a number >= 0"},
      {"x,1,1,1,1,0,1\n", "t.csv:2: column memory_gb: must be > 0"},
      {"X 1,1,1,1,1,24,1\n", "t.csv:2: column name: 'X 1' is not a lower-case name"},
      {"x,1,1,1,1,24,1\n\nx,1,1,1,1,24,1\n", "t.csv:4: duplicate GPU 'x'"},
      {"x,1,1,nan,1,24,1\n", "t.csv:2: column fp32_tflops: 'nan'"},
  };
  for (const Case& c : cases) {
    auto table = ParseGpuTable(kHeader + c.body, "t.csv");
    ASSERT_FALSE(table.ok()) << c.body;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(table.status().message()).find(c.want), std::string::npos)
        << table.status() << " want " << c.want;
  }
  auto no_header = ParseGpuTable("x,1,1,1,1,24,1\n", "t.csv");
  EXPECT_NE(std::string(no_header.status().message()).find("t.csv:1: header must be"), std::string::npos)
      << no_header.status();
  EXPECT_FALSE(ParseGpuTable("# only a comment\n", "t.csv").ok());
  EXPECT_FALSE(ParseGpuTable(kHeader, "t.csv").ok());  // no rows
}

TEST(GpuTable, UnknownGpuListsTheKnownOnes) {
  auto table = ParseGpuTable(std::string(kHeader) + "a,1,1,1,1,8,1\nb,1,1,1,1,8,1\n", "t.csv").value();
  auto g = FindGpu(table, "v100", "t.csv");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(g.status().message()).find("have: a, b"), std::string::npos) << g.status();
  EXPECT_EQ(ReadGpuTable("/nonexistent/gpus.csv").status().code(), absl::StatusCode::kNotFound);
}

TEST(GpuTable, MissingFormatIsAnError) {
  GpuSpec t4{"t4", 0, 65, 8.1, 0, 16, 0.35};
  auto bf16 = PeakFlops(t4, "bf16");
  ASSERT_FALSE(bf16.ok());
  EXPECT_NE(std::string(bf16.status().message()).find("t4 has no bf16"), std::string::npos);
  EXPECT_DOUBLE_EQ(PeakFlops(t4, "fp16").value(), 65e12);
  EXPECT_FALSE(PeakFlops(t4, "fp8").ok());
}

}  // namespace
}  // namespace cf::plan
