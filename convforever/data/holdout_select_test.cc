// The held-out split applied by Loader::Create on real fixtures (an image folder of PNGs, a JSONL
// file of relative paths): the training and held-out parts are disjoint and together the whole
// data, each part is what InHoldoutPart says of the sample keys (a path relative to the folder,
// the path as written in the JSONL record), and the errors name the culprit.
#include "convforever/data/holdout_select.h"

#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "convforever/data/decode.h"
#include "convforever/data/holdout.h"
#include "convforever/data/loader.h"
#include "convforever/data/test_util.h"

namespace cf::data {
namespace {

namespace fs = std::filesystem;

constexpr double kFraction = 0.25;

// 3 class folders of 20 PNGs under `root`; returns the keys "<class>/<file>".
std::vector<std::string> WriteFolder(const std::string& root) {
  std::vector<std::string> keys;
  for (const char* cls : {"ant", "bee", "cat"}) {
    fs::create_directories(root + "/" + cls);
    for (int i = 0; i < 20; ++i) {
      const std::string key = absl::StrCat(cls, "/img_", i, ".png");
      testing::WriteFile(root + "/" + key, *EncodePng(testing::PatternImage(10, 12, 3, i)));
      keys.push_back(key);
    }
  }
  return keys;
}

LoaderOptions EvalLike() {
  LoaderOptions o;
  o.batch_size = 7;
  o.num_workers = 0;
  o.shuffle = false;
  o.drop_last = false;
  o.train = false;
  o.image_size = 8;
  o.channels = 3;
  return o;
}

// Every Batch::keys entry of one epoch (file paths for these sources).
std::vector<std::string> EpochKeys(const DatasetSpec& spec) {
  auto loader = Loader::Create(spec, EvalLike());
  EXPECT_TRUE(loader.ok()) << loader.status();
  if (!loader.ok()) return {};
  EXPECT_TRUE((*loader)->StartEpoch(0).ok());
  std::vector<std::string> keys;
  for (;;) {
    auto b = (*loader)->Next();
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok() || !b->has_value()) break;
    keys.insert(keys.end(), (*b)->keys.begin(), (*b)->keys.end());
  }
  EXPECT_EQ(static_cast<int64_t>(keys.size()), (*loader)->num_samples());
  return keys;
}

DatasetSpec Part(DatasetSpec spec, HoldoutPart part) {
  spec.holdout_part = part;
  spec.holdout_fraction = kFraction;
  return spec;
}

// The two parts of `spec`'s data: disjoint, together every file once, and the held-out part the
// files whose key (`key_of(file)`) InHoldoutPart holds out.
void ExpectSplit(const DatasetSpec& spec, const std::vector<std::string>& all_keys,
                 const std::function<std::string(const std::string&)>& file_of) {
  const std::vector<std::string> train = EpochKeys(Part(spec, HoldoutPart::kTraining));
  const std::vector<std::string> held = EpochKeys(Part(spec, HoldoutPart::kHeldOut));
  std::set<std::string> expected_held, everything;
  for (const std::string& k : all_keys) {
    everything.insert(file_of(k));
    if (InHoldoutPart(k, kFraction, HoldoutPart::kHeldOut)) expected_held.insert(file_of(k));
  }
  ASSERT_GT(expected_held.size(), 0u);
  ASSERT_LT(expected_held.size(), all_keys.size());
  EXPECT_EQ(std::set<std::string>(held.begin(), held.end()), expected_held);
  EXPECT_EQ(held.size(), expected_held.size()) << "a held-out sample came twice";
  std::multiset<std::string> both(train.begin(), train.end());
  both.insert(held.begin(), held.end());
  EXPECT_EQ(both.size(), all_keys.size());
  EXPECT_EQ(std::set<std::string>(both.begin(), both.end()), everything);
  for (const std::string& f : held) EXPECT_EQ(both.count(f), 1u) << f << " is in both parts";
}

TEST(HoldoutSelectTest, ImageFolderPartsAreDisjointAndCoverTheData) {
  const std::string root = testing::TempDir("holdout_folder");
  const std::vector<std::string> keys = WriteFolder(root);
  ExpectSplit(DatasetSpec{"folder", root}, keys, [&](const std::string& k) { return root + "/" + k; });
}

// Keys are paths relative to the folder: the same tree elsewhere holds out the same files.
TEST(HoldoutSelectTest, ImageFolderSplitSurvivesAMove) {
  const std::string a = testing::TempDir("holdout_move_a"), b = testing::TempDir("holdout_move_b/deeper");
  WriteFolder(a);
  WriteFolder(b);
  auto names = [](const std::vector<std::string>& files, const std::string& root) {
    std::set<std::string> out;
    for (const auto& f : files) out.insert(f.substr(root.size()));
    return out;
  };
  EXPECT_EQ(names(EpochKeys(Part(DatasetSpec{"folder", a}, HoldoutPart::kHeldOut)), a),
            names(EpochKeys(Part(DatasetSpec{"folder", b}, HoldoutPart::kHeldOut)), b));
}

TEST(HoldoutSelectTest, JsonlPartsFollowThePathsAsWritten) {
  const std::string dir = testing::TempDir("holdout_jsonl");
  const std::vector<std::string> folder_keys = WriteFolder(dir + "/imgs");
  std::string lines;
  std::vector<std::string> written;
  for (size_t i = 0; i < folder_keys.size(); ++i) {
    written.push_back("imgs/" + folder_keys[i]);
    lines += absl::StrCat("{\"path\": \"", written.back(), "\", \"label\": ", i % 3, "}\n");
  }
  testing::WriteFile(dir + "/data.jsonl", lines);
  DatasetSpec spec{"jsonl", dir + "/data.jsonl"};
  spec.num_classes = 3;
  ExpectSplit(spec, written, [&](const std::string& k) { return dir + "/" + k; });
}

// The subset comes after the split: a quick run's few samples are all training samples.
TEST(HoldoutSelectTest, SubsetIsTakenFromTheTrainingPart) {
  const std::string root = testing::TempDir("holdout_subset");
  WriteFolder(root);
  DatasetSpec spec = Part(DatasetSpec{"folder", root}, HoldoutPart::kTraining);
  spec.subset = 9;
  const std::vector<std::string> files = EpochKeys(spec);
  ASSERT_EQ(files.size(), 9u);
  for (const auto& f : files) {
    EXPECT_TRUE(InHoldoutPart(f.substr(root.size() + 1), kFraction, HoldoutPart::kTraining)) << f;
  }
}

TEST(HoldoutSelectTest, ErrorsNameTheCulprit) {
  // Synthetic data has no keys: it ships its own test split.
  DatasetSpec synthetic{"synthetic", ""};
  synthetic.synthetic_samples = 16;
  synthetic.synthetic_size = 8;
  auto keyless = Loader::Create(Part(synthetic, HoldoutPart::kHeldOut), EvalLike());
  ASSERT_FALSE(keyless.ok());
  EXPECT_NE(keyless.status().message().find("no sample keys"), std::string::npos) << keyless.status();
  EXPECT_NE(keyless.status().message().find("synthetic"), std::string::npos) << keyless.status();

  // A fraction too small for 60 samples leaves the held-out part empty.
  const std::string root = testing::TempDir("holdout_errors");
  WriteFolder(root);
  DatasetSpec tiny = Part(DatasetSpec{"folder", root}, HoldoutPart::kHeldOut);
  tiny.holdout_fraction = 1e-6;
  auto empty = Loader::Create(tiny, EvalLike());
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("held-out part of " + root + " is empty"), std::string::npos)
      << empty.status();
  EXPECT_NE(empty.status().message().find("1e-06"), std::string::npos) << empty.status();

  DatasetSpec bad = Part(DatasetSpec{"folder", root}, HoldoutPart::kTraining);
  bad.holdout_fraction = 1.5;
  auto out_of_range = Loader::Create(bad, EvalLike());
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_NE(out_of_range.status().message().find("(0, 1)"), std::string::npos) << out_of_range.status();
}

}  // namespace
}  // namespace cf::data
