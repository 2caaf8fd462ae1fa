// Loader: determinism across thread counts, exact mid-epoch resume, sharding, skipping of bad
// samples, progressive resizing, mixing, shutdown.
#include "convforever/data/loader.h"

#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "convforever/data/decode.h"
#include "convforever/data/test_util.h"

namespace cf::data {
namespace {

using ::cf::data::testing::PatternImage;
using ::cf::data::testing::TempDir;
using ::cf::data::testing::WriteFile;

DatasetSpec Synthetic(int64_t n = 200, int size = 24) {
  DatasetSpec s{"synthetic", ""};
  s.synthetic_samples = n;
  s.synthetic_classes = 7;
  s.synthetic_size = size;
  return s;
}

LoaderOptions TrainOptions(int workers) {
  LoaderOptions o;
  o.batch_size = 16;
  o.num_workers = workers;
  o.prefetch_batches = 3;
  o.seed = 1234;
  o.transforms.train_crop = "rrc";
  o.transforms.color_jitter = 0.3;
  o.transforms.randaugment_n = 2;
  o.transforms.random_erasing = 0.25;
  o.mix.mixup_alpha = 0.8;
  o.mix.cutmix_alpha = 1.0;
  o.mix.label_smoothing = 0.1;
  o.image_size = 20;
  return o;
}

std::vector<Batch> Drain(Loader& l) {
  std::vector<Batch> out;
  for (;;) {
    auto b = l.Next();
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok() || !b->has_value()) break;
    out.push_back(std::move(**b));
  }
  return out;
}

void ExpectSameBatches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index_in_epoch, b[i].index_in_epoch);
    EXPECT_EQ(a[i].keys, b[i].keys) << "batch " << i;
    EXPECT_TRUE(a[i].images.equal(b[i].images)) << "batch " << i;
    EXPECT_TRUE(a[i].targets.equal(b[i].targets)) << "batch " << i;
  }
}

TEST(LoaderTest, FashionMnistShapesAndGrayToRgb) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  DatasetSpec spec{"idx", dir};
  spec.split = "test";
  LoaderOptions o;
  o.batch_size = 64;
  o.num_workers = 2;
  o.train = false;
  auto l = Loader::Create(spec, o);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ((*l)->batches_per_epoch(), 10000 / 64);
  EXPECT_EQ((*l)->num_classes(), 10);
  ASSERT_TRUE((*l)->StartEpoch(0).ok());
  auto b = (*l)->Next();
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->images.sizes(), (std::vector<int64_t>{64, 1, 28, 28}));
  EXPECT_EQ((*b)->targets.scalar_type(), at::kLong);
  o.channels = 3;
  o.image_size = 32;
  auto rgb = Loader::Create(spec, o);
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  ASSERT_TRUE((*rgb)->StartEpoch(0).ok());
  auto c = (*rgb)->Next();
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->images.sizes(), (std::vector<int64_t>{64, 3, 32, 32}));
}

TEST(LoaderTest, BatchesDoNotDependOnThreadCount) {
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3}) {
    auto l = Loader::Create(Synthetic(), TrainOptions(workers));
    ASSERT_TRUE(l.ok()) << l.status();
    ASSERT_TRUE((*l)->StartEpoch(2).ok());
    runs.push_back(Drain(**l));
  }
  ASSERT_EQ(runs[0].size(), 200u / 16);
  ExpectSameBatches(runs[0], runs[1]);
  ExpectSameBatches(runs[0], runs[2]);
  // Soft targets from mixing + smoothing: [B, K], rows sum to 1.
  const at::Tensor t = runs[0][0].targets;
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{16, 7}));
  EXPECT_TRUE(t.sum(1).allclose(at::ones({16}), 1e-5, 1e-5));
}

