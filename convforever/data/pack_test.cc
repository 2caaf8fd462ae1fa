// pack: any source -> WebDataset tars read back by wds.h and by the real `webdataset`, and ->
// Parquet read back by parquet_source.h and by the real `datasets` (testing/hf_datasets_tool.py).
#include "convforever/data/pack.h"
#include "convforever/data/test_split.h"

#include <atomic>
#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/data/decode.h"
#include "convforever/data/parquet_source.h"
#include "convforever/data/test_util.h"
#include "convforever/data/testing/hf_python.h"
#include "convforever/data/wds.h"

namespace cf::data {
namespace {

namespace fs = std::filesystem;
using ::cf::data::testing::IdxBytes;
using ::cf::data::testing::PatternImage;
using ::cf::data::testing::RunHfTool;
using ::cf::data::testing::TempDir;
using ::cf::data::testing::WriteFile;

// 25 gray 6x5 IDX images with labels i % 10.
std::unique_ptr<Source> IdxSource(const std::string& name) {
  const std::string dir = TempDir(name);
  std::vector<uint8_t> pixels, labels;
  for (int i = 0; i < 25; ++i) {
    for (int p = 0; p < 30; ++p) pixels.push_back(static_cast<uint8_t>((i * 37 + p * 11) % 256));
    labels.push_back(static_cast<uint8_t>(i % 10));
  }
  WriteFile(dir + "/train-images-idx3-ubyte", IdxBytes({25, 6, 5}, pixels));
  WriteFile(dir + "/train-labels-idx1-ubyte", IdxBytes({25}, labels));
  DatasetSpec spec;
  spec.kind = "idx";
  spec.path = dir;
  auto s = OpenSource(spec);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

// An image folder: classes a, b, c with 7 images each, PNG and JPEG mixed.
std::string MakeFolder(const std::string& name) {
  const std::string dir = TempDir(name);
  for (int k = 0; k < 3; ++k) {
    const std::string cls = std::string(1, static_cast<char>('a' + k));
    fs::create_directories(dir + "/" + cls);
    for (int i = 0; i < 7; ++i) {
      const Image img = PatternImage(9 + i, 7 + k, 3, k * 10 + i);
      if (i % 2 == 0) {
        WriteFile(absl::StrCat(dir, "/", cls, "/img", i, ".png"), *EncodePng(img));
      } else {
        WriteFile(absl::StrCat(dir, "/", cls, "/img", i, ".jpg"), *EncodeJpeg(img, 90));
      }
    }
  }
  return dir;
}

std::unique_ptr<Source> FolderSource(const std::string& dir) {
  DatasetSpec spec;
  spec.kind = "folder";
  spec.path = dir;
  auto s = OpenSource(spec);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

// Every record of `source`, fetched at once.
std::vector<Record> AllRecords(Source& source) {
  std::vector<int64_t> idx(source.size());
  for (int64_t i = 0; i < source.size(); ++i) idx[i] = i;
  std::vector<Record> out;
  for (auto& r : source.Fetch(idx)) {
    EXPECT_TRUE(r.record.ok()) << r.record.status();
    if (r.record.ok()) out.push_back(std::move(*r.record));
  }
  return out;
}

// The samples of packed tars, as wds.h streams them.
std::vector<Record> ReadTars(const std::string& dir, const std::vector<std::string>& shards) {
  DatasetSpec spec;
  spec.kind = "wds";
  spec.path = dir;
  spec.class_list_path = dir + "/classes.txt";
  auto wds = WdsSource::Open(spec);
  EXPECT_TRUE(wds.ok()) << wds.status();
  std::vector<Record> out;
  std::map<std::string, int64_t> skipped;
  std::atomic<bool> cancel{false};
  (*wds)->ReadShards(shards, [&](FetchResult r) {
    EXPECT_TRUE(r.record.ok()) << r.record.status();
    if (r.record.ok()) out.push_back(std::move(*r.record));
    return true;
  }, &skipped, cancel);
  EXPECT_TRUE(skipped.empty());
  return out;
}

TEST(PackTest, PixelsToWdsReadBackByOurReaderAndWebdatasetDeterministically) {
  auto source = IdxSource("pack_idx_src");
  ASSERT_NE(source, nullptr);
  const std::vector<Record> want = AllRecords(*source);
  PackOptions o;
  o.out_dir = TempDir("pack_idx_wds");
  o.format = "wds";
  o.shard_size = 10;
  auto summary = Pack(*source, o);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->samples, 25);
  EXPECT_EQ(summary->shards, 3);
  EXPECT_EQ(summary->files, (std::vector<std::string>{o.out_dir + "/train-000000.tar", o.out_dir + "/train-000001.tar",
                                                      o.out_dir + "/train-000002.tar"}));
  int64_t bytes = 0;
  for (const auto& f : summary->files) bytes += fs::file_size(f);
  EXPECT_EQ(summary->bytes, bytes);
  EXPECT_EQ(*ReadFile(o.out_dir + "/classes.txt"), "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n");

  const std::vector<Record> got = ReadTars(o.out_dir, summary->files);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].label, want[i].label) << i;
    auto img = DecodeImage(got[i].encoded, 1, 0, got[i].key);  // PNG: lossless
    ASSERT_TRUE(img.ok()) << img.status();
    EXPECT_EQ(img->pixels, want[i].image.pixels) << got[i].key;
    EXPECT_TRUE(absl::EndsWith(got[i].key, absl::StrFormat("train-%06d.tar:%09d", i / 10, i))) << got[i].key;
  }

