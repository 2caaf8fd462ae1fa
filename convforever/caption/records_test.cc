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

}  // namespace
}  // namespace cf::caption