TEST(LoaderTest, ExactMidEpochResumeThroughJson) {
  auto full = Loader::Create(Synthetic(), TrainOptions(2));
  ASSERT_TRUE(full.ok());
  ASSERT_TRUE((*full)->StartEpoch(3).ok());
  std::vector<Batch> expected = Drain(**full);

  auto first = Loader::Create(Synthetic(), TrainOptions(2));
  ASSERT_TRUE((*first)->StartEpoch(3).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*first)->Next().ok());
  const std::string json = (*first)->state().ToJson();
  first->reset();  // "crash" with batches still prefetched

  auto state = LoaderState::FromJson(json);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->epoch, 3);
  EXPECT_EQ(state->batches_consumed, 5);
  auto resumed = Loader::Create(Synthetic(), TrainOptions(3));
  ASSERT_TRUE((*resumed)->Restore(*state).ok());
  std::vector<Batch> rest = Drain(**resumed);
  ExpectSameBatches(std::vector<Batch>(expected.begin() + 5, expected.end()), rest);
  // The next epoch differs from this one (fresh shuffle) and starts at batch 0.
  ASSERT_TRUE((*resumed)->StartEpoch(4).ok());
  auto b = (*resumed)->Next();
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->index_in_epoch, 0);
  EXPECT_NE((*b)->keys, expected[0].keys);
}

TEST(LoaderTest, RestoreRejectsAnotherRunsState) {
  auto l = Loader::Create(Synthetic(), TrainOptions(1));
  ASSERT_TRUE(l.ok());
  LoaderState s = (*l)->state();
  s.seed = 99;
  EXPECT_FALSE((*l)->Restore(s).ok());
  s = (*l)->state();
  s.batch_size = 7;
  EXPECT_FALSE((*l)->Restore(s).ok());
  s = (*l)->state();
  s.batches_consumed = 1000;
  EXPECT_FALSE((*l)->Restore(s).ok());
  EXPECT_FALSE(LoaderState::FromJson("{\"epoch\": 1}").ok());
  EXPECT_FALSE(LoaderState::FromJson("not json").ok());
  EXPECT_FALSE((*l)->Next().ok());  // no StartEpoch yet
}

TEST(LoaderTest, RanksSeeEverySampleOnce) {
  std::multiset<std::string> keys;
  int64_t batches[2] = {0, 0};
  for (int rank = 0; rank < 2; ++rank) {
    LoaderOptions o = TrainOptions(2);
    o.mix = MixOptions();
    o.rank = rank;
    o.world_size = 2;
    o.drop_last = false;
    auto l = Loader::Create(Synthetic(100), o);
    ASSERT_TRUE(l.ok());
    ASSERT_TRUE((*l)->StartEpoch(1).ok());
    for (auto& b : Drain(**l)) {
      keys.insert(b.keys.begin(), b.keys.end());
      ++batches[rank];
    }
  }
  EXPECT_EQ(batches[0], batches[1]);
  EXPECT_EQ(keys.size(), 100u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 100u);
}

TEST(LoaderTest, CorruptImagesAreSkippedAndCountedNeverReplaced) {
  const std::string dir = TempDir("loader_corrupt");
  for (int i = 0; i < 6; ++i) {
    WriteFile(absl::StrCat(dir, "/c", i % 2, "/good", i, ".jpg"), *EncodeJpeg(PatternImage(40, 30, 3, i), 90));
  }
  std::string jpg = *EncodeJpeg(PatternImage(40, 30, 3, 9), 90);
  WriteFile(dir + "/c0/truncated.jpg", jpg.substr(0, jpg.size() / 3));
  WriteFile(dir + "/c1/garbage.png", "definitely not a png");
  LoaderOptions o;
  o.batch_size = 4;
  o.num_workers = 2;
  o.train = false;
  o.drop_last = false;
  o.shuffle = false;
  o.image_size = 16;
  auto l = Loader::Create(DatasetSpec{"folder", dir}, o);
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE((*l)->StartEpoch(0).ok());
  std::vector<std::string> keys;
  for (auto& b : Drain(**l)) {
    EXPECT_EQ(b.images.size(0), static_cast<int64_t>(b.keys.size()));
    keys.insert(keys.end(), b.keys.begin(), b.keys.end());
  }
  EXPECT_EQ(keys.size(), 6u);
  for (const auto& k : keys) EXPECT_NE(k.find("good"), std::string::npos) << k;
  Counters c = (*l)->counters();
  EXPECT_EQ(c.skipped["decode_failed"], 2);
  EXPECT_EQ(c.images, 6);
}

