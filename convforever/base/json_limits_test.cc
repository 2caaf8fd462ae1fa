#include "convforever/base/json_limits.h"

#include <string>

#include "gtest/gtest.h"

namespace cf {
namespace {

TEST(JsonLimitsTest, AcceptsOrdinaryJson) {
  EXPECT_TRUE(CheckJsonLimits(R"({"a": [1, {"b": "]]]}"}], "c": "\"[["})").ok());
  EXPECT_TRUE(CheckJsonLimits("not json at all ]]]").ok());  // the parser judges validity
  EXPECT_TRUE(CheckJsonLimits(std::string(64, '[') + std::string(64, ']')).ok());
}

TEST(JsonLimitsTest, RejectsDeepNesting) {
  const absl::Status s = CheckJsonLimits(std::string(65, '['), {}, "answer");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "answer: JSON nested deeper than 64 levels");
  EXPECT_FALSE(CheckJsonLimits(std::string(1'000'000, '{')).ok());
  // Closing brackets in between reset the depth; brackets in strings never count.
  std::string flat;
  for (int i = 0; i < 1000; ++i) flat += "[[]]";
  EXPECT_TRUE(CheckJsonLimits(flat).ok());
  EXPECT_TRUE(CheckJsonLimits("\"" + std::string(1000, '[') + "\"").ok());
}

TEST(JsonLimitsTest, RejectsOversizedText) {
  JsonLimits limits;
  limits.max_bytes = 10;
  const absl::Status s = CheckJsonLimits("[1,2,3,4,5,6]", limits);
  EXPECT_EQ(s.message(), "JSON of 13 bytes exceeds the limit of 10");
}

}  // namespace
}  // namespace cf
