#include "convforever/sweep/column_scale.h"

#include "gtest/gtest.h"

namespace cf::sweep {
namespace {

CsvTable Table(const std::string& text) {
  absl::StatusOr<CsvTable> t = ParseCsv(text, "t.csv");
  EXPECT_TRUE(t.ok()) << t.status();
  return *t;
}

TEST(ParseColumnScales, OneOrMore) {
  absl::StatusOr<std::vector<ColumnScale>> s = ParseColumnScales("approx_num_layers=0.1, lr=2");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[0].column, "approx_num_layers");
  EXPECT_DOUBLE_EQ((*s)[0].factor, 0.1);
  EXPECT_EQ((*s)[1].column, "lr");
  EXPECT_DOUBLE_EQ((*s)[1].factor, 2);
  EXPECT_TRUE(ParseColumnScales("")->empty());
  for (const char* bad : {"approx_num_layers", "=0.1", "a=0", "a=-1", "a=x", "a=inf"}) {
    absl::StatusOr<std::vector<ColumnScale>> r = ParseColumnScales(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) EXPECT_NE(r.status().message().find("COLUMN=FACTOR"), std::string::npos);
  }
}

TEST(ApplyColumnScale, IntegerColumnsRoundAndStayAtLeastOne) {
  CsvTable t = Table("approx_num_layers,lr\n20,1e-4\n32,1e-4\n50,1e-4\n4,1e-4\n,1e-4\n");
  ASSERT_TRUE(ApplyColumnScale({"approx_num_layers", 0.1}, &t, "t.csv").ok());
  std::vector<std::string> depths;
  for (const auto& row : t.rows) depths.push_back(row[0]);
  // 20 -> 2, 32 -> 3.2 -> 3, 50 -> 5, 4 -> 0.4 -> 1 (never 0), empty stays empty.
  EXPECT_EQ(depths, (std::vector<std::string>{"2", "3", "5", "1", ""}));
  EXPECT_EQ(t.rows[0][1], "1e-4");  // other columns untouched
}

TEST(ApplyColumnScale, FloatColumnsMultiply) {
  CsvTable t = Table("learning_rate\n1e-4\n0.5\n2\n");
  ASSERT_TRUE(ApplyColumnScale({"learning_rate", 0.5}, &t, "t.csv").ok());
  EXPECT_EQ(t.rows[0][0], "5e-05");
  EXPECT_EQ(t.rows[1][0], "0.25");
  EXPECT_EQ(t.rows[2][0], "1");
}

TEST(ApplyColumnScale, ErrorsNameColumnAndLine) {
  CsvTable t = Table("approx_num_layers,optimizer\n20,adamw\n");
  absl::Status missing = ApplyColumnScale({"depth", 0.1}, &t, "t.csv");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("t.csv has no column 'depth'"), std::string::npos) << missing;
  absl::Status text = ApplyColumnScale({"optimizer", 2}, &t, "t.csv");
  EXPECT_FALSE(text.ok());
  EXPECT_NE(text.message().find("t.csv:2: column 'optimizer' holds 'adamw'"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace cf::sweep