// Training decodes only each JPEG's RandomResizedCrop box (decode.h's DecodeImageRegion): the
// batches equal those of the same pixels stored losslessly (PNG, decoded whole), at full size and
// with the draft reduction, and a cut JPEG is still skipped in training.
TEST(LoaderTest, TrainingDecodesOnlyTheCropYetGivesTheWholeDecodesBatches) {
  // The PNGs hold what DecodeImage gives: full size, and under "draft" the DCT-reduced size that
  // a 32-pixel crop asks for (min side 32).
  const std::string jpg_dir = TempDir("loader_region_jpg");
  const std::string png_dirs[2] = {TempDir("loader_region_png_full"), TempDir("loader_region_png_draft")};
  for (int i = 0; i < 12; ++i) {
    const std::string jpg = *EncodeJpeg(PatternImage(90 + 7 * i, 140 - 5 * i, 3, i), 90);
    const std::string name = absl::StrCat("/c", i % 3, "/img", i);
    WriteFile(jpg_dir + name + ".jpg", jpg);
    WriteFile(png_dirs[0] + name + ".png", *EncodePng(*DecodeImage(jpg, 3, 0, name)));
    WriteFile(png_dirs[1] + name + ".png", *EncodePng(*DecodeImage(jpg, 3, 32, name)));
  }
  const std::string cut = *EncodeJpeg(PatternImage(100, 100, 3, 99), 90);
  WriteFile(jpg_dir + "/c0/img_cut.jpg", cut.substr(0, cut.size() * 2 / 3));
  for (const std::string& dir : png_dirs) WriteFile(dir + "/c0/img_cut.png", "not a png either");
  for (const int draft : {0, 1}) {
    const char* decode = draft ? "draft" : "full";
    LoaderOptions o = TrainOptions(2);
    o.transforms.train_decode = decode;
    o.mix = {};
    o.image_size = 32;
    o.drop_last = false;
    std::vector<std::vector<Batch>> runs;
    for (const std::string& dir : {jpg_dir, png_dirs[draft]}) {
      auto l = Loader::Create(DatasetSpec{"folder", dir}, o);
      ASSERT_TRUE(l.ok()) << l.status();
      ASSERT_TRUE((*l)->StartEpoch(3).ok());
      runs.push_back(Drain(**l));
      EXPECT_EQ((*l)->counters().skipped["decode_failed"], 1) << dir;
      EXPECT_EQ((*l)->counters().images, 12) << dir;
    }
    ASSERT_EQ(runs[0].size(), runs[1].size());
    for (size_t b = 0; b < runs[0].size(); ++b) {
      EXPECT_TRUE(runs[0][b].images.equal(runs[1][b].images)) << decode << " batch " << b;
      EXPECT_TRUE(runs[0][b].targets.equal(runs[1][b].targets)) << decode << " batch " << b;
    }
  }
}

TEST(LoaderTest, ProgressiveResizingByEpoch) {
  LoaderOptions o = TrainOptions(2);
  o.progressive = {{0, 16, 0}, {2, 24, 8}};
  auto l = Loader::Create(Synthetic(64), o);
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE((*l)->StartEpoch(1).ok());
  auto b = (*l)->Next();
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->images.sizes(), (std::vector<int64_t>{16, 3, 16, 16}));
  ASSERT_TRUE((*l)->StartEpoch(2).ok());
  EXPECT_EQ((*l)->batches_per_epoch(), 8);
  b = (*l)->Next();
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->images.sizes(), (std::vector<int64_t>{8, 3, 24, 24}));
}

// batches_in_epoch(e) answers for any epoch without starting it: what StartEpoch(e) then gives.
TEST(LoaderTest, BatchesInEpochFollowTheStages) {
  LoaderOptions o = TrainOptions(0);
  o.progressive = {{0, 16, 0}, {2, 24, 8}};
  o.world_size = 2;
  o.rank = 1;
  auto l = Loader::Create(Synthetic(64), o);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ((*l)->batches_in_epoch(0), 2);  // 32 samples per rank in batches of 16
  EXPECT_EQ((*l)->batches_in_epoch(3), 4);  // ... of 8 from epoch 2
  for (int64_t e : {0, 1, 2, 5}) {
    ASSERT_TRUE((*l)->StartEpoch(e).ok());
    EXPECT_EQ((*l)->batches_in_epoch(e), (*l)->batches_per_epoch()) << "epoch " << e;
  }
}

