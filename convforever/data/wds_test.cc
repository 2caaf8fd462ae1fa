// WebDataset shards: brace expansion, grouping, labels, shuffling, sharding, exact resume, and
// rejection of unsafe members.
#include "convforever/data/wds.h"

#include <atomic>
#include <cstdio>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "convforever/data/decode.h"
#include "convforever/data/loader.h"
#include "convforever/data/test_util.h"

namespace cf::data {
namespace {

using ::cf::data::testing::PatternImage;
using ::cf::data::testing::TarBytes;
using ::cf::data::testing::TempDir;
using ::cf::data::testing::WriteFile;

// Training loaders count their shards (wds_count.h) and cache the count under $XDG_CACHE_HOME:
// keep that inside the test's directory.
const bool kCacheInTempDir = [] {
  setenv("XDG_CACHE_HOME", TempDir("xdg_cache").c_str(), 1);
  return true;
}();

TEST(ExpandBracesTest, RangesKeepPaddingAndListsMultiply) {
  auto a = ExpandBraces("shard-{000000..000002}.tar");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<std::string>{"shard-000000.tar", "shard-000001.tar", "shard-000002.tar"}));
  auto b = ExpandBraces("{x,y}-{1..2}");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, (std::vector<std::string>{"x-1", "x-2", "y-1", "y-2"}));
  EXPECT_FALSE(ExpandBraces("s-{1..3.tar").ok());
  EXPECT_FALSE(ExpandBraces("s-1..3}.tar").ok());
  EXPECT_FALSE(ExpandBraces("s-{5..1}.tar").ok());
  EXPECT_EQ(ExpandBraces("https://huggingface.co/datasets/o/r/resolve/main/s.tar")->size(), 1u);
}

// 4 shards x 10 samples; labels alternate between .cls, .txt (class name) and .json.
std::string MakeShards(const std::string& name) {
  const std::string dir = TempDir(name);
  WriteFile(dir + "/classes.txt", "zero\none\ntwo\n");
  for (int s = 0; s < 4; ++s) {
    std::vector<std::pair<std::string, std::string>> m;
    for (int i = 0; i < 10; ++i) {
      const std::string key = absl::StrCat("s", s, "/sample", i);
      const int label = (s + i) % 3;
      m.push_back({key + ".jpg", *EncodeJpeg(PatternImage(30, 40, 3, s * 10 + i), 90)});
      if (i % 3 == 0) m.push_back({key + ".cls", absl::StrCat(label, "\n")});
      if (i % 3 == 1) m.push_back({key + ".txt", std::vector<std::string>{"zero", "one", "two"}[label]});
      if (i % 3 == 2) m.push_back({key + ".json", absl::StrCat("{\"label\": ", label, "}")});
    }
    WriteFile(absl::StrCat(dir, "/shard-", 100 + s, ".tar"), TarBytes(m));
  }
  return dir;
}

DatasetSpec Spec(const std::string& dir) {
  DatasetSpec spec{"wds", dir + "/shard-{100..103}.tar"};
  spec.class_list_path = dir + "/classes.txt";
  spec.wds_shuffle_buffer = 8;
  return spec;
}

LoaderOptions Opts(int workers) {
  LoaderOptions o;
  o.batch_size = 6;
  o.num_workers = workers;
  o.prefetch_batches = 2;
  o.seed = 5;
  o.drop_last = false;
  o.image_size = 16;
  o.transforms.train_crop = "rrc";
  return o;
}

std::vector<Batch> Drain(Loader& l) {
  std::vector<Batch> out;
  for (;;) {
    auto b = l.Next();
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok() || !b->has_value()) return out;
    out.push_back(std::move(**b));
  }
}

std::vector<std::string> Keys(const std::vector<Batch>& bs) {
  std::vector<std::string> k;
  for (const auto& b : bs) k.insert(k.end(), b.keys.begin(), b.keys.end());
  return k;
}

TEST(WdsLoaderTest, EverySampleOnceWithLabelsDeterministicAcrossThreads) {
  const std::string dir = MakeShards("wds_basic");
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 2}) {
    auto l = Loader::Create(Spec(dir), Opts(workers));
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_EQ((*l)->batches_per_epoch(), 7);  // 40 samples counted, the last batch partial
    ASSERT_TRUE((*l)->StartEpoch(1).ok());
    runs.push_back(Drain(**l));
  }
  const auto keys = Keys(runs[0]);
  EXPECT_EQ(keys.size(), 40u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 40u);
  EXPECT_EQ(Keys(runs[1]), keys);
  for (size_t i = 0; i < runs[0].size(); ++i) {
    EXPECT_TRUE(runs[0][i].images.equal(runs[1][i].images));
    // Labels survive grouping: key ".../s<S>/sample<I>" has label (S + I) % 3.
    for (size_t j = 0; j < runs[0][i].keys.size(); ++j) {
      const std::string& k = runs[0][i].keys[j];
      const int s = k[k.rfind(":s") + 2] - '0', n = std::stoi(k.substr(k.rfind("sample") + 6));
      EXPECT_EQ(runs[0][i].targets[j].item<int64_t>(), (s + n) % 3) << k;
    }
  }
  auto other = Loader::Create(Spec(dir), Opts(2));
  ASSERT_TRUE((*other)->StartEpoch(2).ok());
  EXPECT_NE(Keys(Drain(**other)), keys);  // shard order and buffer differ per epoch
}

