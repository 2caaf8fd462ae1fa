// WebDataset epoch length and splits: the counted length equals what the stream yields and is
// cached per shard list (used again, invalidated when a shard changes); a given length wins; the
// held-out split divides a stream into disjoint parts that cover it, and an evaluation Loader
// yields its part once; shards written by the real `webdataset` Python library read and count.
#include "convforever/data/wds_count.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/data/decode.h"
#include "convforever/data/loader.h"
#include "convforever/data/test_util.h"
#include "convforever/data/wds.h"

namespace cf::data {
namespace {

namespace fs = std::filesystem;
using ::cf::data::testing::PatternImage;
using ::cf::data::testing::TarBytes;
using ::cf::data::testing::TempDir;
using ::cf::data::testing::WriteFile;

// Counting writes its cache under $XDG_CACHE_HOME: a fresh one per test.
class WdsCountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_home_ = TempDir(std::string("xdg_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    setenv("XDG_CACHE_HOME", cache_home_.c_str(), 1);
  }
  std::string cache_home_;
};

// Shard s holds `n` complete samples (PNG + .cls), plus a sample without a label, one with a
// label outside the 3 classes and an unsafe member, which neither the stream nor the count take.
void WriteShard(const std::string& path, int s, int n) {
  std::vector<std::pair<std::string, std::string>> m;
  for (int i = 0; i < n; ++i) {
    const std::string key = absl::StrCat("k", s, "_", i);
    m.push_back({key + ".png", *EncodePng(PatternImage(8, 8, 3, s * 100 + i))});
    m.push_back({key + ".cls", absl::StrCat(i % 3)});
  }
  m.push_back({"nolabel.png", *EncodePng(PatternImage(8, 8, 3, 1))});
  m.push_back({"badlabel.png", *EncodePng(PatternImage(8, 8, 3, 2))});
  m.push_back({"badlabel.cls", "9"});
  m.push_back({"../evil.png", "x"});
  WriteFile(path, TarBytes(m));
}

DatasetSpec Spec(const std::string& dir) {
  DatasetSpec spec{"wds", dir + "/shard-{000000..000002}.tar"};
  spec.num_classes = 3;
  return spec;
}

std::vector<std::string> StreamKeys(const DatasetSpec& spec) {
  auto src = WdsSource::Open(spec);
  EXPECT_TRUE(src.ok()) << src.status();
  std::vector<std::string> keys;
  std::map<std::string, int64_t> skipped;
  std::atomic<bool> cancel{false};
  (*src)->ReadShards(
      (*src)->shards(), [&](FetchResult r) { keys.push_back(r.record->key); return true; }, &skipped, cancel);
  return keys;
}

TEST_F(WdsCountTest, CountedLengthIsTheStreamsAndIsCachedUntilAShardChanges) {
  const std::string dir = TempDir("wds_count");
  for (int s = 0; s < 3; ++s) WriteShard(absl::StrFormat("%s/shard-%06d.tar", dir, s), s, 20 + s);
  const DatasetSpec spec = Spec(dir);
  const size_t truth = StreamKeys(spec).size();
  ASSERT_EQ(truth, 63u);
  auto src = WdsSource::Open(spec);
  ASSERT_TRUE(src.ok());

  auto first = ResolveWdsTrainSamples(**src);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->samples, 63);
  EXPECT_EQ(first->how, "counted");
  EXPECT_EQ(first->cache_file.rfind(cache_home_ + "/convforever/wds_counts/", 0), 0u) << first->cache_file;
  EXPECT_TRUE(fs::exists(first->cache_file));

  auto second = ResolveWdsTrainSamples(**src);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->how, "from cache");
  EXPECT_EQ(second->samples, 63);

  // A changed shard (different contents and size) is counted again.
  WriteShard(dir + "/shard-000001.tar", 1, 30);
  auto third = ResolveWdsTrainSamples(**src);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->how, "counted");
  EXPECT_EQ(third->samples, 20 + 30 + 22);
  EXPECT_EQ(static_cast<size_t>(third->samples), StreamKeys(spec).size());

  // Another split of the same shards is another cache entry.
  DatasetSpec held = spec;
  held.holdout_fraction = 0.3;
  held.holdout_part = HoldoutPart::kHeldOut;
  auto held_src = WdsSource::Open(held);
  ASSERT_TRUE(held_src.ok());
  auto part = ResolveWdsTrainSamples(**held_src);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->how, "counted");
  EXPECT_EQ(static_cast<size_t>(part->samples), StreamKeys(held).size());
}

