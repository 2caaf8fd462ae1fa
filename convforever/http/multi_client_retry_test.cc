// MultiClient retry scheduling against a real loopback server: a retry waiting for its server hint
// holds no in-flight slot, never starts before the hint, and once due starts ahead of requests
// that have not started yet. Only ordering facts with wide margins are asserted, no speeds.
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "convforever/http/multi_client.h"
#include "convforever/http/testing/test_server.h"
#include "gtest/gtest.h"

namespace cf::http {
namespace {

using testing::ServerRequest;
using testing::ServerResponse;
using testing::TestServer;

// A server whose paths starting with /hang/ answer after 3 s (/hang1/: only the first attempt), and whose paths starting with /limited/ answer 429 with the hint header given in the query
// (`?h=<header>&v=<value>`) to the first attempt and 200 afterwards; other paths answer 200 after
// `latency`. It records, per path, when each attempt arrived and when a 429 was answered.
class HintServer {
 public:
  explicit HintServer(absl::Duration latency) {
    auto s = TestServer::Start();
    EXPECT_TRUE(s.ok()) << s.status();
    server_ = std::move(s).value();
    server_->Handle("*", "/", [this, latency](const ServerRequest& r) {
      std::lock_guard<std::mutex> lock(mu_);
      const std::string path = r.path.substr(0, r.path.find('?'));
      arrivals_[path].push_back(r.received);
      order_.push_back(path);
      if (path.rfind("/limited/", 0) == 0 && arrivals_[path].size() == 1) {
        const size_t q = r.path.find("?h=");
        const size_t amp = r.path.find("&v=");
        ServerResponse resp = ServerResponse::Json(429, R"({"error":{"code":429,"message":"rate limited"}})");
        std::string value = r.path.substr(amp + 3);
        if (value.rfind("+", 0) == 0) {  // "+N": epoch milliseconds N ms from now
          value = absl::StrCat(absl::ToUnixMillis(absl::Now()) + std::stoll(value.substr(1)));
        }
        resp.headers.Set(r.path.substr(q + 3, amp - q - 3), value);
        answered_429_[path] = absl::Now();
        return resp;
      }
      ServerResponse resp = ServerResponse::Text(200, absl::StrCat("attempt ", arrivals_[path].size()));
      const bool hang = path.rfind("/hang/", 0) == 0 || (path.rfind("/hang1/", 0) == 0 && arrivals_[path].size() == 1);
      resp.delay = hang ? absl::Seconds(3) : latency;  // a stuck upstream
      return resp;
    });
  }
  std::string url(const std::string& path) const { return server_->base_url() + path; }
  std::vector<absl::Time> arrivals(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return arrivals_[path];
  }
  absl::Time answered_429(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return answered_429_[path];
  }
  std::vector<std::string> order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }

