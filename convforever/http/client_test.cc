#include "convforever/http/client.h"

#include <atomic>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "convforever/http/retry.h"
#include "convforever/http/testing/test_server.h"
#include "gtest/gtest.h"

namespace cf::http {
namespace {

using testing::ServerRequest;
using testing::ServerResponse;
using testing::TestServer;

std::unique_ptr<TestServer> StartServer() {
  auto server = TestServer::Start();
  EXPECT_TRUE(server.ok()) << server.status();
  return std::move(server).value();
}

TEST(FetchTest, PostEchoesBodyAndHeaders) {
  auto server = StartServer();
  server->Handle("POST", "/echo", [](const ServerRequest& r) {
    ServerResponse resp = ServerResponse::Json(201, r.body);
    resp.headers.Set("X-Seen-Auth", r.headers.Get("authorization").value_or("none"));
    return resp;
  });
  Request req;
  req.method = "POST";
  req.url = server->base_url() + "/echo?x=1";
  req.headers.Set("Authorization", "Bearer abc");
  req.body = "{\"a\":1}";
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 201);
  EXPECT_EQ(resp->body, "{\"a\":1}");
  EXPECT_EQ(resp->headers.Get("x-seen-auth").value(), "Bearer abc");
  EXPECT_EQ(resp->headers.Get("CONTENT-TYPE").value(), "application/json");
  const auto log = server->requests();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].method, "POST");
  EXPECT_EQ(log[0].path, "/echo?x=1");
}

TEST(FetchTest, HttpErrorIsAResponseAndMapsToStatus) {
  auto server = StartServer();
  server->Handle("*", "/", [](const ServerRequest&) { return ServerResponse::Json(401, "{\"error\":\"bad key\"}"); });
  Request req;
  req.url = server->base_url() + "/private?token=hunter2";
  req.headers.Set("Authorization", "Bearer sk-SECRET");
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 401);
  const absl::Status st = HttpStatusToError(req, *resp);
  EXPECT_TRUE(absl::IsUnauthenticated(st));
  EXPECT_NE(st.message().find("/private"), std::string::npos) << st;
  EXPECT_NE(st.message().find("HTTP 401"), std::string::npos) << st;
  EXPECT_EQ(st.message().find("hunter2"), std::string::npos) << st;
  EXPECT_EQ(st.message().find("sk-SECRET"), std::string::npos) << st;
}

TEST(FetchTest, UnmatchedPathIs404) {
  auto server = StartServer();
  Request req;
  req.url = server->base_url() + "/nothing";
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 404);
}

TEST(FetchTest, TimeoutIsDeadlineExceededNamingTheUrl) {
  auto server = StartServer();
  server->Handle("GET", "/slow", [](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(200, "late");
    r.delay = absl::Seconds(5);
    return r;
  });
  Request req;
  req.url = server->base_url() + "/slow";
  req.headers.Set("Authorization", "Bearer sk-SECRET");
  req.timeout = absl::Milliseconds(200);
  auto resp = Fetch(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(resp.status())) << resp.status();
  EXPECT_NE(resp.status().message().find("GET " + server->base_url() + "/slow"), std::string::npos);
  EXPECT_EQ(resp.status().message().find("sk-SECRET"), std::string::npos);
}

TEST(FetchTest, NoTimeoutAndStallDetection) {
  auto server = StartServer();
  server->Handle("GET", "/late", [](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(200, "late");
    r.delay = absl::Milliseconds(300);
    return r;
  });
  server->Handle("GET", "/stall", [](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(200, "never");
    r.delay = absl::Seconds(30);
    return r;
  });
  Request req;
  req.url = server->base_url() + "/late";
  req.timeout = absl::InfiniteDuration();
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body, "late");
  req.url = server->base_url() + "/stall";
  req.low_speed_bytes_per_s = 1;
  req.low_speed_window = absl::Seconds(1);
  resp = Fetch(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(resp.status())) << resp.status();
}

TEST(FetchTest, DroppedConnectionIsUnavailable) {
  auto server = StartServer();
  server->Handle("GET", "/drop", [](const ServerRequest&) {
    ServerResponse r;
    r.drop_connection = true;
    return r;
  });
  Request req;
  req.url = server->base_url() + "/drop";
  auto resp = Fetch(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_TRUE(absl::IsUnavailable(resp.status())) << resp.status();
}

TEST(FetchTest, ConnectionRefusedIsUnavailable) {
  auto server = StartServer();
  const std::string url = server->base_url() + "/x";
  server->Stop();
  Request req;
  req.url = url;
  auto resp = Fetch(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_TRUE(absl::IsUnavailable(resp.status())) << resp.status();
}

TEST(FetchTest, ChunkedResponse) {
  auto server = StartServer();
  const std::string big(5000, 'z');
  server->Handle("GET", "/chunked", [&](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(200, big);
    r.chunked = true;
    return r;
  });
  Request req;
  req.url = server->base_url() + "/chunked";
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body, big);
}

TEST(FetchTest, StreamsFileBodyWithKnownAndUnknownSize) {
  auto server = StartServer();
  server->Handle("PUT", "/upload", [](const ServerRequest& r) {
    ServerResponse resp = ServerResponse::Text(200, absl::StrCat(r.body.size()));
    resp.headers.Set("X-Chunked", r.headers.Has("Transfer-Encoding") ? "yes" : "no");
    return resp;
  });
  const std::string path = ::testing::TempDir() + "/upload.bin";
  std::string data;
  for (int i = 0; i < 300000; ++i) data.push_back(static_cast<char>('a' + i % 26));
  std::ofstream(path, std::ios::binary) << data;
  auto body = FileBody(path);
  ASSERT_TRUE(body.ok()) << body.status();
  Request req;
  req.method = "PUT";
  req.url = server->base_url() + "/upload";
  req.body_stream = *body;
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body, "300000");
  EXPECT_EQ(resp->headers.Get("X-Chunked").value(), "no");
  EXPECT_EQ(server->requests().back().body, data);

  (*body)->size = -1;  // unknown size: chunked upload
  resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->headers.Get("X-Chunked").value(), "yes");
  EXPECT_EQ(server->requests().back().body, data);

  EXPECT_TRUE(absl::IsNotFound(FileBody(path + ".missing").status()));
}