  PackOptions again = o;
  again.out_dir = TempDir("pack_idx_wds_again");
  ASSERT_TRUE(Pack(*source, again).ok());
  for (const char* f : {"train-000000.tar", "train-000001.tar", "train-000002.tar"}) {
    EXPECT_TRUE(*ReadFile(o.out_dir + "/" + f) == *ReadFile(again.out_dir + "/" + f)) << f << " differs between runs";
  }

  CF_REQUIRE_VENV_PYTHON();
  std::string out, err;
  ASSERT_EQ(RunHfTool({"read-wds", summary->files[0], summary->files[1], summary->files[2]}, &out, &err), 0) << err;
  const nlohmann::json rows = nlohmann::json::parse(out);
  ASSERT_EQ(rows.size(), got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(rows[i][0], absl::StrFormat("%09d", i));
    EXPECT_EQ(rows[i][1], "png");
    EXPECT_EQ(rows[i][2], absl::BytesToHexString(got[i].encoded));
    EXPECT_EQ(rows[i][3], got[i].label);
  }
}

TEST(PackTest, EncodedFilesToParquetReadBackByteExactByOurSourceAndDatasets) {
  const std::string folder = MakeFolder("pack_folder_src");
  auto source = FolderSource(folder);
  ASSERT_NE(source, nullptr);
  const std::vector<Record> want = AllRecords(*source);
  ASSERT_EQ(want.size(), 21u);
  PackOptions o;
  o.out_dir = TempDir("pack_folder_pq");
  o.format = "parquet";
  o.shard_size = 8;
  o.parquet_row_group_rows = 3;
  auto summary = Pack(*source, o);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->shards, 3);
  EXPECT_EQ(summary->files[2], o.out_dir + "/train/0002.parquet");

  DatasetSpec spec;
  spec.kind = "parquet";
  spec.path = o.out_dir;
  auto back = OpenSource(spec);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)->class_names(), (std::vector<std::string>{"a", "b", "c"}));
  const std::vector<Record> got = AllRecords(**back);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(got[i].encoded == want[i].encoded) << "sample " << i << " (" << want[i].key << ") changed";
    EXPECT_EQ(got[i].label, want[i].label);
  }
  auto first = ParquetImageFile::Open(summary->files[0], {});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)->row_group_rows(), (std::vector<int64_t>{3, 3, 2}));

  CF_REQUIRE_VENV_PYTHON();
  std::string out, err;
  ASSERT_EQ(RunHfTool({"read-parquet", o.out_dir}, &out, &err), 0) << err;
  const nlohmann::json splits = nlohmann::json::parse(out);
  ASSERT_TRUE(splits.contains("train")) << out;
  EXPECT_EQ(splits["train"]["names"], nlohmann::json({"a", "b", "c"}));
  EXPECT_EQ(splits["train"]["image_type"], "Image");
  const auto& rows = splits["train"]["rows"];
  ASSERT_EQ(rows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(rows[i][0], absl::BytesToHexString(want[i].encoded)) << i;
    EXPECT_EQ(rows[i][1], want[i].label) << i;
  }
}

