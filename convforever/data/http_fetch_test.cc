// The fetcher and the JSONL-with-URLs source against a real HTTP server on 127.0.0.1.
#include "convforever/data/http_fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "convforever/data/decode.h"
#include "convforever/data/loader.h"
#include "convforever/data/test_util.h"

namespace cf::data {
namespace {

// Routes: /img/<n>.png (200, a PNG), /missing (404), /always500 (500), /flaky/<k>/<name> (503 for
// the first k requests of that path, then a PNG), /slow (answers after 3 s), /redirect (302 to
// /img/1.png), /limited/<name> (429 with "Retry-After: 1" the first time, then a PNG). Arrival
// times are recorded per path. One thread per connection; all joined by the destructor.
class TestServer {
 public:
  TestServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 128);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~TestServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    accept_thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& t : conns_) t.join();
  }
  std::string Url(const std::string& path) const { return absl::StrCat("http://127.0.0.1:", port_, path); }
  // Serves `bytes` at `path` (200) from now on.
  void Put(const std::string& path, std::string bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    files_[path] = std::move(bytes);
  }
  int Hits(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return hits_[path];
  }
  std::vector<std::chrono::steady_clock::time_point> Arrivals(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return arrivals_[path];
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::lock_guard<std::mutex> lock(mu_);
      conns_.emplace_back([this, c] { Serve(c); });
    }
  }
  void Serve(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = recv(c, buf, sizeof(buf), 0);
      if (n <= 0) { close(c); return; }
      req.append(buf, n);
    }
    const size_t sp1 = req.find(' '), sp2 = req.find(' ', sp1 + 1);
    const std::string path = req.substr(sp1 + 1, sp2 - sp1 - 1);
    int hit;
    bool have_file = false;
    std::string body, extra;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hit = ++hits_[path];
      arrivals_[path].push_back(std::chrono::steady_clock::now());
      if (auto it = files_.find(path); it != files_.end()) {
        have_file = true;
        body = it->second;
      }
    }
    int code = 200;
    if (have_file) {
      // served as is
    } else if (absl::StartsWith(path, "/img/")) {
      int n = 0;
      (void)absl::SimpleAtoi(path.substr(5, path.find('.') - 5), &n);
      body = *EncodePng(testing::PatternImage(12, 10, 3, n));
    } else if (path == "/missing") {
      code = 404;
    } else if (path == "/always500") {
      code = 500;
    } else if (absl::StartsWith(path, "/flaky/")) {
      int k = 0;
      (void)absl::SimpleAtoi(path.substr(7, 1), &k);
      if (hit <= k) code = 503; else body = *EncodePng(testing::PatternImage(12, 10, 3, 7));
    } else if (path == "/slow") {
      for (int i = 0; i < 30 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } else if (absl::StartsWith(path, "/limited/")) {
      if (hit == 1) {
        code = 429;
        extra = "Retry-After: 1\r\n";
      } else {
        body = *EncodePng(testing::PatternImage(12, 10, 3, 5));
      }
    } else if (path == "/redirect") {
      code = 302;
      extra = "Location: /img/1.png\r\n";
    } else {
      code = 404;
    }
    const std::string head = absl::StrCat("HTTP/1.1 ", code, " X\r\nContent-Length: ", body.size(),
                                          "\r\nConnection: close\r\n", extra, "\r\n");
    const std::string resp = head + body;
    size_t off = 0;
    while (off < resp.size()) {
      const ssize_t n = send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += n;
    }
    close(c);
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::map<std::string, int> hits_;
  std::map<std::string, std::vector<std::chrono::steady_clock::time_point>> arrivals_;
  std::map<std::string, std::string> files_;
};

HttpFetchOptions FastOptions() {
  HttpFetchOptions o;
  o.timeout_ms = 400;
  o.retries = 2;
  o.backoff_ms = 10;
  o.max_in_flight = 8;
  return o;
}

TEST(HttpFetchTest, RetriesTransientFailuresOnlyAndReportsTheUrl) {
  TestServer server;
  const std::vector<std::string> urls = {server.Url("/img/1.png"), server.Url("/missing"),
                                         server.Url("/always500"), server.Url("/flaky/2/a"),
                                         server.Url("/slow"), server.Url("/redirect")};
  auto r = HttpFetchAll(urls, FastOptions());
  ASSERT_EQ(r.size(), urls.size());
  ASSERT_TRUE(r[0].body.ok()) << r[0].body.status();
  EXPECT_EQ(SniffFormat(*r[0].body), ImageFormat::kPng);
  EXPECT_FALSE(r[1].body.ok());
  EXPECT_EQ(r[1].attempts, 1);  // 404 is final
  EXPECT_NE(std::string(r[1].body.status().message()).find("/missing"), std::string::npos);
  EXPECT_FALSE(r[2].body.ok());
  EXPECT_EQ(r[2].attempts, 3);  // first try + 2 retries
  EXPECT_EQ(server.Hits("/always500"), 3);
  ASSERT_TRUE(r[3].body.ok()) << r[3].body.status();
  EXPECT_EQ(r[3].attempts, 3);
  EXPECT_FALSE(r[4].body.ok());  // timed out every time
  EXPECT_EQ(r[4].attempts, 3);
  ASSERT_TRUE(r[5].body.ok()) << r[5].body.status();
}