TEST(FetchTest, RedirectKeepsAuthorizationOnlyForTheSameHost) {
  auto a = StartServer();
  auto b = StartServer();
  auto seen = [](const ServerRequest& r) {
    return ServerResponse::Text(200, r.headers.Get("Authorization").value_or("none"));
  };
  a->Handle("GET", "/final", seen);
  b->Handle("GET", "/final", seen);
  a->Handle("GET", "/same", [](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(302, "");
    r.headers.Set("Location", "/final");
    return r;
  });
  const std::string other = b->base_url() + "/final";
  a->Handle("GET", "/other", [other](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(307, "");
    r.headers.Set("Location", other);
    return r;
  });
  Request req;
  req.headers.Set("Authorization", "Bearer sk-SECRET");
  req.url = a->base_url() + "/same";
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body, "Bearer sk-SECRET");
  req.url = a->base_url() + "/other";
  resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "none");
  EXPECT_EQ(resp->effective_url, other);
  ASSERT_EQ(b->request_count(), 1);
  EXPECT_FALSE(b->requests()[0].headers.Has("Authorization"));

  // Another host name too (the Hub's resolve -> a CDN): curl_transfer.cc sets
  // CURLOPT_UNRESTRICTED_AUTH off explicitly, so no libcurl default can change this.
  const std::string cdn = absl::StrCat("http://localhost:", b->port(), "/final?Signature=s");
  a->Handle("GET", "/cdn", [cdn](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(302, "");
    r.headers.Set("Location", cdn);
    return r;
  });
  req.url = a->base_url() + "/cdn";
  resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body, "none");
  ASSERT_EQ(b->request_count(), 2);
  EXPECT_FALSE(b->requests()[1].headers.Has("Authorization"));

  req.url = a->base_url() + "/other";
  req.follow_redirects = false;
  resp = Fetch(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 307);
}

TEST(FetchWithRetryTest, RetriesHonoringRetryAfterThenSucceeds) {
  auto server = StartServer();
  std::atomic<int> calls{0};
  server->Handle("GET", "/flaky", [&](const ServerRequest&) {
    const int n = calls.fetch_add(1);
    if (n == 0) {
      ServerResponse r = ServerResponse::Text(429, "slow down");
      r.headers.Set("Retry-After", "7");
      return r;
    }
    if (n == 1) return ServerResponse::Text(503, "busy");
    return ServerResponse::Text(200, "ok");
  });
  FakeClock clock;
  const absl::Time start = clock.Now();
  RetryOptions options;
  options.policy.jitter = 0;
  options.clock = &clock;
  Request req;
  req.url = server->base_url() + "/flaky";
  auto resp = FetchWithRetry(req, options);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->attempts, 3);
  // 7 s from Retry-After, then backoff 0.5 * 2^1 = 1 s.
  EXPECT_EQ(clock.Now() - start, absl::Seconds(8));
}

TEST(FetchWithRetryTest, FinalStatusesAreNotRetried) {
  auto server = StartServer();
  server->Handle("GET", "/", [](const ServerRequest&) { return ServerResponse::Text(403, "no"); });
  FakeClock clock;
  RetryOptions options;
  options.clock = &clock;
  Request req;
  req.url = server->base_url() + "/";
  auto resp = FetchWithRetry(req, options);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 403);
  EXPECT_EQ(resp->attempts, 1);
  EXPECT_EQ(server->request_count(), 1);
}

TEST(FetchWithRetryTest, TransportErrorsRetriedUntilAttemptsRunOut) {
  auto server = StartServer();
  server->Handle("GET", "/", [](const ServerRequest&) {
    ServerResponse r;
    r.drop_connection = true;
    return r;
  });
  FakeClock clock;
  RetryOptions options;
  options.policy.max_attempts = 3;
  options.clock = &clock;
  Request req;
  req.url = server->base_url() + "/";
  auto resp = FetchWithRetry(req, options);
  ASSERT_FALSE(resp.ok());
  EXPECT_TRUE(absl::IsUnavailable(resp.status()));
  EXPECT_NE(resp.status().message().find("after 3 attempts"), std::string::npos) << resp.status();
  EXPECT_EQ(server->request_count(), 3);
}

}  // namespace
}  // namespace cf::http