// A packed Hugging Face directory with a test split beside the training one is data with its own
// test split (the trainer evaluates on it); with only the training split it is not.
TEST(PackTest, ParquetDirectoryWithATestSplitHasItsOwnTestSplit) {
  const std::string folder = MakeFolder("pack_split_src");
  auto source = FolderSource(folder);
  ASSERT_NE(source, nullptr);
  PackOptions o;
  o.out_dir = TempDir("pack_split_pq");
  o.format = "parquet";
  ASSERT_TRUE(Pack(*source, o).ok());
  DatasetSpec spec;
  spec.kind = "parquet";
  spec.path = o.out_dir;
  EXPECT_EQ(OwnTestSplit(spec), "");
  o.split = "test";
  ASSERT_TRUE(Pack(*source, o).ok());
  EXPECT_EQ(OwnTestSplit(spec), "parquet test split of " + o.out_dir);
  spec.split = "test";
  auto test = OpenSource(spec);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ((*test)->size(), 21);
}

// Parquet rows have keys ("<file>:<row>"): a folder packed whole, then split by key.
TEST(PackTest, HeldOutAndTrainingPartsPartitionTheSamples) {
  auto folder = FolderSource(MakeFolder("pack_holdout_folder"));
  ASSERT_NE(folder, nullptr);
  PackOptions whole;
  whole.out_dir = TempDir("pack_holdout_src");
  whole.format = "parquet";
  ASSERT_TRUE(Pack(*folder, whole).ok());
  DatasetSpec src_spec;
  src_spec.kind = "parquet";
  src_spec.path = whole.out_dir;
  auto source = OpenSource(src_spec);
  ASSERT_TRUE(source.ok()) << source.status();
  std::multiset<std::string> all;
  for (const Record& r : AllRecords(**source)) all.insert(r.encoded);
  std::multiset<std::string> seen;
  int64_t parts[2] = {0, 0};
  for (int p = 0; p < 2; ++p) {
    PackOptions o;
    o.out_dir = TempDir(absl::StrCat("pack_holdout_", p));
    o.format = "parquet";
    o.holdout_fraction = 0.3;
    o.holdout_part = p == 0 ? HoldoutPart::kTraining : HoldoutPart::kHeldOut;
    auto summary = Pack(**source, o);
    ASSERT_TRUE(summary.ok()) << summary.status();
    parts[p] = summary->samples;
    DatasetSpec spec;
    spec.kind = "parquet";
    spec.path = o.out_dir;
    auto back = OpenSource(spec);
    ASSERT_TRUE(back.ok()) << back.status();
    for (const Record& r : AllRecords(**back)) seen.insert(r.encoded);
  }
  EXPECT_GT(parts[0], 0);
  EXPECT_GT(parts[1], 0);
  EXPECT_EQ(seen, all);  // every sample in exactly one part
}

TEST(PackTest, SubsetIsEvenlyStrided) {
  auto source = IdxSource("pack_subset_src");
  ASSERT_NE(source, nullptr);
  PackOptions o;
  o.out_dir = TempDir("pack_subset");
  o.subset = 5;
  auto summary = Pack(*source, o);
  ASSERT_TRUE(summary.ok()) << summary.status();
  const std::vector<Record> got = ReadTars(o.out_dir, summary->files);
  ASSERT_EQ(got.size(), 5u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].label, (i * 5) % 10);  // source rows 0, 5, 10, 15, 20
}

TEST(PackTest, ErrorsNameTheProblem) {
  auto source = IdxSource("pack_err_src");
  ASSERT_NE(source, nullptr);
  PackOptions o;
  o.out_dir = TempDir("pack_err");
  o.format = "zip";
  auto bad = Pack(*source, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'zip'"), std::string::npos) << bad.status();

  DatasetSpec spec;
  spec.kind = "synthetic";
  spec.synthetic_samples = 8;
  auto synthetic = OpenSource(spec);
  ASSERT_TRUE(synthetic.ok());
  o.format = "wds";
  o.holdout_fraction = 0.5;
  o.holdout_part = HoldoutPart::kHeldOut;
  auto no_keys = Pack(**synthetic, o);
  ASSERT_FALSE(no_keys.ok());
  EXPECT_NE(no_keys.status().message().find("no sample keys"), std::string::npos) << no_keys.status();
}

TEST(PackTest, UstarHeaderChecksumAndFields) {
  const std::string h = UstarHeader("000000001.png", 1234);
  ASSERT_EQ(h.size(), 512u);
  int64_t sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  EXPECT_EQ(std::strtol(h.substr(148, 6).c_str(), nullptr, 8), sum);
  EXPECT_EQ(std::strtol(h.substr(124, 11).c_str(), nullptr, 8), 1234);
  EXPECT_EQ(h.substr(257, 6), std::string("ustar\0", 6));
  EXPECT_EQ(h[156], '0');
}

}  // namespace
}  // namespace cf::data