// An unreadable shard counts 0 (the stream skips it too) and such a count is not cached; with no
// readable shard at all, counting is an error naming a shard.
TEST_F(WdsCountTest, UnreadableShardsCountZeroAndAreNotCached) {
  const std::string dir = TempDir("wds_count_bad");
  for (int s = 0; s < 3; ++s) WriteShard(absl::StrFormat("%s/shard-%06d.tar", dir, s), s, 10);
  WriteFile(dir + "/shard-000001.tar", std::string(5000, 'z'));
  auto src = WdsSource::Open(Spec(dir));
  ASSERT_TRUE(src.ok());
  auto count = ResolveWdsTrainSamples(**src);
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(count->samples, 20);
  EXPECT_EQ(count->how, "counted, 1 shard(s) unreadable");
  EXPECT_FALSE(fs::exists(cache_home_ + "/convforever/wds_counts") &&
               !fs::is_empty(cache_home_ + "/convforever/wds_counts"));
  for (int s : {0, 2}) WriteFile(absl::StrFormat("%s/shard-%06d.tar", dir, s), "not a tar");
  auto none = ResolveWdsTrainSamples(**src);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("shard-00000"), std::string::npos) << none.status();
}

TEST_F(WdsCountTest, GivenLengthWinsAndSetsEveryRanksEpoch) {
  const std::string dir = TempDir("wds_given");
  for (int s = 0; s < 3; ++s) WriteShard(absl::StrFormat("%s/shard-%06d.tar", dir, s), s, 10);
  DatasetSpec spec = Spec(dir);
  spec.wds_train_samples = 100;
  LoaderOptions o;
  o.batch_size = 8;
  o.num_workers = 0;
  o.image_size = 8;
  o.world_size = 2;
  for (int rank = 0; rank < 2; ++rank) {
    o.rank = rank;
    auto loader = Loader::Create(spec, o);
    ASSERT_TRUE(loader.ok()) << loader.status();
    EXPECT_EQ((*loader)->num_samples(), 100);
    EXPECT_EQ((*loader)->batches_per_epoch(), 6);  // 50 per rank, drop_last
    ASSERT_TRUE((*loader)->StartEpoch(0).ok());
    int batches = 0;
    for (;;) {
      auto b = (*loader)->Next();
      ASSERT_TRUE(b.ok()) << b.status();
      if (!b->has_value()) break;
      ++batches;
    }
    EXPECT_EQ(batches, 6) << "rank " << rank;  // rank 1 has 10 samples: it cycles its shard
  }
  EXPECT_FALSE(fs::exists(cache_home_ + "/convforever")) << "a given length must not count";
}

// Without a given length, a training Loader counts: its epoch is the stream's length.
TEST_F(WdsCountTest, TrainingLoaderCountsItsEpoch) {
  const std::string dir = TempDir("wds_loader_count");
  for (int s = 0; s < 3; ++s) WriteShard(absl::StrFormat("%s/shard-%06d.tar", dir, s), s, 16);
  LoaderOptions o;
  o.batch_size = 8;
  o.num_workers = 2;
  o.image_size = 8;
  auto loader = Loader::Create(Spec(dir), o);
  ASSERT_TRUE(loader.ok()) << loader.status();
  EXPECT_EQ((*loader)->num_samples(), 48);
  EXPECT_EQ((*loader)->batches_per_epoch(), 6);
  ASSERT_TRUE((*loader)->StartEpoch(1).ok());
  std::set<std::string> keys;
  for (;;) {
    auto b = (*loader)->Next();
    ASSERT_TRUE(b.ok()) << b.status();
    if (!b->has_value()) break;
    keys.insert((*b)->keys.begin(), (*b)->keys.end());
  }
  EXPECT_EQ(keys.size(), 48u);
}