TEST(WdsLoaderTest, RanksSplitShardsAndEpochSamplesEqualizeBatches) {
  const std::string dir = MakeShards("wds_ranks");
  std::set<std::string> all;
  for (int rank = 0; rank < 2; ++rank) {
    LoaderOptions o = Opts(1);
    o.rank = rank;
    o.world_size = 2;
    auto l = Loader::Create(Spec(dir), o);
    ASSERT_TRUE(l.ok()) << l.status();
    ASSERT_TRUE((*l)->StartEpoch(0).ok());
    auto keys = Keys(Drain(**l));
    EXPECT_EQ(keys.size(), 20u);
    all.insert(keys.begin(), keys.end());
  }
  EXPECT_EQ(all.size(), 40u);
  DatasetSpec spec = Spec(dir);
  spec.wds_epoch_samples = 30;  // more than this rank's 20: cycles its shards
  LoaderOptions o = Opts(2);
  o.world_size = 2;
  auto l = Loader::Create(spec, o);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ((*l)->batches_per_epoch(), 5);
  ASSERT_TRUE((*l)->StartEpoch(0).ok());
  EXPECT_EQ(Drain(**l).size(), 5u);
  LoaderOptions too_many = Opts(1);
  too_many.world_size = 8;
  too_many.rank = 0;
  EXPECT_FALSE(Loader::Create(Spec(dir), too_many).ok());
}

TEST(WdsLoaderTest, ExactResumeByReplay) {
  const std::string dir = MakeShards("wds_resume");
  auto full = Loader::Create(Spec(dir), Opts(2));
  ASSERT_TRUE((*full)->StartEpoch(3).ok());
  auto expected = Drain(**full);
  auto first = Loader::Create(Spec(dir), Opts(2));
  ASSERT_TRUE((*first)->StartEpoch(3).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*first)->Next().ok());
  auto state = LoaderState::FromJson((*first)->state().ToJson());
  first->reset();
  ASSERT_TRUE(state.ok());
  auto resumed = Loader::Create(Spec(dir), Opts(1));
  ASSERT_TRUE((*resumed)->Restore(*state).ok());
  auto rest = Drain(**resumed);
  ASSERT_EQ(rest.size() + 3, expected.size());
  for (size_t i = 0; i < rest.size(); ++i) {
    EXPECT_EQ(rest[i].keys, expected[i + 3].keys);
    EXPECT_TRUE(rest[i].images.equal(expected[i + 3].images));
  }
}

TEST(WdsLoaderTest, UnsafeMembersAndIncompleteSamplesAreRejectedAndCounted) {
  const std::string dir = TempDir("wds_bad");
  const std::string jpg = *EncodeJpeg(PatternImage(20, 20, 3, 1), 90);
  std::vector<std::pair<std::string, std::string>> m = {
      {"good/a.jpg", jpg}, {"good/a.cls", "1"},
      {"/etc/abs.jpg", jpg}, {"/etc/abs.cls", "1"},
      {"../up.jpg", jpg}, {"../up.cls", "1"},
      {"dir/../../x.jpg", jpg},
      {"big.jpg", std::string(300000, 'x')}, {"big.cls", "1"},
      {"nolabel.jpg", jpg},
      {"badlabel.jpg", jpg}, {"badlabel.cls", "17"},
      {"corrupt.jpg", jpg.substr(0, jpg.size() / 3)}, {"corrupt.cls", "0"},
      {"good/b.png", *EncodePng(PatternImage(20, 20, 3, 2))}, {"good/b.cls", "0"},
  };
  WriteFile(dir + "/only.tar", TarBytes(m));
  DatasetSpec spec{"wds", dir + "/only.tar"};
  spec.num_classes = 2;
  spec.wds_max_member_bytes = 100000;
  LoaderOptions o = Opts(2);
  o.batch_size = 2;
  auto l = Loader::Create(spec, o);
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE((*l)->StartEpoch(0).ok());
  auto keys = Keys(Drain(**l));
  std::sort(keys.begin(), keys.end());
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_NE(keys[0].find("good/a"), std::string::npos);
  EXPECT_NE(keys[1].find("good/b"), std::string::npos);
  Counters c = (*l)->counters();
  EXPECT_EQ(c.skipped["unsafe_member"], 6);  // abs x2, up x2, dir/../.., big.jpg
  EXPECT_EQ(c.skipped["incomplete_sample"], 2);  // nolabel (no label), big (its image was rejected)
  EXPECT_EQ(c.skipped["bad_label"], 1);
  EXPECT_EQ(c.skipped["decode_failed"], 1);
}