 private:
  std::unique_ptr<TestServer> server_;
  std::mutex mu_;
  std::map<std::string, std::vector<absl::Time>> arrivals_;
  std::map<std::string, absl::Time> answered_429_;
  std::vector<std::string> order_;
};

Request Get(const std::string& url) {
  Request r;
  r.method = "GET";
  r.url = url;
  r.timeout = absl::Seconds(30);
  return r;
}

MultiClientOptions OneSlot() {
  MultiClientOptions o;
  o.max_in_flight = 1;
  o.retry = RetryPolicy{};
  return o;
}

TEST(MultiClientRetryTest, ARetryWaitingForItsHintHoldsNoSlot) {
  HintServer server(absl::Milliseconds(5));
  MultiClient client(OneSlot());
  auto limited = client.Submit(Get(server.url("/limited/a?h=Retry-After&v=2")));
  std::vector<std::future<absl::StatusOr<Response>>> others;
  for (int i = 0; i < 20; ++i) others.push_back(client.Submit(Get(server.url(absl::StrCat("/other/", i)))));
  for (auto& f : others) ASSERT_TRUE(f.get().ok());
  // All 20 finished through the only slot while the 429'd request waited out its 2 s.
  EXPECT_EQ(limited.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "the others should have finished well within the 2 s hint";
  auto r = limited.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->attempts, 2);
  const auto a = server.arrivals("/limited/a");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_GE(a[1] - server.answered_429("/limited/a"), absl::Seconds(2));
  EXPECT_GT(a[1], server.arrivals("/other/19").front());
}

TEST(MultiClientRetryTest, RetriesNeverStartBeforeTheirHint) {
  HintServer server(absl::Milliseconds(2));
  MultiClientOptions o;
  o.max_in_flight = 4;
  o.retry = RetryPolicy{};
  MultiClient client(o);
  const std::vector<std::pair<std::string, absl::Duration>> hints = {
      {"h=retry-after-ms&v=300", absl::Milliseconds(300)},
      {"h=Retry-After&v=1", absl::Seconds(1)},
      {"h=X-RateLimit-Reset&v=+400", absl::Milliseconds(400)},
      {"h=x-ratelimit-reset-requests&v=250ms", absl::Milliseconds(250)},
  };
  std::vector<std::future<absl::StatusOr<Response>>> futures;
  for (int i = 0; i < 24; ++i) {
    futures.push_back(client.Submit(Get(server.url(absl::StrCat("/limited/", i, "?", hints[i % 4].first)))));
  }
  for (auto& f : futures) ASSERT_TRUE(f.get().ok());
  for (int i = 0; i < 24; ++i) {
    const std::string path = absl::StrCat("/limited/", i);
    const auto a = server.arrivals(path);
    ASSERT_EQ(a.size(), 2u) << path;
    // X-RateLimit-Reset is an absolute time in whole milliseconds: allow that 1 ms of rounding.
    EXPECT_GE(a[1] - server.answered_429(path), hints[i % 4].second - absl::Milliseconds(1))
        << path << " " << hints[i % 4].first;
  }
}

TEST(MultiClientRetryTest, ADueRetryStartsAheadOfRequestsNotYetStarted) {
  HintServer server(absl::Milliseconds(20));
  MultiClient client(OneSlot());
  auto limited = client.Submit(Get(server.url("/limited/a?h=retry-after-ms&v=100")));
  std::vector<std::future<absl::StatusOr<Response>>> others;
  for (int i = 0; i < 60; ++i) others.push_back(client.Submit(Get(server.url(absl::StrCat("/other/", i)))));
  ASSERT_TRUE(limited.get().ok());
  for (auto& f : others) ASSERT_TRUE(f.get().ok());
  // The queue behind it takes >= 60 x 20 ms; the retry was due after 100 ms, so it must not wait
  // for the whole queue (a retry behind the queue starts far past its hint).
  const auto order = server.order();
  const auto retry = std::find(order.begin() + 1, order.end(), "/limited/a");
  ASSERT_NE(retry, order.end());
  EXPECT_LT(retry - order.begin(), 40) << "the retry started after " << (retry - order.begin() - 1)
                                         << " requests that were queued after it";
}

TEST(MultiClientRetryTest, AStragglerGivesUpItsSlot) {
  HintServer server(absl::Milliseconds(5));
  MultiClientOptions o = OneSlot();
  o.straggler_after = absl::Milliseconds(200);
  MultiClient client(o);
  auto stuck = client.Submit(Get(server.url("/hang/a")));
  std::vector<std::future<absl::StatusOr<Response>>> others;
  for (int i = 0; i < 10; ++i) others.push_back(client.Submit(Get(server.url(absl::StrCat("/other/", i)))));
  for (auto& f : others) ASSERT_TRUE(f.get().ok());
  // The 10 went through the only slot while the stuck answer was still on the wire (3 s).
  EXPECT_EQ(stuck.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  auto r = stuck.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->attempts, 1);
}

TEST(MultiClientRetryTest, AHedgedStragglerTakesTheFirstAnswer) {
  HintServer server(absl::Milliseconds(5));
  MultiClientOptions o = OneSlot();
  o.straggler_after = absl::Milliseconds(200);
  o.hedge_stragglers = true;
  MultiClient client(o);
  auto r = client.Submit(Get(server.url("/hang1/a"))).get();
  ASSERT_TRUE(r.ok()) << r.status();
  // The copy started while the first attempt hung, and its answer is the outcome.
  EXPECT_EQ(r->body, "attempt 2");
  EXPECT_EQ(client.hedges(), 1);
  client.Wait();
  EXPECT_EQ(client.outstanding(), 0);
}

}  // namespace
}  // namespace cf::http