// The server's Retry-After is honoured (the project's retry policy), not the 10 ms backoff; a URL's
// credentials never reach an error message.
TEST(HttpFetchTest, RetryAfterIsHonouredAndErrorsAreRedacted) {
  TestServer server;
  const std::string limited = "/limited/a";
  auto r = HttpFetchAll({server.Url(limited), server.Url("/missing?token=s3cret")}, FastOptions());
  ASSERT_TRUE(r[0].body.ok()) << r[0].body.status();
  EXPECT_EQ(r[0].attempts, 2);
  const auto arrivals = server.Arrivals(limited);
  ASSERT_EQ(arrivals.size(), 2u);
  EXPECT_GE(arrivals[1] - arrivals[0], std::chrono::milliseconds(990));  // Retry-After: 1
  ASSERT_FALSE(r[1].body.ok());
  const std::string message(r[1].body.status().message());
  EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
  EXPECT_NE(message.find("/missing"), std::string::npos) << message;
}

TEST(HttpFetchTest, ManyInFlightAndOversizedBodies) {
  TestServer server;
  std::vector<std::string> urls;
  for (int i = 0; i < 40; ++i) urls.push_back(server.Url(absl::StrCat("/img/", i, ".png")));
  auto r = HttpFetchAll(urls, FastOptions());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(r[i].body.ok()) << i;
    EXPECT_EQ(DecodeImage(*r[i].body, 3, 0, urls[i])->pixels, testing::PatternImage(12, 10, 3, i).pixels);
  }
  HttpFetchOptions tiny = FastOptions();
  tiny.max_bytes = 10;
  auto big = HttpFetchAll({server.Url("/img/3.png")}, tiny);
  EXPECT_FALSE(big[0].body.ok());
  EXPECT_EQ(big[0].attempts, 1);
}

TEST(HttpFetchTest, JsonlLoaderSkipsAndCountsFailedDownloads) {
  TestServer server;
  const std::string dir = testing::TempDir("jsonl_http");
  testing::WriteFile(dir + "/local.png", *EncodePng(testing::PatternImage(12, 10, 3, 99)));
  std::string lines;
  for (int i = 0; i < 6; ++i) lines += absl::StrCat("{\"url\": \"", server.Url(absl::StrCat("/img/", i, ".png")), "\", \"label\": \"bird\"}\n");
  lines += absl::StrCat("{\"url\": \"", server.Url("/missing"), "\", \"label\": \"fish\"}\n");
  lines += absl::StrCat("{\"url\": \"", server.Url("/always500"), "\", \"label\": \"fish\"}\n");
  lines += absl::StrCat("{\"url\": \"", server.Url("/flaky/1/b"), "\", \"label\": \"fish\"}\n");
  lines += "{\"path\": \"local.png\", \"label\": \"fish\"}\n";
  lines += "{\"path\": \"local.png\", \"label\": \"unknown\"}\n";
  testing::WriteFile(dir + "/data.jsonl", lines);
  testing::WriteFile(dir + "/classes.txt", "fish\nbird\n");
  DatasetSpec spec{"jsonl", dir + "/data.jsonl"};
  spec.class_list_path = dir + "/classes.txt";
  spec.http = FastOptions();
  LoaderOptions o;
  o.batch_size = 4;
  o.num_workers = 2;
  o.drop_last = false;
  o.image_size = 8;
  auto l = Loader::Create(spec, o);
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE((*l)->StartEpoch(0).ok());
  std::vector<std::string> keys;
  for (;;) {
    auto b = (*l)->Next();
    ASSERT_TRUE(b.ok()) << b.status();
    if (!b->has_value()) break;
    keys.insert(keys.end(), (*b)->keys.begin(), (*b)->keys.end());
  }
  EXPECT_EQ(keys.size(), 8u);  // 6 images + flaky + local
  for (const auto& k : keys) {
    EXPECT_EQ(k.find("/missing"), std::string::npos);
    EXPECT_EQ(k.find("/always500"), std::string::npos);
  }
  Counters c = (*l)->counters();
  EXPECT_EQ(c.skipped["fetch_failed"], 2);
  EXPECT_EQ(c.excluded["unknown_label"], 1);
}

TEST(HttpFetchTest, WebDatasetShardsOverHttpWithAFailingShardSkipped) {
  TestServer server;
  for (int s = 0; s < 3; ++s) {
    std::vector<std::pair<std::string, std::string>> m;
    for (int i = 0; i < 5; ++i) {
      const std::string key = absl::StrCat("k", s, "_", i);
      m.push_back({key + ".png", *EncodePng(testing::PatternImage(12, 10, 3, i))});
      m.push_back({key + ".cls", absl::StrCat(i % 2)});
    }
    // Shard 2 is never served: /data/shard-2.tar answers 404.
    if (s < 2) server.Put(absl::StrCat("/data/shard-", s, ".tar"), testing::TarBytes(m));
  }
  DatasetSpec spec{"wds", server.Url("/data/shard-{0..2}.tar")};
  spec.num_classes = 2;
  spec.http = FastOptions();
  LoaderOptions o;
  o.batch_size = 4;
  o.num_workers = 2;
  o.drop_last = false;
  o.image_size = 8;
  auto l = Loader::Create(spec, o);
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE((*l)->StartEpoch(0).ok());
  std::set<std::string> keys;
  for (;;) {
    auto b = (*l)->Next();
    ASSERT_TRUE(b.ok()) << b.status();
    if (!b->has_value()) break;
    keys.insert((*b)->keys.begin(), (*b)->keys.end());
  }
  EXPECT_EQ(keys.size(), 10u);
  EXPECT_EQ((*l)->counters().skipped["shard_failed"], 1);
}

}  // namespace
}  // namespace cf::data
