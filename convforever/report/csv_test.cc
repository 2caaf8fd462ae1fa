#include "convforever/report/csv.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace cf::report {
namespace {

TEST(Csv, QuotedFieldsCommasQuotesAndNewlines) {
  auto table = ParseCsv("a,b,c\r\n1,\"x,y\",\"say \"\"hi\"\"\"\n2,\"two\nlines\",\n\n", "t.csv");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows.size(), 2u);
  EXPECT_EQ(table->Field(0, "b"), "x,y");
  EXPECT_EQ(table->Field(0, "c"), "say \"hi\"");
  EXPECT_EQ(table->Field(1, "b"), "two\nlines");
  EXPECT_EQ(table->Field(1, "c"), "");
  EXPECT_EQ(table->row_lines[1], 3);
  EXPECT_EQ(table->Field(0, "missing"), "");
}

TEST(Csv, NumbersAndTheirErrors) {
  auto table = ParseCsv("name,params\nr1,1.5e6\nr2,\nr3,lots\n", "res.csv");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(*table->Number(0, "params").value(), 1.5e6);
  EXPECT_FALSE(table->Number(1, "params").value().has_value());
  auto bad = table->Number(2, "params");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "res.csv:4: column params: 'lots'")) << bad.status();
}

TEST(Csv, MalformedInputNamesTheLine) {
  const std::pair<std::string, std::string> cases[] = {
      {"a,b\n1,2\n3\n", "res.csv:3: 1 fields, the header has 2"},
      {"a,b\n1,\"open\n", "res.csv:2: a quoted field never ends"},
      {"a,b\n1,x\"y\n", "res.csv:2: a quote inside an unquoted field"},
      {"a,b\n1,\"x\"y\n", "res.csv:2: text after a closing quote"},
      {"", "res.csv: empty"},
  };
  for (const auto& [text, message] : cases) {
    auto table = ParseCsv(text, "res.csv");
    ASSERT_FALSE(table.ok()) << text;
    EXPECT_TRUE(absl::StrContains(table.status().message(), message)) << table.status();
  }
}

}  // namespace
}  // namespace cf::report