// The bad-label observer hears each left-out sample's key and its label as written: a name not in
// the class list (.txt, .json) and a number outside the classes (.cls), and nothing else.
TEST(WdsSourceTest, BadLabelObserverNamesTheSampleAndItsLabel) {
  const std::string dir = TempDir("wds_bad_labels");
  WriteFile(dir + "/classes.txt", "cat\ndog\n");
  const std::string jpg = *EncodeJpeg(PatternImage(20, 20, 3, 1), 90);
  WriteFile(dir + "/s-000.tar", TarBytes({{"a.jpg", jpg}, {"a.txt", "dog"},
                                          {"b.jpg", jpg}, {"b.txt", "spaceship"},
                                          {"c.jpg", jpg}, {"c.cls", "7"},
                                          {"d.jpg", jpg}, {"d.json", "{\"label\": \"comet\"}"},
                                          {"e.jpg", jpg}, {"e.cls", "1"}}));
  DatasetSpec spec{"wds", dir + "/s-000.tar"};
  spec.class_list_path = dir + "/classes.txt";
  auto src = WdsSource::Open(spec);
  ASSERT_TRUE(src.ok()) << src.status();
  std::vector<std::pair<std::string, std::string>> heard;
  (*src)->set_bad_label_observer([&](const std::string& key, const std::string& label) { heard.push_back({key, label}); });
  std::map<std::string, int64_t> skipped;
  std::atomic<bool> cancel{false};
  int emitted = 0;
  (*src)->ReadShards((*src)->shards(), [&](FetchResult) { ++emitted; return true; }, &skipped, cancel);
  EXPECT_EQ(emitted, 2);
  EXPECT_EQ(skipped["bad_label"], 3);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"s-000.tar:b", "spaceship"}, {"s-000.tar:c", "7"}, {"s-000.tar:d", "comet"}};
  EXPECT_EQ(heard, want);
}

// A one-member ustar archive whose header claims `claimed` bytes (base-256 when it does not fit
// the octal field, as GNU tar writes it) followed by `data`.
std::string TarClaiming(const std::string& name, int64_t claimed, const std::string& data) {
  std::string h(512, '\0');
  auto put = [&h](size_t at, const std::string& field) { h.replace(at, field.size(), field); };
  put(0, name);
  put(100, "0000644");
  put(108, "0000000");
  put(116, "0000000");
  h[124] = static_cast<char>(0x80);
  for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<char>((claimed >> (8 * i)) & 0xFF);
  put(136, "00000000000");
  put(156, "0");
  put(257, std::string("ustar\0" "00", 8));
  put(148, "        ");
  unsigned sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  char field[8];
  std::snprintf(field, sizeof(field), "%06o", sum);
  put(148, std::string(field, 6) + '\0');
  return h + data + std::string((512 - data.size() % 512) % 512, '\0') + std::string(1024, '\0');
}

// The tar header's size is a claim: a member announcing a terabyte is rejected by name, and one
// within wds_max_member_bytes but beyond the shard is a truncated shard, not an allocation.
TEST(WdsSourceTest, MemberSizesClaimedInHeadersAreNeverAllocated) {
  const std::string dir = TempDir("wds_claims");
  WriteFile(dir + "/tera.tar", TarClaiming("s/a.jpg", int64_t{1} << 40, "tiny"));
  DatasetSpec spec{"wds", dir + "/tera.tar"};
  spec.num_classes = 2;
  auto src = WdsSource::Open(spec);
  ASSERT_TRUE(src.ok()) << src.status();
  std::map<std::string, int64_t> skipped;
  std::atomic<bool> cancel{false};
  int emitted = 0;
  auto emit = [&](FetchResult) { ++emitted; return true; };
  (*src)->ReadShards((*src)->shards(), emit, &skipped, cancel);
  EXPECT_EQ(skipped["unsafe_member"], 1);
  // With the limit raised past the claim, the bytes that are there are read, and no more.
  spec.wds_max_member_bytes = int64_t{1} << 50;
  auto lax = WdsSource::Open(spec);
  ASSERT_TRUE(lax.ok()) << lax.status();
  skipped.clear();
  (*lax)->ReadShards((*lax)->shards(), emit, &skipped, cancel);
  EXPECT_EQ(skipped["shard_failed"], 1);
  // The same shard from memory (as a downloaded one is read).
  skipped.clear();
  const std::string bytes = TarClaiming("s/a.jpg", int64_t{1} << 40, "tiny");
  EXPECT_TRUE((*lax)->ReadShardBytes(bytes, "https://example.com/s.tar", emit, &skipped, cancel));
  EXPECT_EQ(skipped["shard_failed"], 1);
  EXPECT_EQ(emitted, 0);
}

TEST(WdsLoaderTest, MissingShardIsAnErrorAtStart) {
  DatasetSpec spec{"wds", "/nonexistent/shard-{0..3}.tar"};
  spec.num_classes = 3;
  auto l = Loader::Create(spec, Opts(1));
  ASSERT_FALSE(l.ok());
  EXPECT_NE(std::string(l.status().message()).find("/nonexistent/shard-0.tar"), std::string::npos);
}

}  // namespace
}  // namespace cf::data