// With yield_empty_batches, a batch whose every sample failed comes back empty in its place (the
// epoch keeps its batch count); without, it is skipped.
TEST(LoaderTest, AllFailedBatchComesBackEmptyWhenAsked) {
  const std::string dir = TempDir("loader_empty_batch");
  for (int i = 0; i < 4; ++i) {
    WriteFile(absl::StrCat(dir, "/c0/", i, ".jpg"), *EncodeJpeg(PatternImage(20, 20, 3, i), 90));
  }
  WriteFile(dir + "/c0/4.png", "not a png");  // sorted: 0 1 2 3 | 4 5 | ...
  WriteFile(dir + "/c0/5.png", "not a png either");
  LoaderOptions o;
  o.batch_size = 2;
  o.num_workers = 1;
  o.train = false;
  o.shuffle = false;
  o.image_size = 16;
  for (bool yield : {false, true}) {
    o.yield_empty_batches = yield;
    auto l = Loader::Create(DatasetSpec{"folder", dir}, o);
    ASSERT_TRUE(l.ok()) << l.status();
    ASSERT_TRUE((*l)->StartEpoch(0).ok());
    std::vector<Batch> batches = Drain(**l);
    ASSERT_EQ(batches.size(), yield ? 3u : 2u);
    if (yield) {
      EXPECT_EQ(batches[2].images.sizes(), (std::vector<int64_t>{0, 3, 16, 16}));
      EXPECT_EQ(batches[2].targets.size(0), 0);
      EXPECT_TRUE(batches[2].keys.empty());
      EXPECT_EQ(batches[2].index_in_epoch, 2);
    }
    EXPECT_EQ((*l)->counters().skipped["decode_failed"], 2);
  }
}

TEST(LoaderTest, NormalizesOncePerBatchWithMeanStd) {
  LoaderOptions o;
  o.batch_size = 4;
  o.num_workers = 0;
  o.train = false;
  o.shuffle = false;
  o.transforms.mean = {0.5f, 0.25f, 0.0f};
  o.transforms.std = {0.5f, 0.25f, 1.0f};
  o.transforms.channels_last = true;
  DatasetSpec spec = Synthetic(8, 12);
  auto src = OpenSource(spec);
  auto rec = (*src)->Fetch({0});
  const Image& img = rec[0].record->image;
  auto l = Loader::Create(spec, o);
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE((*l)->StartEpoch(0).ok());
  auto b = (*l)->Next();
  ASSERT_TRUE(b.ok() && b->has_value());
  const at::Tensor x = (*b)->images;
  EXPECT_TRUE(x.is_contiguous(at::MemoryFormat::ChannelsLast));
  for (int ch = 0; ch < 3; ++ch) {
    const float want = (img.at(3, 5, ch) / 255.0f - o.transforms.mean[ch]) / o.transforms.std[ch];
    EXPECT_NEAR(x[0][ch][3][5].item<float>(), want, 1e-5);
  }
}

TEST(LoaderTest, LabelSmoothingAloneAndMixTargets) {
  at::Tensor y = at::tensor(std::vector<int64_t>{0, 2, 1}, at::kLong);
  at::Tensor t = MixTargets(y, 4, 1.0, 0.1);
  EXPECT_NEAR(t[0][0].item<float>(), 0.925f, 1e-6);
  EXPECT_NEAR(t[0][1].item<float>(), 0.025f, 1e-6);
  at::Tensor m = MixTargets(y, 4, 0.7, 0.0);  // partner of row 0 is row 2 (label 1)
  EXPECT_NEAR(m[0][0].item<float>(), 0.7f, 1e-6);
  EXPECT_NEAR(m[0][1].item<float>(), 0.3f, 1e-6);
  MixOptions mo;
  mo.cutmix_alpha = 1.0;
  Rng rng(5);
  MixDecision d = DrawMix(mo, 32, 32, rng);
  EXPECT_TRUE(d.cutmix);
  EXPECT_NEAR(d.lam, 1.0 - (d.y1 - d.y0) * (d.x1 - d.x0) / 1024.0, 1e-12);
}

TEST(LoaderTest, CleanShutdownAndRestartMidEpoch) {
  for (int i = 0; i < 5; ++i) {
    auto l = Loader::Create(Synthetic(), TrainOptions(3));
    ASSERT_TRUE(l.ok());
    ASSERT_TRUE((*l)->StartEpoch(0).ok());
    ASSERT_TRUE((*l)->Next().ok());
    ASSERT_TRUE((*l)->StartEpoch(1).ok());  // abandons prefetched batches of epoch 0
    auto b = (*l)->Next();
    ASSERT_TRUE(b.ok() && b->has_value());
    EXPECT_EQ((*b)->epoch, 1);
    EXPECT_EQ((*b)->index_in_epoch, 0);
  }  // destroyed with full queues: must not hang
}

