// CachingSource under a Loader reading JSONL records with URLs from a real HTTP server on
// 127.0.0.1: the second pass over the data makes no request when the encoded images fit the cap,
// some when they do not, and failed downloads are tried again.
#include "convforever/data/caching_source.h"

#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "convforever/data/decode.h"
#include "convforever/data/loader.h"
#include "convforever/data/test_util.h"
#include "convforever/http/testing/test_server.h"

namespace cf::data {
namespace {

using http::testing::ServerRequest;
using http::testing::ServerResponse;
using http::testing::TestServer;

constexpr int kImages = 10;

class CachingSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = TestServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    for (int i = 0; i < kImages; ++i) png_[i] = *EncodePng(testing::PatternImage(12, 10, 3, i));
    server_->Handle("GET", "/img/", [this](const ServerRequest& r) {
      const std::string name = r.path.substr(5);  // "<i>.png"
      const int i = std::stoi(name);
      ServerResponse out;
      out.headers.Set("Content-Type", "image/png");
      out.body = png_.at(i);
      return out;
    });
    dir_ = testing::TempDir("caching_source");
    std::string lines;
    for (int i = 0; i < kImages; ++i) {
      lines += absl::StrCat("{\"url\": \"", server_->base_url(), "/img/", i, ".png\", \"label\": ", i % 2, "}\n");
    }
    lines += absl::StrCat("{\"url\": \"", server_->base_url(), "/missing.png\", \"label\": 0}\n");
    testing::WriteFile(dir_ + "/data.jsonl", lines);
  }

  // Requests per path after `epochs` passes of a loader with this cache cap.
  std::map<std::string, int> Passes(int epochs, int64_t cache_bytes, int workers = 2) {
    DatasetSpec spec{"jsonl", dir_ + "/data.jsonl"};
    spec.num_classes = 2;
    spec.http.retries = 0;
    spec.http.timeout_ms = 2000;
    LoaderOptions o;
    o.batch_size = 4;
    o.num_workers = workers;
    o.shuffle = false;
    o.drop_last = false;
    o.train = false;
    o.image_size = 8;
    o.channels = 3;
    o.cache_bytes = cache_bytes;
    auto loader = Loader::Create(spec, o);
    EXPECT_TRUE(loader.ok()) << loader.status();
    if (!loader.ok()) return {};
    server_->ClearRequests();
    for (int e = 0; e < epochs; ++e) {
      EXPECT_TRUE((*loader)->StartEpoch(e).ok());
      int64_t images = 0;
      for (;;) {
        auto b = (*loader)->Next();
        EXPECT_TRUE(b.ok()) << b.status();
        if (!b.ok() || !b->has_value()) break;
        images += (*b)->images.size(0);
      }
      EXPECT_EQ(images, kImages) << "epoch " << e;
    }
    std::map<std::string, int> count;
    for (const ServerRequest& r : server_->requests()) ++count[r.path];
    return count;
  }

  std::unique_ptr<TestServer> server_;
  std::map<int, std::string> png_;
  std::string dir_;
};

TEST_F(CachingSourceTest, LaterPassesMakeNoRequestWhenTheSetFits) {
  const std::map<std::string, int> count = Passes(3, 1 << 20);
  for (int i = 0; i < kImages; ++i) EXPECT_EQ(count.at(absl::StrCat("/img/", i, ".png")), 1) << i;
  // A failed download is not kept: every pass tries it again.
  EXPECT_EQ(count.at("/missing.png"), 3);
}

// Negative control for the property above, and the default: no cache, every pass downloads all.
TEST_F(CachingSourceTest, WithoutACacheEveryPassDownloadsEverything) {
  const std::map<std::string, int> count = Passes(3, 0);
  for (int i = 0; i < kImages; ++i) EXPECT_EQ(count.at(absl::StrCat("/img/", i, ".png")), 3) << i;
}

// A cap for exactly the first 3 images (fetched first: one thread, no shuffle): those stay, the
// others are downloaded at every pass.
TEST_F(CachingSourceTest, OverTheCapTheRestIsFetchedAgain) {
  int64_t three = 0;
  for (int i = 0; i < 3; ++i) three += png_[i].size();
  const std::map<std::string, int> count = Passes(2, three, /*workers=*/0);
  for (int i = 0; i < kImages; ++i) EXPECT_EQ(count.at(absl::StrCat("/img/", i, ".png")), i < 3 ? 1 : 2) << i;
}

TEST(CachingSourceDirectTest, ForwardsTheWrappedSourcesFacts) {
  const std::string dir = testing::TempDir("caching_source_direct");
  testing::WriteFile(dir + "/a.png", *EncodePng(testing::PatternImage(4, 4, 3, 1)));
  testing::WriteFile(dir + "/data.jsonl", "{\"path\": \"a.png\", \"label\": \"x\"}\n{\"path\": \"a.png\", \"label\": \"unknown\"}\n");
  testing::WriteFile(dir + "/classes.txt", "x\ny\n");
  DatasetSpec spec{"jsonl", dir + "/data.jsonl"};
  spec.class_list_path = dir + "/classes.txt";
  auto inner = OpenSource(spec);
  ASSERT_TRUE(inner.ok()) << inner.status();
  CachingSource s(std::move(*inner), 1 << 20);
  EXPECT_EQ(s.size(), 1);
  EXPECT_EQ(s.num_classes(), 2);
  EXPECT_EQ(s.class_names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(s.SampleKey(0), "a.png");
  EXPECT_EQ(s.excluded().at("unknown_label"), 1);
  std::vector<FetchResult> got = s.Fetch({0, 0});
  ASSERT_TRUE(got[0].record.ok());
  EXPECT_EQ(s.cached_samples(), 1);
  EXPECT_EQ(s.cached_bytes(), static_cast<int64_t>(got[0].record->encoded.size()));
  std::vector<FetchResult> again = s.Fetch({0});
  ASSERT_TRUE(again[0].record.ok());
  EXPECT_EQ(again[0].record->encoded, got[0].record->encoded);
  EXPECT_EQ(again[0].record->label, 0);
  EXPECT_FALSE(s.full());
}

}  // namespace
}  // namespace cf::data
