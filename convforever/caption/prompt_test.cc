#include "convforever/caption/prompt.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::caption {
namespace {

using nlohmann::json;

const std::vector<std::string> kCats = {"dog", "cat", "sea lion", "lion", "bird"};

TEST(PromptTest, TextModeBody) {
  const json body = json::parse(BuildRequestBody({.model = "m1", .temperature = 0, .max_tokens = 20}, kCats,
                                                 "A \"dog\" on a beach"));
  EXPECT_EQ(body["model"], "m1");
  EXPECT_EQ(body["temperature"], 0.0);
  EXPECT_EQ(body["max_tokens"], 20);
  EXPECT_FALSE(body.contains("response_format"));
  const std::string user = body["messages"][1]["content"];
  EXPECT_NE(user.find("dog, cat, sea lion, lion, bird"), std::string::npos) << user;
  EXPECT_NE(user.find("category name only"), std::string::npos);
  EXPECT_NE(user.find("Caption: A \"dog\" on a beach"), std::string::npos);
}

TEST(PromptTest, JsonSchemaModeHasEnum) {
  const json body = json::parse(BuildRequestBody({.model = "m", .json_schema = true}, kCats, "x"));
  const json& schema = body["response_format"]["json_schema"]["schema"];
  EXPECT_EQ(body["response_format"]["type"], "json_schema");
  EXPECT_EQ(schema["properties"]["category"]["enum"], json(kCats));
  EXPECT_EQ(schema["required"], json::array({"category"}));
}

TEST(PromptTest, InvalidUtf8CaptionStillMakesValidJson) {
  const std::string body = BuildRequestBody({.model = "m"}, kCats, std::string("bad \xff byte"));
  EXPECT_FALSE(json::parse(body, nullptr, false).is_discarded());
}

TEST(MatchCategoryTest, FirstWholeWordCaseInsensitive) {
  EXPECT_EQ(MatchCategory("Dog", kCats, false), 0);
  EXPECT_EQ(MatchCategory("  cat.\n", kCats, false), 1);
  EXPECT_EQ(MatchCategory("The answer is: BIRD", kCats, false), 4);
  EXPECT_EQ(MatchCategory("cat or dog", kCats, false), 1);       // earliest in the answer
  EXPECT_EQ(MatchCategory("dogs", kCats, false), -1);            // not a whole word
  EXPECT_EQ(MatchCategory("hotdog", kCats, false), -1);
  EXPECT_EQ(MatchCategory("sea lion", kCats, false), 2);         // longest at the same place
  EXPECT_EQ(MatchCategory("a lion", kCats, false), 3);
  EXPECT_EQ(MatchCategory("dogs and a cat", kCats, false), 1);   // skips the non-word hit
  EXPECT_EQ(MatchCategory("", kCats, false), -1);
  EXPECT_EQ(MatchCategory("none of these", kCats, false), -1);
}

TEST(MatchCategoryTest, JsonModeIsStrict) {
  EXPECT_EQ(MatchCategory("{\"category\": \"lion\"}", kCats, true), 3);
  EXPECT_EQ(MatchCategory(" {\"category\":\"dog\"}\n", kCats, true), 0);
  EXPECT_EQ(MatchCategory("{\"category\": \"Dog\"}", kCats, true), -1);
  EXPECT_EQ(MatchCategory("dog", kCats, true), -1);
  EXPECT_EQ(MatchCategory("{\"category\": \"dog\", \"why\": 1}", kCats, true), -1);
  EXPECT_EQ(MatchCategory("{\"category\": 3}", kCats, true), -1);
  EXPECT_EQ(MatchCategory("{\"category\": \"dog\"", kCats, true), -1);
}

TEST(ParseCompletionTest, ContentAndUsage) {
  auto c = ParseCompletion(
      R"({"choices":[{"message":{"role":"assistant","content":"dog"},"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":40,"completion_tokens":2,"total_tokens":42}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->content, "dog");
  EXPECT_EQ(c->prompt_tokens, 40);
  EXPECT_EQ(c->completion_tokens, 2);
  EXPECT_EQ(c->total_tokens, 42);
  auto no_usage = ParseCompletion(R"({"choices":[{"message":{"content":null}}]})");
  ASSERT_TRUE(no_usage.ok());
  EXPECT_EQ(no_usage->content, "");
  EXPECT_EQ(no_usage->total_tokens, 0);
}

TEST(ParseCompletionTest, Errors) {
  auto malformed = ParseCompletion("{\"choices\": [");
  EXPECT_TRUE(absl::IsInvalidArgument(malformed.status()));
  EXPECT_NE(malformed.status().message().find("malformed JSON"), std::string::npos);
  EXPECT_TRUE(absl::IsInvalidArgument(ParseCompletion("{\"choices\": []}").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseCompletion("[1,2]").status()));
  auto upstream = ParseCompletion(R"({"error":{"code":502,"message":"Provider returned error"}})");
  EXPECT_TRUE(absl::IsUnavailable(upstream.status()));
  EXPECT_NE(upstream.status().message().find("Provider returned error"), std::string::npos);
  EXPECT_TRUE(absl::IsUnauthenticated(ParseCompletion(R"({"error":{"code":401,"message":"x"}})").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(ParseCompletion(R"({"error":{"code":402,"message":"x"}})").status()));
  EXPECT_TRUE(absl::IsPermissionDenied(ParseCompletion(R"({"error":{"code":403,"message":"x"}})").status()));
  EXPECT_TRUE(absl::IsUnavailable(
      ParseCompletion(R"({"choices":[{"error":{"code":"server_error","message":"x"}}]})").status()));
}

// An error object nested a million deep was dumped into the message, recursing once per level
// until the stack overflowed; bodies past the JSON limits are now refused before parsing.
TEST(ParseCompletionTest, DeeplyNestedBodyIsAnErrorNotACrash) {
  const int depth = 1'000'000;
  const std::string body = "{\"error\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
  auto c = ParseCompletion(body);
  EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << c.status();
  EXPECT_NE(c.status().message().find("nested deeper than"), std::string::npos);
  const std::string answer = "{\"category\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
  EXPECT_EQ(MatchCategory(answer, kCats, true), -1);
}

// A usage count near INT64_MAX overflowed the total (undefined behavior); out-of-range counts
// now read as 0. An error code past int's range no longer narrows onto 401.
TEST(ParseCompletionTest, OutOfRangeNumbersAreNotTrusted) {
  auto c = ParseCompletion(
      R"({"choices":[{"message":{"content":"dog"}}],)"
      R"("usage":{"prompt_tokens":9223372036854775807,"completion_tokens":2}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->prompt_tokens, 0);
  EXPECT_EQ(c->completion_tokens, 2);
  EXPECT_EQ(c->total_tokens, 2);
  auto negative = ParseCompletion(R"({"choices":[{"text":"x"}],"usage":{"total_tokens":-5}})");
  ASSERT_TRUE(negative.ok());
  EXPECT_EQ(negative->total_tokens, 0);
  EXPECT_TRUE(absl::IsUnavailable(
      ParseCompletion(R"({"error":{"code":4294967697,"message":"x"}})").status()));
}

}  // namespace
}  // namespace cf::caption
