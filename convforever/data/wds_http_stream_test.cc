// Remote WebDataset shards streamed over a real loopback HTTP server: a shard of several MiB read
// through a small buffer while the server drops the connection mid-shard (Range honoured, or
// ignored), gives exactly the local file's samples; failures are final or retried as retry.h
// says, with the URL redacted; a stalled download is cancelled promptly (Loader::Next wakes on
// stop); a Loader restored mid-epoch over HTTP resumes exactly.
#include "convforever/data/wds_http_stream.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "convforever/data/decode.h"
#include "convforever/data/loader.h"
#include "convforever/data/test_util.h"
#include "convforever/data/wds.h"
#include "convforever/http/testing/test_server.h"

namespace cf::data {
namespace {

using ::cf::data::testing::PatternImage;
using ::cf::data::testing::TarBytes;
using ::cf::data::testing::TempDir;
using ::cf::data::testing::WriteFile;
using ::cf::http::testing::ServerRequest;
using ::cf::http::testing::ServerResponse;
using ::cf::http::testing::TestServer;

// `samples` samples of a PNG, a .cls label and a 24 KiB incompressible .pad member the reader
// ignores (it makes the shard large without making the test slow to decode).
std::string ShardBytes(int shard, int samples) {
  std::vector<std::pair<std::string, std::string>> m;
  uint64_t x = 0x9e3779b97f4a7c15ull * (shard + 1);
  for (int i = 0; i < samples; ++i) {
    const std::string key = absl::StrCat("s", shard, "_", i);
    m.push_back({key + ".png", *EncodePng(PatternImage(8, 8, 3, shard * 1000 + i))});
    m.push_back({key + ".cls", absl::StrCat((shard + i) % 3)});
    std::string pad(24 << 10, '\0');
    for (char& c : pad) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      c = static_cast<char>(x);
    }
    m.push_back({key + ".pad", pad});
  }
  return TarBytes(m);
}

// How the server answers a shard request.
struct ShardServing {
  std::string bytes;
  std::vector<int64_t> drop_at;  // request i (while i < size) is cut when the file offset reaches drop_at[i]
  bool honour_range = true;
  std::atomic<int> requests{0};
};

// GET with `Range: bytes=N-` answered 206 from N (or 200 whole when Range is ignored).
ServerResponse ServeShard(ShardServing& s, const ServerRequest& req) {
  const int i = s.requests++;
  int64_t from = 0;
  if (auto range = req.headers.Get("Range"); range && s.honour_range) {
    absl::string_view v = *range;
    EXPECT_TRUE(absl::ConsumePrefix(&v, "bytes=") && absl::ConsumeSuffix(&v, "-") && absl::SimpleAtoi(v, &from))
        << *range;
  }
  ServerResponse r;
  r.status = from > 0 ? 206 : 200;
  r.body = s.bytes.substr(from);
  if (from > 0) {
    r.headers.Add("Content-Range", absl::StrCat("bytes ", from, "-", s.bytes.size() - 1, "/", s.bytes.size()));
  }
  if (i < static_cast<int>(s.drop_at.size())) r.drop_after_bytes = s.drop_at[i] - from;
  return r;
}

struct Sample {
  std::string key, encoded;
  int64_t label;
  bool operator==(const Sample& o) const { return key == o.key && encoded == o.encoded && label == o.label; }
};

std::vector<Sample> ReadAll(const WdsSource& src, const std::vector<std::string>& shards,
                            std::map<std::string, int64_t>* skipped) {
  std::vector<Sample> out;
  std::atomic<bool> cancel{false};
  src.ReadShards(
      shards,
      [&](FetchResult r) {
        EXPECT_TRUE(r.record.ok());
        out.push_back({r.record->key, r.record->encoded, r.record->label});
        return true;
      },
      skipped, cancel);
  return out;
}

DatasetSpec HttpSpec(const std::string& path) {
  DatasetSpec spec{"wds", path};
  spec.num_classes = 3;
  spec.wds_stream_buffer_bytes = 256 << 10;
  spec.http.backoff_ms = 10;
  return spec;
}

class DroppedConnectionTest : public ::testing::TestWithParam<bool> {};

// The server drops the connection twice mid-shard; the samples are the local file's, byte for
// byte, and the buffer never held more than its capacity.
TEST_P(DroppedConnectionTest, SameSamplesAsTheLocalFileInBoundedMemory) {
  const bool honour_range = GetParam();
  const std::string dir = TempDir(honour_range ? "wds_http_range" : "wds_http_norange");
  ShardServing serving;
  serving.bytes = ShardBytes(0, 240);  // about 6 MiB
  ASSERT_GT(serving.bytes.size(), 5u << 20);
  serving.drop_at = {1500000, 3700001};
  serving.honour_range = honour_range;
  WriteFile(dir + "/shard-000000.tar", serving.bytes);
  auto server = TestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Handle("GET", "/d/", [&](const ServerRequest& r) { return ServeShard(serving, r); });

  auto local = WdsSource::Open(HttpSpec(dir + "/shard-000000.tar"));
  ASSERT_TRUE(local.ok()) << local.status();
  std::map<std::string, int64_t> local_skipped;
  const std::vector<Sample> expected = ReadAll(**local, (*local)->shards(), &local_skipped);
  ASSERT_EQ(expected.size(), 240u);

  const std::string url = (*server)->base_url() + "/d/resolve/main/shard-000000.tar?token=hunter2";
  auto remote = WdsSource::Open(HttpSpec(url));
  ASSERT_TRUE(remote.ok()) << remote.status();
  std::map<std::string, int64_t> skipped;
  const std::vector<Sample> got = ReadAll(**remote, (*remote)->shards(), &skipped);
  EXPECT_TRUE(skipped.empty()) << skipped.begin()->first;
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_TRUE(got[i] == expected[i]) << i << " " << got[i].key;
  EXPECT_EQ(got.front().key, "shard-000000.tar:s0_0");  // keyed by file name: local and remote agree

  EXPECT_EQ(serving.requests.load(), 3);
  const auto log = (*server)->requests();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_FALSE(log[0].headers.Has("Range"));
  EXPECT_EQ(log[1].headers.Get("Range").value_or(""), "bytes=1500000-");
  EXPECT_EQ(log[2].headers.Get("Range").value_or(""), "bytes=3700001-");
  EXPECT_GT((*remote)->stream_high_water(), 0);
  EXPECT_LE((*remote)->stream_high_water(), (*remote)->stream_buffer_bytes());
}

INSTANTIATE_TEST_SUITE_P(RangeHonouredOrIgnored, DroppedConnectionTest, ::testing::Bool());

TEST(HttpShardStreamTest, ContentRangeFromAnotherOffsetIsAnError) {
  ShardServing serving;
  serving.bytes = std::string(300000, 'x');
  serving.drop_at = {100000};
  auto server = TestServer::Start();
  ASSERT_TRUE(server.ok());
  (*server)->Handle("GET", "/s", [&](const ServerRequest& r) {
    ServerResponse resp = ServeShard(serving, r);
    if (resp.status == 206) resp.headers.Set("Content-Range", "bytes 0-299999/300000");
    return resp;
  });
  HttpShardStreamOptions o;
  o.retry.base_delay = absl::Milliseconds(1);
  HttpShardStream stream((*server)->base_url() + "/s.tar", o, nullptr);
  std::vector<char> buf(1 << 16);
  int64_t total = 0, n;
  while ((n = stream.Read(buf.data(), buf.size())) > 0) total += n;
  EXPECT_EQ(n, -1);
  EXPECT_EQ(total, 100000);
  EXPECT_TRUE(absl::IsDataLoss(stream.status())) << stream.status();
  EXPECT_NE(stream.status().message().find("Content-Range"), std::string::npos) << stream.status();
}

TEST(HttpShardStreamTest, NotFoundIsFinalAndTheUrlIsRedacted) {
  auto server = TestServer::Start();
  ASSERT_TRUE(server.ok());
  HttpShardStreamOptions o;
  o.retry.base_delay = absl::Milliseconds(1);
  HttpShardStream stream((*server)->base_url() + "/missing.tar?token=hunter2", o, nullptr);
  char buf[16];
  EXPECT_EQ(stream.Read(buf, sizeof(buf)), -1);
  EXPECT_EQ(stream.requests(), 1);
  const std::string msg(stream.status().message());
  EXPECT_NE(msg.find("HTTP 404"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing.tar"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("hunter2"), std::string::npos) << msg;
}

TEST(HttpShardStreamTest, ServerErrorsAreRetried) {
  std::atomic<int> calls{0};
  auto server = TestServer::Start();
  ASSERT_TRUE(server.ok());
  (*server)->Handle("GET", "/s", [&](const ServerRequest&) {
    return ++calls <= 2 ? ServerResponse::Text(503, "busy") : ServerResponse::Text(200, "the body");
  });
  HttpShardStreamOptions o;
  o.retry.base_delay = absl::Milliseconds(1);
  HttpShardStream stream((*server)->base_url() + "/s.tar", o, nullptr);
  char buf[64];
  const int64_t n = stream.Read(buf, sizeof(buf));
  ASSERT_EQ(n, 8);
  EXPECT_EQ(std::string(buf, n), "the body");
  EXPECT_EQ(stream.Read(buf, sizeof(buf)), 0);
  EXPECT_EQ(stream.requests(), 3);
}

// The server never answers (the delay outlasts the test's timeout): only cancellation can end
// the Read and let the destructor join the download thread.
TEST(HttpShardStreamTest, CancelEndsAStalledDownload) {
  auto server = TestServer::Start();
  ASSERT_TRUE(server.ok());
  (*server)->Handle("GET", "/s", [](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(200, "late");
    r.delay = absl::Hours(1);
    return r;
  });
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    while ((*server)->request_count() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    cancel = true;
  });
  {
    HttpShardStream stream((*server)->base_url() + "/s.tar", HttpShardStreamOptions(), &cancel);
    char buf[16];
    EXPECT_EQ(stream.Read(buf, sizeof(buf)), -1);
    EXPECT_TRUE(absl::IsCancelled(stream.status())) << stream.status();
  }
  canceller.join();
}

LoaderOptions TrainOpts() {
  LoaderOptions o;
  o.batch_size = 16;
  o.num_workers = 1;
  o.prefetch_batches = 2;
  o.seed = 3;
  o.image_size = 8;
  return o;
}

// A training Loader whose shard never arrives: Next() blocks until should_stop turns true, then
// returns CANCELLED, and destroying the Loader does not wait for the server.
TEST(WdsHttpLoaderTest, NextWakesOnStopWhileTheDownloadStalls) {
  auto server = TestServer::Start();
  ASSERT_TRUE(server.ok());
  (*server)->Handle("GET", "/s", [](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(200, "late");
    r.delay = absl::Hours(1);
    return r;
  });
  DatasetSpec spec = HttpSpec((*server)->base_url() + "/s-{0..1}.tar");
  spec.wds_train_samples = 64;  // given: no counting pass
  std::atomic<bool> stop{false};
  LoaderOptions o = TrainOpts();
  o.should_stop = [&] { return stop.load(); };
  auto loader = Loader::Create(spec, o);
  ASSERT_TRUE(loader.ok()) << loader.status();
  ASSERT_TRUE((*loader)->StartEpoch(0).ok());
  std::thread stopper([&] {
    while ((*server)->request_count() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    stop = true;
  });
  auto next = (*loader)->Next();
  EXPECT_TRUE(absl::IsCancelled(next.status())) << next.status();
  loader->reset();
  stopper.join();
}

// Two HTTP shards, each cut once mid-transfer: a Loader restored after 3 batches yields exactly
// the batches an uninterrupted one does (Restore replays the stream through the downloads).
TEST(WdsHttpLoaderTest, RestoreMidEpochOverDroppingConnectionsIsExact) {
  ShardServing a, b;
  a.bytes = ShardBytes(0, 40);
  b.bytes = ShardBytes(1, 40);
  auto server = TestServer::Start();
  ASSERT_TRUE(server.ok());
  (*server)->Handle("GET", "/d/s-0.tar", [&](const ServerRequest& r) { return ServeShard(a, r); });
  (*server)->Handle("GET", "/d/s-1.tar", [&](const ServerRequest& r) { return ServeShard(b, r); });
  auto arm = [&] {  // each loader run meets the same drops (no request is in flight between runs)
    a.requests = 0, b.requests = 0;
    a.drop_at = {400000};
    b.drop_at = {700000};
  };
  DatasetSpec spec = HttpSpec((*server)->base_url() + "/d/s-{0..1}.tar");
  spec.wds_train_samples = 80;
  spec.wds_shuffle_buffer = 10;
  arm();
  auto full = Loader::Create(spec, TrainOpts());
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_TRUE((*full)->StartEpoch(2).ok());
  std::vector<Batch> expected;
  for (;;) {
    auto n = (*full)->Next();
    ASSERT_TRUE(n.ok()) << n.status();
    if (!n->has_value()) break;
    expected.push_back(std::move(**n));
  }
  ASSERT_EQ(expected.size(), 5u);
  EXPECT_GE(a.requests.load() + b.requests.load(), 4);  // both shards were cut and resumed

  arm();
  auto first = Loader::Create(spec, TrainOpts());
  ASSERT_TRUE((*first)->StartEpoch(2).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*first)->Next().ok());
  const LoaderState state = (*first)->state();
  first->reset();
  arm();
  auto resumed = Loader::Create(spec, TrainOpts());
  ASSERT_TRUE((*resumed)->Restore(state).ok());
  for (size_t i = 3; i < expected.size(); ++i) {
    auto n = (*resumed)->Next();
    ASSERT_TRUE(n.ok() && n->has_value()) << n.status();
    EXPECT_EQ((*n)->keys, expected[i].keys) << i;
    EXPECT_TRUE((*n)->images.equal(expected[i].images)) << i;
  }
  auto end = (*resumed)->Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
}

}  // namespace
}  // namespace cf::data
