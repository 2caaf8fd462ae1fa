#include "convforever/http/headers.h"

#include "gtest/gtest.h"

namespace cf::http {
namespace {

TEST(HeadersTest, LookupIsCaseInsensitiveAndKeepsRepeats) {
  Headers h;
  h.Add("Content-Type", "application/json");
  h.Add("ETag", "a");
  h.Add("etag", "b");
  EXPECT_EQ(h.Get("content-type").value(), "application/json");
  EXPECT_EQ(h.Get("CONTENT-TYPE").value(), "application/json");
  EXPECT_EQ(h.GetAll("Etag"), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(h.Get("X-Missing").has_value());
  h.Set("ETAG", "c");
  EXPECT_EQ(h.GetAll("etag"), (std::vector<std::string>{"c"}));
  h.Remove("content-TYPE");
  EXPECT_FALSE(h.Has("Content-Type"));
}

TEST(HeadersTest, DebugStringRedactsSecrets) {
  Headers h{{"Authorization", "Bearer sk-secret"}, {"X-Title", "ConvForever"},
            {"x-api-key", "k123"}, {"Cookie", "session=abc"}};
  const std::string s = h.DebugString();
  EXPECT_EQ(s.find("sk-secret"), std::string::npos) << s;
  EXPECT_EQ(s.find("k123"), std::string::npos) << s;
  EXPECT_EQ(s.find("abc"), std::string::npos) << s;
  EXPECT_NE(s.find("X-Title: ConvForever"), std::string::npos) << s;
}

TEST(RedactUrlTest, RemovesUserinfoAndSecretQueryValues) {
  EXPECT_EQ(RedactUrl("https://user:pw@host.example/a?x=1&api_key=zzz&token=t#frag"),
            "https://host.example/a?x=1&api_key=REDACTED&token=REDACTED#frag");
  EXPECT_EQ(RedactUrl("http://127.0.0.1:80/v1/chat/completions"),
            "http://127.0.0.1:80/v1/chat/completions");
  EXPECT_EQ(RedactUrl("http://h/p?sig=abc"), "http://h/p?sig=REDACTED");
}

}  // namespace
}  // namespace cf::http
