#include "convforever/http/multi_client.h"

#include <atomic>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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

TEST(MultiClientTest, ManyRequestsAllCompleteWithTheirOwnBodies) {
  auto server = StartServer();
  std::atomic<int> concurrent{0}, peak{0};
  server->Handle("POST", "/echo", [&](const ServerRequest& r) {
    const int now = concurrent.fetch_add(1) + 1;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {}
    ServerResponse resp = ServerResponse::Text(200, r.body);
    resp.delay = absl::Milliseconds(20);
    concurrent.fetch_sub(1);  // counted while the handler decides; the delay follows
    return resp;
  });
  MultiClient client({.max_in_flight = 8});
  std::vector<std::future<absl::StatusOr<Response>>> futures;
  for (int i = 0; i < 100; ++i) {
    Request req;
    req.method = "POST";
    req.url = server->base_url() + "/echo";
    req.body = absl::StrCat("body-", i);
    futures.push_back(client.Submit(std::move(req)));
  }
  for (int i = 0; i < 100; ++i) {
    auto resp = futures[i].get();
    ASSERT_TRUE(resp.ok()) << resp.status();
    EXPECT_EQ(resp->body, absl::StrCat("body-", i));
  }
  client.Wait();
  EXPECT_EQ(client.outstanding(), 0);
  EXPECT_EQ(client.attempts(), 100);
  // Keep-alive: connections are reused, never more than max_in_flight of them.
  EXPECT_LE(server->connection_count(), 8);
}

TEST(MultiClientTest, InFlightNeverExceedsTheCap) {
  auto server = StartServer();
  std::atomic<int> active{0}, peak{0};
  server->Handle("GET", "/", [&](const ServerRequest&) {
    const int now = active.fetch_add(1) + 1;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {}
    absl::SleepFor(absl::Milliseconds(10));  // hold the slot inside the handler
    active.fetch_sub(1);
    return ServerResponse::Text(200, "ok");
  });
  MultiClient client({.max_in_flight = 3});
  std::atomic<int> done{0};
  for (int i = 0; i < 30; ++i) {
    Request req;
    req.url = server->base_url() + "/";
    client.Submit(std::move(req), [&](absl::StatusOr<Response> r) {
      EXPECT_TRUE(r.ok());
      done.fetch_add(1);
    });
  }
  client.Wait();
  EXPECT_EQ(done.load(), 30);
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 1);
}

TEST(MultiClientTest, RetriesEachHintKindAndServerErrors) {
  auto server = StartServer();
  absl::Mutex mu;
  std::map<std::string, int> seen;
  server->Handle("GET", "/r/", [&](const ServerRequest& r) {
    int n;
    {
      absl::MutexLock lock(&mu);
      n = seen[r.path]++;
    }
    if (n > 0) return ServerResponse::Text(200, "ok");
    const std::string kind = r.path.substr(3);
    ServerResponse resp = ServerResponse::Text(429, "limited");
    if (kind == "retry-after") resp.headers.Set("Retry-After", "0");
    if (kind == "retry-after-ms") resp.headers.Set("retry-after-ms", "10");
    if (kind == "reset-ms") resp.headers.Set("X-RateLimit-Reset", absl::StrCat(absl::ToUnixMillis(absl::Now()) + 20));
    if (kind == "reset-s") resp.headers.Set("X-RateLimit-Reset", absl::StrCat(absl::ToUnixSeconds(absl::Now())));
    if (kind == "openai") resp.headers.Set("x-ratelimit-reset-requests", "15ms");
    if (kind == "hf") resp.headers.Set("RateLimit", "\"api\";r=0;t=0");
    if (kind == "500") resp.status = 500;
    if (kind == "502") resp.status = 502;
    if (kind == "503") resp.status = 503;
    if (kind == "drop") resp.drop_connection = true;
    return resp;
  });
  RetryPolicy policy;
  policy.base_delay = absl::Milliseconds(5);
  MultiClient client({.max_in_flight = 4, .retry = policy});
  const std::vector<std::string> kinds = {"retry-after", "retry-after-ms", "reset-ms", "reset-s", "openai",
                                          "hf",          "500",            "502",      "503",     "drop"};
  std::vector<std::future<absl::StatusOr<Response>>> futures;
  for (const auto& kind : kinds) {
    Request req;
    req.url = server->base_url() + "/r/" + kind;
    futures.push_back(client.Submit(std::move(req)));
  }
  for (size_t i = 0; i < kinds.size(); ++i) {
    auto resp = futures[i].get();
    ASSERT_TRUE(resp.ok()) << kinds[i] << ": " << resp.status();
    EXPECT_EQ(resp->status, 200) << kinds[i];
    // libcurl itself resends once when a reused keep-alive connection dies before answering,
    // so a drop may be absorbed below us; the server still saw the request twice.
    if (kinds[i] != "drop") {
      EXPECT_EQ(resp->attempts, 2) << kinds[i];
    }
  }
  EXPECT_GE(client.retries(), static_cast<int64_t>(kinds.size()) - 1);
  absl::MutexLock lock(&mu);
  for (const auto& kind : kinds) EXPECT_EQ(seen["/r/" + kind], 2) << kind;
}

