#include "convforever/caption/records.h"

#include <sstream>

#include "gtest/gtest.h"

namespace cf::caption {
namespace {

TEST(RecordReaderTest, ReadsValidRecordsAndCountsSkips) {
  std::istringstream in(
      "{\"id\": \"a\", \"caption\": \"a dog\", \"url\": \"http://x/1.jpg\", \"other\": 1}\n"
      "\n"
      "not json\n"
      "[1, 2]\n"
      "{\"caption\": \"no id\"}\n"
      "{\"id\": \"\", \"caption\": \"empty id\"}\n"
      "{\"id\": 7, \"caption\": \"   \"}\n"
      "{\"id\": 8}\n"
      "{\"id\": 9, \"caption\": \"numeric id\", \"path\": \"img/9.png\"}\n"
      "{\"id\": 10, \"caption\": \"no newline at the end\"}");
  RecordReader reader(&in, "in.jsonl", {});
  CaptionRecord r;
  ASSERT_TRUE(reader.Next(&r).value());
  EXPECT_EQ(r.id_key, "\"a\"");
  EXPECT_EQ(r.caption, "a dog");
  EXPECT_EQ(r.line, 1);
  EXPECT_EQ(r.passthrough.dump(), "{\"url\":\"http://x/1.jpg\"}");
  ASSERT_TRUE(reader.Next(&r).value());
  EXPECT_EQ(r.id_key, "9");
  EXPECT_EQ(r.line, 9);
  EXPECT_EQ(r.passthrough.dump(), "{\"path\":\"img/9.png\"}");
  ASSERT_TRUE(reader.Next(&r).value());
  EXPECT_EQ(r.id_key, "10");
  EXPECT_FALSE(reader.Next(&r).value());
  EXPECT_EQ(reader.counters().bad_json, 2);
  EXPECT_EQ(reader.counters().no_id, 2);
  EXPECT_EQ(reader.counters().empty_caption, 2);
}

TEST(RecordReaderTest, ConfigurableFields) {
  std::istringstream in("{\"key\": \"k1\", \"text\": \"a cat\", \"caption\": \"ignored\"}\n");
  RecordReader reader(&in, "x", {.caption_field = "text", .id_field = "key", .passthrough_fields = {}});
  CaptionRecord r;
  ASSERT_TRUE(reader.Next(&r).value());
  EXPECT_EQ(r.caption, "a cat");
  EXPECT_EQ(r.id.get<std::string>(), "k1");
}

// A passthrough value nested a million deep was copied into the record (and later dumped), both
// recursive: the stack overflowed. The line is now skipped as bad JSON and reading goes on.
TEST(RecordReaderTest, DeeplyNestedLineIsSkipped) {
  const int depth = 1'000'000;
  std::istringstream in("{\"id\": 1, \"caption\": \"x\", \"url\": " + std::string(depth, '[') +
                        std::string(depth, ']') + "}\n{\"id\": 2, \"caption\": \"a cat\"}\n");
  RecordReader reader(&in, "deep.jsonl", {});
  CaptionRecord r;
  ASSERT_TRUE(reader.Next(&r).value());
  EXPECT_EQ(r.id_key, "2");
  EXPECT_EQ(reader.counters().bad_json, 1);
}

// Lines are read in 64 KiB pieces: a record longer than one piece comes back whole, a line over
// max_line_bytes is skipped (and read through, not held) and the next line is read as usual.
TEST(RecordReaderTest, LongLinesAreReadWholeAndTooLongOnesSkipped) {
  const std::string long_caption(200'000, 'c');
  const std::string too_long = "{\"id\": 2, \"caption\": \"" + std::string(300'000, 'x') + "\"}";
  std::istringstream in("{\"id\": 1, \"caption\": \"" + long_caption + "\"}\n" + too_long + "\n" +
                        "{\"id\": 3, \"caption\": \"a cat\"}");
  InputOptions options;
  options.max_line_bytes = 250'000;
  RecordReader reader(&in, "long.jsonl", options);
  CaptionRecord r;
  ASSERT_TRUE(reader.Next(&r).value());
  EXPECT_EQ(r.id_key, "1");
  EXPECT_EQ(r.caption, long_caption);
  ASSERT_TRUE(reader.Next(&r).value());
  EXPECT_EQ(r.id_key, "3");
  EXPECT_EQ(r.line, 3);
  EXPECT_EQ(r.caption, "a cat");
  EXPECT_FALSE(reader.Next(&r).value());
  EXPECT_EQ(reader.counters().lines, 3);
  EXPECT_EQ(reader.counters().bad_json, 1);
}

// A line of exactly one 64 KiB piece (65,535 bytes, then '\n') ends there: the '\n' is not taken
// for the start of another line.
TEST(RecordReaderTest, ALineFillingExactlyOnePieceEndsAtItsNewline) {
  const std::string head = "{\"id\": 1, \"caption\": \"";
  const std::string caption(65'535 - head.size() - 2, 'c');
  std::istringstream in(head + caption + "\"}\n{\"id\": 2, \"caption\": \"b\"}\n");
  RecordReader reader(&in, "piece.jsonl", {});
  CaptionRecord r;
  ASSERT_TRUE(reader.Next(&r).value());
  EXPECT_EQ(r.caption, caption);
  ASSERT_TRUE(reader.Next(&r).value());
  EXPECT_EQ(r.line, 2);
  EXPECT_FALSE(reader.Next(&r).value());
  EXPECT_EQ(reader.counters().lines, 2);
  EXPECT_EQ(reader.counters().bad_json, 0);
}

}  // namespace
}  // namespace cf::caption
