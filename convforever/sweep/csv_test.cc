#include "convforever/sweep/csv.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace cf::sweep {
namespace {

TEST(ParseCsv, HeaderRowsAndLineNumbers) {
  absl::StatusOr<CsvTable> t = ParseCsv("a,b\n1,2\n\n3,4\n", "t.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->header, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_EQ(t->rows[1], (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(t->row_lines, (std::vector<int>{2, 4}));  // the empty line 3 is skipped
  EXPECT_EQ(t->ColumnIndex("b"), 1);
  EXPECT_EQ(t->ColumnIndex("c"), -1);
}

TEST(ParseCsv, QuotedFieldsCrLfAndBom) {
  absl::StatusOr<CsvTable> t =
      ParseCsv("\xEF\xBB\xBFname,note\r\n\"a,b\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",x\r\nlast,\"\"\r\n",
               "q.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->header[0], "name");
  ASSERT_EQ(t->rows.size(), 3u);
  EXPECT_EQ(t->rows[0], (std::vector<std::string>{"a,b", "say \"hi\""}));
  EXPECT_EQ(t->rows[1], (std::vector<std::string>{"two\nlines", "x"}));
  EXPECT_EQ(t->rows[2], (std::vector<std::string>{"last", ""}));
  EXPECT_EQ(t->row_lines, (std::vector<int>{2, 3, 5}));
}

TEST(ParseCsv, NoFinalNewlineAndEmptyTrailingField) {
  absl::StatusOr<CsvTable> t = ParseCsv("a,b\n1,", "t.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->rows.size(), 1u);
  EXPECT_EQ(t->rows[0], (std::vector<std::string>{"1", ""}));
}

TEST(ParseCsv, WrongFieldCountNamesTheLine) {
  absl::StatusOr<CsvTable> t = ParseCsv("a,b\n1,2\n\n3,4,5\n", "sweep.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("sweep.csv:4:"), std::string::npos) << t.status();
  EXPECT_NE(t.status().message().find("3 field(s)"), std::string::npos) << t.status();
}

TEST(ParseCsv, RowAfterMultiLineFieldCountsLines) {
  absl::StatusOr<CsvTable> t = ParseCsv("a,b\n\"x\ny\",2\n1\n", "m.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("m.csv:4:"), std::string::npos) << t.status();
}

TEST(ParseCsv, BadQuotingIsAnError) {
  absl::StatusOr<CsvTable> open_quote = ParseCsv("a\n\"never closed\n", "o.csv");
  ASSERT_FALSE(open_quote.ok());
  EXPECT_NE(open_quote.status().message().find("o.csv:2: quoted field is never closed"),
            std::string::npos)
      << open_quote.status();
  absl::StatusOr<CsvTable> stray = ParseCsv("a,b\n1,x\"y\n", "s.csv");
  ASSERT_FALSE(stray.ok());
  EXPECT_NE(stray.status().message().find("s.csv:2:"), std::string::npos) << stray.status();
  absl::StatusOr<CsvTable> after = ParseCsv("a,b\n\"1\"x,2\n", "z.csv");
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.status().message().find("z.csv:2: unexpected character after a closing quote"),
            std::string::npos)
      << after.status();
}

TEST(ParseCsv, HeaderProblems) {
  EXPECT_FALSE(ParseCsv("", "e.csv").ok());
  EXPECT_FALSE(ParseCsv("\n\n", "e.csv").ok());
  absl::StatusOr<CsvTable> dup = ParseCsv("a,b,a\n1,2,3\n", "d.csv");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("'a' appears twice"), std::string::npos) << dup.status();
  absl::StatusOr<CsvTable> unnamed = ParseCsv("a,,c\n1,2,3\n", "u.csv");
  ASSERT_FALSE(unnamed.ok());
  EXPECT_NE(unnamed.status().message().find("column 2 has no name"), std::string::npos);
}

TEST(FormatCsvLine, QuotesOnlyWhenNeededAndRoundTrips) {
  const std::vector<std::string> fields = {"plain", "a,b", "say \"hi\"", "two\nlines", " pad", ""};
  const std::string line = FormatCsvLine(fields);
  EXPECT_EQ(line, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\" pad\",");
  absl::StatusOr<CsvTable> t = ParseCsv("h1,h2,h3,h4,h5,h6\n" + line + "\n", "rt.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->rows[0], fields);
}

// The users' own sweep tables parse as they are.
TEST(ReadCsvFile, TheExampleTables) {
  absl::StatusOr<CsvTable> expanded = ReadCsvFile("convforever/sweep/testdata/sweep_expanded.csv");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->rows.size(), 18u);
  EXPECT_EQ(expanded->header.size(), 9u);
  EXPECT_EQ(expanded->rows[17][0], "120");
  absl::StatusOr<CsvTable> research = ReadCsvFile("convforever/sweep/testdata/sweep_research.csv");
  ASSERT_TRUE(research.ok()) << research.status();
  EXPECT_EQ(research->rows.size(), 4u);
  EXPECT_EQ(research->header[5], "optimizer");
  EXPECT_EQ(ReadCsvFile("convforever/sweep/testdata/no_such.csv").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace cf::sweep