TEST(MultiClientTest, FinalStatusIsNotRetriedAndBudgetStopsStorms) {
  auto server = StartServer();
  server->Handle("GET", "/401", [](const ServerRequest&) { return ServerResponse::Text(401, "bad key"); });
  server->Handle("GET", "/503", [](const ServerRequest&) { return ServerResponse::Text(503, "down"); });
  RetryPolicy policy;
  policy.base_delay = absl::Milliseconds(1);
  policy.max_attempts = 10;
  RetryBudget budget(0.0, 5);  // five retries for everyone together
  MultiClient client({.max_in_flight = 4, .retry = policy, .retry_budget = &budget});
  Request unauthorized;
  unauthorized.url = server->base_url() + "/401";
  auto r = client.Submit(unauthorized).get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->attempts, 1);
  std::vector<std::future<absl::StatusOr<Response>>> futures;
  for (int i = 0; i < 4; ++i) {
    Request req;
    req.url = server->base_url() + "/503";
    futures.push_back(client.Submit(std::move(req)));
  }
  int attempts = 0;
  for (auto& f : futures) {
    auto resp = f.get();
    ASSERT_TRUE(resp.ok());
    EXPECT_EQ(resp->status, 503);
    attempts += resp->attempts;
  }
  EXPECT_EQ(attempts, 4 + 5);
  EXPECT_EQ(client.retries(), 5);
}

TEST(MultiClientTest, TimeoutReportedAndShutdownCancelsTheRest) {
  auto server = StartServer();
  server->Handle("GET", "/slow", [](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(200, "late");
    r.delay = absl::Seconds(30);
    return r;
  });
  auto client = std::make_unique<MultiClient>(MultiClientOptions{.max_in_flight = 2});
  Request fast_timeout;
  fast_timeout.url = server->base_url() + "/slow";
  fast_timeout.timeout = absl::Milliseconds(100);
  auto timed_out = client->Submit(fast_timeout).get();
  ASSERT_FALSE(timed_out.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(timed_out.status())) << timed_out.status();
  Request slow;
  slow.url = server->base_url() + "/slow";
  auto pending = client->Submit(slow);
  client->Shutdown();
  auto cancelled = pending.get();
  EXPECT_TRUE(absl::IsCancelled(cancelled.status())) << cancelled.status();
  auto after = client->Submit(slow).get();
  EXPECT_TRUE(absl::IsCancelled(after.status()));
}

TEST(MultiClientTest, HaltOnFatalCancelsEverythingNotOnTheWire) {
  auto server = StartServer();
  server->Handle("GET", "/", [](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(401, "revoked");
    r.delay = absl::Milliseconds(5);
    return r;
  });
  MultiClient client({.max_in_flight = 2,
                      .halt_on = [](const absl::StatusOr<Response>& r) { return r.ok() && r->status == 401; }});
  std::vector<std::future<absl::StatusOr<Response>>> futures;
  for (int i = 0; i < 50; ++i) {
    Request req;
    req.url = server->base_url() + "/";
    futures.push_back(client.Submit(std::move(req)));
  }
  int unauthorized = 0, cancelled = 0;
  for (auto& f : futures) {
    auto r = f.get();
    if (r.ok() && r->status == 401) ++unauthorized;
    if (absl::IsCancelled(r.status())) ++cancelled;
  }
  EXPECT_TRUE(client.halted());
  EXPECT_GE(unauthorized, 1);
  EXPECT_LE(unauthorized, 2);  // only what was already on the wire
  EXPECT_EQ(unauthorized + cancelled, 50);
  EXPECT_LE(server->request_count(), 2);
  Request late;
  late.url = server->base_url() + "/";
  EXPECT_TRUE(absl::IsCancelled(client.Submit(late).get().status()));
}

TEST(MultiClientTest, RateLimiterSpacesAttempts) {
  auto server = StartServer();
  server->Handle("GET", "/", [](const ServerRequest&) { return ServerResponse::Text(200, "ok"); });
  FakeClock clock;  // frozen: only the burst may pass until the test advances it
  RateLimiter limiter({.requests_per_minute = 60, .burst = 3, .clock = &clock});
  MultiClient client({.max_in_flight = 8, .rate_limiter = &limiter});
  std::atomic<int> done{0};
  for (int i = 0; i < 5; ++i) {
    Request req;
    req.url = server->base_url() + "/";
    client.Submit(std::move(req), [&](absl::StatusOr<Response>) { done.fetch_add(1); });
  }
  for (int i = 0; i < 3000 && done.load() < 3; ++i) absl::SleepFor(absl::Milliseconds(10));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(done.load(), 3);
  EXPECT_EQ(server->request_count(), 3);
  clock.Advance(absl::Seconds(2));
  client.Wait();
  EXPECT_EQ(done.load(), 5);
}

}  // namespace
}  // namespace cf::http