TEST(LoaderTest, RejectsBadOptionsAndTooSmallDatasets) {
  LoaderOptions o = TrainOptions(1);
  o.batch_size = 0;
  EXPECT_FALSE(Loader::Create(Synthetic(), o).ok());
  o = TrainOptions(1);
  o.rank = 2;
  EXPECT_FALSE(Loader::Create(Synthetic(), o).ok());
  o = TrainOptions(1);
  o.channels = 2;
  EXPECT_FALSE(Loader::Create(Synthetic(), o).ok());
  o = TrainOptions(1);
  o.batch_size = 500;
  auto small = Loader::Create(Synthetic(), o);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(std::string(small.status().message()).find("no batches"), std::string::npos);
  EXPECT_FALSE(Loader::Create(DatasetSpec{"folder", "/nonexistent/dir"}, TrainOptions(1)).ok());
}

TEST(LoaderTest, RecycledBuffersNeverOverwriteWhatTheConsumerStillHolds) {
  LoaderOptions o = TrainOptions(2);
  o.mix = MixOptions();
  auto l = Loader::Create(Synthetic(), o);
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE((*l)->StartEpoch(0).ok());
  at::Tensor view, copy;
  {
    auto b = (*l)->Next();
    ASSERT_TRUE(b.ok() && b->has_value());
    view = (*b)->images.narrow(0, 0, 2);  // a view keeps the storage alive
    copy = view.clone();
  }
  for (int i = 0; i < 8; ++i) ASSERT_TRUE((*l)->Next().ok());
  EXPECT_TRUE(view.equal(copy));
}

// A source whose samples carry soft labels (as from a distillation or caption-confidence step).
class SoftSource : public Source {
 public:
  int64_t size() const override { return 6; }
  int num_classes() const override { return 3; }
  std::vector<FetchResult> Fetch(absl::Span<const int64_t> indices) override {
    std::vector<FetchResult> out;
    for (int64_t i : indices) {
      Record r;
      r.image = PatternImage(8, 8, 3, i);
      r.label = i % 3;
      r.soft_label = i == 5 ? std::vector<float>{1.0f} : std::vector<float>{0.2f, 0.3f, 0.5f};
      if (i == 4) r.soft_label.clear();  // hard label only: becomes one-hot
      r.key = absl::StrCat("soft:", i);
      out.push_back({std::move(r), ""});
    }
    return out;
  }
};

TEST(LoaderTest, SoftLabelsBecomeSoftTargetsAndBadOnesAreSkipped) {
  LoaderOptions o;
  o.batch_size = 6;
  o.num_workers = 1;
  o.shuffle = false;
  o.drop_last = false;
  o.train = false;
  auto l = Loader::Create(std::make_unique<SoftSource>(), 0, o);
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE((*l)->StartEpoch(0).ok());
  auto b = (*l)->Next();
  ASSERT_TRUE(b.ok() && b->has_value());
  const at::Tensor t = (*b)->targets;
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{5, 3}));
  EXPECT_NEAR(t[0][2].item<float>(), 0.5f, 1e-6);
  EXPECT_NEAR(t[4][1].item<float>(), 1.0f, 1e-6);  // sample 4: hard label 1 as one-hot
  EXPECT_EQ((*l)->counters().skipped["bad_soft_label"], 1);
}

TEST(LoaderTest, SubsetKeepsEvenlyStridedSamples) {
  DatasetSpec spec = Synthetic(100);
  spec.subset = 10;
  LoaderOptions o = TrainOptions(1);
  o.batch_size = 5;
  auto l = Loader::Create(spec, o);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ((*l)->num_samples(), 10);
  ASSERT_TRUE((*l)->StartEpoch(0).ok());
  std::set<std::string> keys;
  for (auto& b : Drain(**l)) keys.insert(b.keys.begin(), b.keys.end());
  EXPECT_EQ(keys.size(), 10u);
  EXPECT_TRUE(keys.count("synthetic:90"));
}

}  // namespace
}  // namespace cf::data
