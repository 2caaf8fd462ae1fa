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

TEST(HeadersTest, AddHeaderLineKeepsOnlyTheFinalResponsesHeaders) {
  Headers h;
  for (const char* line : {"HTTP/1.1 302 Found\r\n", "Location: https://cdn.example/x\r\n",
                           "\r\n", "HTTP/2 200\r\n", "Content-Type :  text/plain \r\n",
                           "X-Empty:\r\n", "no colon here\r\n", "ETag: \"a:b\"\r\n", "\r\n"}) {
    AddHeaderLine(line, &h);
  }
  EXPECT_FALSE(h.Has("Location"));
  EXPECT_EQ(h.Get("content-type"), "text/plain");
  EXPECT_EQ(h.Get("X-Empty"), "");
  EXPECT_EQ(h.Get("ETag"), "\"a:b\"");
  EXPECT_EQ(h.size(), 3u);
}

TEST(RedactUrlTest, RemovesUserinfoAndSecretQueryValues) {
  EXPECT_EQ(RedactUrl("https://user:pw@host.example/a?x=1&api_key=zzz&token=t#frag"),
            "https://host.example/a?x=1&api_key=REDACTED&token=REDACTED#frag");
  EXPECT_EQ(RedactUrl("http://127.0.0.1:80/v1/chat/completions"),
            "http://127.0.0.1:80/v1/chat/completions");
  EXPECT_EQ(RedactUrl("http://h/p?sig=abc"), "http://h/p?sig=REDACTED");
}

// Presigned storage URLs as the Hub hands them out (S3, CloudFront, GCS, Azure SAS, the Hub's
// own signed completion URL): no signature, credential or session token survives.
TEST(RedactUrlTest, RedactsSignedQueryStrings) {
  const std::string s3 = RedactUrl(
      "https://bucket.s3.amazonaws.com/repos/ab/cd?X-Amz-Algorithm=AWS4-HMAC-SHA256"
      "&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z"
      "&X-Amz-Expires=900&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE&X-Amz-Signature=deadbeef"
      "&X-Amz-SignedHeaders=host&partNumber=3&uploadId=u1");
  for (const char* secret : {"AKIAEXAMPLE", "FwoGZXIvYXdzEXAMPLE", "deadbeef"}) {
    EXPECT_EQ(s3.find(secret), std::string::npos) << s3;
  }
  EXPECT_NE(s3.find("partNumber=3"), std::string::npos) << s3;
  EXPECT_NE(s3.find("X-Amz-Expires=900"), std::string::npos) << s3;
  EXPECT_EQ(RedactUrl("https://cdn.example/f?Expires=1&Signature=abc&Key-Pair-Id=K1"),
            "https://cdn.example/f?Expires=1&Signature=REDACTED&Key-Pair-Id=REDACTED");
  EXPECT_EQ(RedactUrl("https://storage.googleapis.com/b/o?X-Goog-Signature=ff&X-Goog-Credential=sa"),
            "https://storage.googleapis.com/b/o?X-Goog-Signature=REDACTED&X-Goog-Credential=REDACTED");
  EXPECT_EQ(RedactUrl("https://a.blob.core.windows.net/c/b?sv=2021&se=2026&sp=r&sig=xyz"),
            "https://a.blob.core.windows.net/c/b?sv=2021&se=2026&sp=r&sig=REDACTED");
  EXPECT_EQ(RedactUrl("https://huggingface.co/api/complete_multipart?uploadId=u&signature=s2"),
            "https://huggingface.co/api/complete_multipart?uploadId=u&signature=REDACTED");
  EXPECT_EQ(RedactUrl("https://h/cb#access_token=tok&state=1"), "https://h/cb#access_token=REDACTED&state=1");
  EXPECT_EQ(RedactUrl("https://u:p%40ss@h/x?token=t#f"), "https://h/x?token=REDACTED#f");
  EXPECT_EQ(RedactUrl("https://hf_token@h:8080"), "https://h:8080");
}

TEST(RedactUrlTest, RedactsEveryUrlInText) {
  EXPECT_EQ(RedactUrlsInText("fetch https://u:p@a.example/x?sig=1 failed; see (http://b/?token=t) ok"),
            "fetch https://a.example/x?sig=REDACTED failed; see (http://b/?token=REDACTED) ok");
  EXPECT_EQ(RedactUrlsInText("| `data_dir` | `s3://bucket/k?X-Amz-Signature=zz` |"),
            "| `data_dir` | `s3://bucket/k?X-Amz-Signature=REDACTED` |");
  EXPECT_EQ(RedactUrlsInText("no url here: a://"), "no url here: a://");
  EXPECT_EQ(RedactUrlsInText("plain ://x and ?token=t"), "plain ://x and ?token=t");
}

}  // namespace
}  // namespace cf::http