// Training and held-out parts are disjoint and cover the stream; an evaluation Loader over the
// held-out part yields each of its samples once, in shard order, then stays at its end.
TEST_F(WdsCountTest, HoldoutPartsAreDisjointCoverAndEvaluateOnce) {
  const std::string dir = TempDir("wds_holdout");
  for (int s = 0; s < 3; ++s) WriteShard(absl::StrFormat("%s/shard-%06d.tar", dir, s), s, 30);
  DatasetSpec spec = Spec(dir);
  const std::vector<std::string> all = StreamKeys(spec);
  spec.holdout_fraction = 0.25;
  spec.holdout_part = HoldoutPart::kTraining;
  const std::vector<std::string> train = StreamKeys(spec);
  spec.holdout_part = HoldoutPart::kHeldOut;
  const std::vector<std::string> held = StreamKeys(spec);
  ASSERT_EQ(all.size(), 90u);
  EXPECT_GT(held.size(), 5u);
  EXPECT_GT(train.size(), 50u);
  std::set<std::string> union_keys(train.begin(), train.end());
  for (const auto& k : held) EXPECT_TRUE(union_keys.insert(k).second) << k << " is in both parts";
  EXPECT_EQ(union_keys, std::set<std::string>(all.begin(), all.end()));

  LoaderOptions o;
  o.batch_size = 4;
  o.num_workers = 2;
  o.image_size = 8;
  o.train = false;
  o.shuffle = false;
  o.drop_last = false;
  auto eval = Loader::Create(spec, o);
  ASSERT_TRUE(eval.ok()) << eval.status();
  ASSERT_TRUE((*eval)->StartEpoch(0).ok());
  std::vector<std::string> seen;
  for (;;) {
    auto b = (*eval)->Next();
    ASSERT_TRUE(b.ok()) << b.status();
    if (!b->has_value()) break;
    seen.insert(seen.end(), (*b)->keys.begin(), (*b)->keys.end());
  }
  EXPECT_EQ(seen, held);
  auto after = (*eval)->Next();
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value());
  // Its size is counted like a training stream's, so the trainer's log can name it.
  EXPECT_EQ((*eval)->num_samples(), static_cast<int64_t>(held.size()));
}

// The project venv's python, through the real path of a runfile that is a source file (as
// train/tensorboard_test.cc does); empty without a venv.
std::string VenvPython(const std::string& runfile) {
  char real[PATH_MAX];
  if (::realpath(runfile.c_str(), real) == nullptr) return "";
  const std::string suffix = "convforever/data/testdata/write_wds_shards.py";
  const std::string r(real);
  if (r.size() < suffix.size()) return "";
  const std::string python = r.substr(0, r.size() - suffix.size()) + ".venv/bin/python";
  return ::access(python.c_str(), X_OK) == 0 ? python : "";
}

TEST_F(WdsCountTest, ShardsWrittenByThePythonWebdatasetLibrary) {
  const std::string script = ::cf::data::testing::TestdataPath("write_wds_shards.py");
  const std::string python = VenvPython(script);
  if (python.empty()) {
    const char* ci = std::getenv("CI");
    ASSERT_FALSE(ci != nullptr && std::string(ci) == "true") << "no project venv (.venv; tools/cf setup)";
    GTEST_SKIP() << "no project venv at the workspace root; needs the real webdataset library";
  }
  const std::string dir = TempDir("wds_python");
  const std::string cmd = absl::StrCat(python, " ", script, " '", dir, "' 2 25 2>&1");
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  ASSERT_EQ(::pclose(pipe), 0) << out;

  std::vector<std::pair<std::string, int64_t>> expected;
  std::istringstream lines(out);
  std::string key;
  int64_t label;
  while (lines >> key >> label) expected.push_back({key, label});
  ASSERT_EQ(expected.size(), 50u) << out;

  DatasetSpec spec{"wds", dir + "/py-{000000..000001}.tar"};
  spec.num_classes = 3;
  auto src = WdsSource::Open(spec);
  ASSERT_TRUE(src.ok()) << src.status();
  std::vector<std::pair<std::string, int64_t>> got;
  std::map<std::string, int64_t> skipped;
  std::atomic<bool> cancel{false};
  (*src)->ReadShards(
      (*src)->shards(),
      [&](FetchResult r) {
        EXPECT_TRUE(DecodeImage(r.record->encoded, 3, 0, r.record->key).ok()) << r.record->key;
        got.push_back({r.record->key, r.record->label});
        return true;
      },
      &skipped, cancel);
  EXPECT_TRUE(skipped.empty());
  EXPECT_EQ(got, expected);
  auto counted = ResolveWdsTrainSamples(**src);
  ASSERT_TRUE(counted.ok()) << counted.status();
  EXPECT_EQ(counted->samples, 50);
}

}  // namespace
}  // namespace cf::data
