// The path users run, one data kind at a time: a recipe's own flags (--flagfile=recipes/*.flags,
// as `tools/cf train --recipe=NAME` passes them) on a fixture in the data's real format, through
// the trainer binary. Only the data location changes (--data where the recipe's kind is not the
// fixture's, --data_dir, --eval_data_dir or --eval_fraction, --class_list, --run_dir) plus a small
// --max_steps, and the few compute overrides a 2-core CPU needs, each listed with its reason
// below. The schedule, resize plan and augmentation stay the recipe's: the fixtures are sized so
// that an epoch is short enough for the recipe's warmup to fit in the small --max_steps.
//
// Each case checks: every step ran (metrics.jsonl), evaluation read the held-out data (the
// trainer's "eval: <what>, N samples" names the test split / --eval_data_dir / held-out fraction
// and N is the held-out count, and the final evaluation covered N images), a checkpoint is
// complete, and --resume=auto with a larger --max_steps continues from it to the new end.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "convforever/data/decode.h"
#include "convforever/data/holdout.h"
#include "convforever/data/pack.h"
#include "convforever/data/source.h"
#include "convforever/data/test_util.h"
#include "convforever/http/testing/test_server.h"
#include "convforever/train/testing/trainer_harness.h"
#include "gtest/gtest.h"

namespace cf::train {
namespace {

namespace fs = std::filesystem;
using data::testing::WriteFile;
using testing::Outcome;
using testing::RunTrainer;
using testing::StepLosses;
using testing::TempDir;
using testing::With;

// Compute-only overrides (a 2-core CPU in a unit test; nothing else of the recipes changes):
//  - convforever_depth: a depth-30 ConvNeXt at 224 px runs a micro-batch of 16 in bf16 at
//    > 20 s per step here; micro-batch 4 in fp32 (bf16 matmuls are emulated on this CPU).
const std::vector<std::string> kDepthCompute = {"--micro_batch_size=4", "--precision=fp32"};
//  - cifar100_vit: micro-batch 128 -> 16 (its 10 warmup epochs need 11 steps).
const std::vector<std::string> kVitCompute = {"--micro_batch_size=16"};
//  - tiny_imagenet_resnet50: micro-batch 128 -> 8 (ResNet-50).
const std::vector<std::string> kResnetCompute = {"--micro_batch_size=8"};

std::string Recipe(const std::string& name) { return "--flagfile=convforever/train/recipes/" + name + ".flags"; }

// One run of the user's path: the recipe, where the data is, and what the log must say.
struct Case {
  std::string name;
  std::string recipe;
  std::vector<std::string> data_flags;     // data location only
  std::vector<std::string> compute_flags;  // from the list above
  std::string eval_what;                   // "eval: <eval_what>, ..."
  int64_t eval_samples = 0;                // the held-out count
  int64_t train_samples = -1;              // "data: N training samples" (-1: not checked)
  int64_t first_steps = 0;                 // --max_steps of the first run
  int64_t resumed_steps = 0;               // --max_steps of the resumed run
  bool streamed_eval = false;              // the eval set's size is known after a pass only
};

std::string Step(int64_t s) { return absl::StrFormat("step-%08d", s); }

void ExpectRun(const Case& c, const Outcome& r, const std::string& run_dir, int64_t steps) {
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(absl::StrCat("finished after ", steps, " steps")), std::string::npos) << r.output;
  const std::string eval_line =
      c.streamed_eval ? absl::StrCat("eval: ", c.eval_what, ", size known after a pass (streamed)")
                      : absl::StrCat("eval: ", c.eval_what, ", ", c.eval_samples, " samples");
  EXPECT_NE(r.output.find(eval_line), std::string::npos) << "want \"" << eval_line << "\" in\n" << r.output;
  // The final evaluation covered the held-out set, whole.
  EXPECT_NE(r.output.find(absl::StrCat("  (", c.eval_samples, " images)")), std::string::npos) << r.output;
  if (c.train_samples >= 0) {
    EXPECT_NE(r.output.find(absl::StrCat("data: ", c.train_samples, " training samples")), std::string::npos)
        << r.output;
  }
  // The recipe's --log_every_steps decides which steps metrics.jsonl has (its multiples and the
  // last): none twice (StepLosses fails on that), none past the end; the progress line shows the
  // last one.
  const std::map<int64_t, double> losses = StepLosses(run_dir);
  ASSERT_FALSE(losses.empty()) << r.output;
  EXPECT_LE(losses.rbegin()->first, steps);
  for (const auto& [step, loss] : losses) EXPECT_TRUE(std::isfinite(loss)) << "step " << step;
  EXPECT_NE(r.output.find(absl::StrCat("train ", steps, "/", steps, " 100.0%")), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(run_dir + "/checkpoints/" + Step(steps) + "/DONE")) << r.output;
}

// The recipe's run to c.first_steps, then --resume=auto to c.resumed_steps.
void RunRecipe(const Case& c, const std::string& dir) {
  const std::string run_dir = dir + "/run";
  const std::vector<std::string> args = With(With({Recipe(c.recipe)}, c.data_flags),
                                             With(c.compute_flags, {"--run_dir=" + run_dir}));
  Outcome first = RunTrainer(With(args, {absl::StrCat("--max_steps=", c.first_steps)}), dir);
  ExpectRun(c, first, run_dir, c.first_steps);
  if (::testing::Test::HasFatalFailure()) return;
  Outcome resumed =
      RunTrainer(With(args, {absl::StrCat("--max_steps=", c.resumed_steps), "--resume=auto"}), dir);
  EXPECT_NE(resumed.output.find(absl::StrCat("resumed at step ", c.first_steps)), std::string::npos)
      << resumed.output;
  ExpectRun(c, resumed, run_dir, c.resumed_steps);
  // The depth-30 model's checkpoints are large: leave no run behind.
  if (!::testing::Test::HasFailure()) fs::remove_all(run_dir);
}

// ---- fixtures ----------------------------------------------------------------------------------

std::string Png(int seed) { return *data::EncodePng(data::testing::PatternImage(24, 24, 3, seed)); }

const std::vector<std::string> kClasses = {"ant", "bee"};

// root/<class>/<name>_<i>.png, `per_class` each.
void WriteClassFolders(const std::string& root, const std::vector<std::string>& classes, int per_class,
                       const std::string& name) {
  for (size_t k = 0; k < classes.size(); ++k) {
    fs::create_directories(root + "/" + classes[k]);
    for (int i = 0; i < per_class; ++i) {
      WriteFile(absl::StrCat(root, "/", classes[k], "/", name, "_", i, ".png"), Png(int(k) * 31 + i));
    }
  }
}

std::string WriteClassList(const std::string& dir) {
  std::string text;
  for (const auto& c : kClasses) text += c + "\n";
  WriteFile(dir + "/classes.txt", text);
  return dir + "/classes.txt";
}

// Keys "<prefix><i><suffix>", i = 0, 1, ... (the prefixes taken in turn), until `train` of them
// fall in the training part of a held-out split by `fraction` and at least `held` in the held-out
// part; *held_out is how many did.
std::vector<std::string> KeysFor(const std::vector<std::string>& prefixes, const std::string& suffix,
                                 double fraction, int64_t train, int64_t held, int64_t* held_out) {
  std::vector<std::string> keys;
  int64_t t = 0, h = 0;
  for (int i = 0; t < train || h < held; ++i) {
    const std::string key = absl::StrCat(prefixes[i % prefixes.size()], i, suffix);
    const bool in_held = data::InHoldoutPart(key, fraction, data::HoldoutPart::kHeldOut);
    if (!in_held && t == train) continue;  // a fifth training sample would make 2 batches of 4
    (in_held ? h : t)++;
    keys.push_back(key);
  }
  *held_out = h;
  return keys;
}

// A loopback server for files in memory, with HTTP Range support (as object stores and the Hub).
void ServeFiles(http::testing::TestServer& server, std::shared_ptr<std::map<std::string, std::string>> files) {
  server.Handle("GET", "/", [files](const http::testing::ServerRequest& r) {
    const std::string path = r.path.substr(0, r.path.find('?'));
    auto it = files->find(path);
    if (it == files->end()) return http::testing::ServerResponse::Text(404, "no " + path);
    const std::string& bytes = it->second;
    const auto range = r.headers.Get("Range");
    if (!range) return http::testing::ServerResponse::Text(200, bytes);
    absl::string_view v = *range;
    int64_t a = 0, b = static_cast<int64_t>(bytes.size()) - 1;
    if (!absl::ConsumePrefix(&v, "bytes=") || v.find('-') == absl::string_view::npos ||
        !absl::SimpleAtoi(v.substr(0, v.find('-')), &a) ||
        (v.find('-') + 1 < v.size() && !absl::SimpleAtoi(v.substr(v.find('-') + 1), &b)) ||
        a >= static_cast<int64_t>(bytes.size()) || a > b) {
      return http::testing::ServerResponse::Text(416, "");
    }
    b = std::min<int64_t>(b, bytes.size() - 1);
    http::testing::ServerResponse resp;
    resp.status = 206;
    resp.body = bytes.substr(a, b - a + 1);
    resp.headers.Set("Content-Range", absl::StrCat("bytes ", a, "-", b, "/", bytes.size()));
    return resp;
  });
}

std::unique_ptr<http::testing::TestServer> StartServer() {
  auto server = http::testing::TestServer::Start();
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

class RecipeDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // WebDataset's counted epoch length is cached under $XDG_CACHE_HOME (inherited by the trainer).
    const std::string cache = TempDir(absl::StrCat("xdg_", ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    setenv("XDG_CACHE_HOME", cache.c_str(), 1);
  }
};

// ---- idx / synthetic: the fashion_mnist recipe -------------------------------------------------

// Fashion-MNIST's four files (gzip IDX, their names) with `train` and `test` 28x28 images.
void WriteFashionMnist(const std::string& dir, int train, int test) {
  for (const auto& [prefix, n] : {std::pair<std::string, int>{"train", train}, {"t10k", test}}) {
    std::vector<uint8_t> pixels(static_cast<size_t>(n) * 28 * 28), labels(n);
    for (int i = 0; i < n; ++i) {
      labels[i] = i % 10;
      for (int p = 0; p < 28 * 28; ++p) pixels[size_t(i) * 784 + p] = uint8_t((p * (labels[i] + 1) + i) % 251);
    }
    data::testing::WriteGzipFile(dir + "/" + prefix + "-images-idx3-ubyte.gz",
                                 data::testing::IdxBytes({n, 28, 28}, pixels));
    data::testing::WriteGzipFile(dir + "/" + prefix + "-labels-idx1-ubyte.gz", data::testing::IdxBytes({n}, labels));
  }
}

// The recipe warms up for 200 steps (cosine): 1,280 images are 10 steps of 128 per epoch, so the
// 201 steps are 20 epochs (as many evaluations and checkpoints), not 201.
TEST_F(RecipeDataTest, FashionMnistIdxFiles) {
  const std::string dir = TempDir("recipe_idx");
  fs::create_directories(dir + "/data");
  WriteFashionMnist(dir + "/data", 1280, 40);
  RunRecipe({.name = "idx",
             .recipe = "fashion_mnist",
             .data_flags = {"--data_dir=" + dir + "/data"},
             .eval_what = "fashion_mnist test split",
             .eval_samples = 40,
             .train_samples = 1280,
             .first_steps = 201,
             .resumed_steps = 203},
            dir);
}

TEST_F(RecipeDataTest, Synthetic) {
  const std::string dir = TempDir("recipe_synthetic");
  // The default 2,048 synthetic samples: 16 steps of 128 per epoch, a quarter as many to test.
  RunRecipe({.name = "synthetic",
             .recipe = "fashion_mnist",
             .data_flags = {"--data=synthetic"},
             .eval_what = "synthetic test split",
             .eval_samples = 512,
             .train_samples = 2048,
             .first_steps = 201,
             .resumed_steps = 203},
            dir);
}

// ---- cifar100 / cifar10: the cifar100_vit recipe -----------------------------------------------

// `n` records of the binary version: [coarse, fine] (CIFAR-100) or [label] (CIFAR-10) + 3,072 bytes.
std::string CifarRecords(int n, bool c100, int seed) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    const int label = (i + seed) % 10;
    if (c100) out.push_back(char(label / 5));
    out.push_back(char(label));
    for (int p = 0; p < 3072; ++p) out.push_back(char((p * (label + 3) + i + seed) % 256));
  }
  return out;
}

// The recipe warms up for 10 epochs: 16 images (one step of the micro-batch 16 override) per
// epoch make 10 warmup steps, so 11 steps leave one after warmup.
TEST_F(RecipeDataTest, Cifar100Binary) {
  const std::string dir = TempDir("recipe_cifar100");
  fs::create_directories(dir + "/data");
  WriteFile(dir + "/data/train.bin", CifarRecords(16, true, 0));
  WriteFile(dir + "/data/test.bin", CifarRecords(6, true, 1));
  RunRecipe({.name = "cifar100",
             .recipe = "cifar100_vit",
             .data_flags = {"--data_dir=" + dir + "/data"},
             .compute_flags = kVitCompute,
             .eval_what = "cifar100 test split",
             .eval_samples = 6,
             .train_samples = 16,
             .first_steps = 11,
             .resumed_steps = 12},
            dir);
}

TEST_F(RecipeDataTest, Cifar10Binary) {
  const std::string dir = TempDir("recipe_cifar10");
  fs::create_directories(dir + "/data");
  for (int b = 1; b <= 5; ++b) WriteFile(absl::StrCat(dir, "/data/data_batch_", b, ".bin"), CifarRecords(4, false, b));
  WriteFile(dir + "/data/test_batch.bin", CifarRecords(5, false, 9));
  RunRecipe({.name = "cifar10",
             .recipe = "cifar100_vit",
             .data_flags = {"--data=cifar10", "--data_dir=" + dir + "/data"},
             .compute_flags = kVitCompute,
             .eval_what = "cifar10 test split",
             .eval_samples = 5,
             .train_samples = 20,
             .first_steps = 11,
             .resumed_steps = 12},
            dir);
}

// ---- imagenet: the tiny_imagenet_resnet50 recipe -----------------------------------------------

// ILSVRC layout: train/<wnid>/*.png, val/*.png with val.txt ("name wnid").
TEST_F(RecipeDataTest, ImageNetFolders) {
  const std::string dir = TempDir("recipe_imagenet");
  const std::string root = dir + "/data";
  const std::vector<std::string> wnids = {"n01440764", "n01443537"};
  WriteClassFolders(root + "/train", wnids, 4, "img");
  fs::create_directories(root + "/val");
  std::string val;
  for (int i = 0; i < 3; ++i) {
    const std::string name = absl::StrCat("ILSVRC2012_val_", i, ".png");
    WriteFile(root + "/val/" + name, Png(100 + i));
    val += name + " " + wnids[i % 2] + "\n";
  }
  WriteFile(root + "/val.txt", val);
  // One-cycle over --max_steps: pct_start 0.25 needs 5 steps for a non-empty warm phase. The
  // progressive resize plan's first stage (64 px, epochs 0-14) covers them.
  RunRecipe({.name = "imagenet",
             .recipe = "tiny_imagenet_resnet50",
             .data_flags = {"--data_dir=" + root},
             .compute_flags = kResnetCompute,
             .eval_what = "imagenet validation split of " + root,
             .eval_samples = 3,
             .train_samples = 8,
             .first_steps = 5,
             .resumed_steps = 6},
            dir);
}

// ---- convforever_depth on every kind it is run with ---------------------------------------------
// The recipe warms up for 5 epochs: each fixture has 4 training images, one step of the
// micro-batch 4 override per epoch, so 6 steps leave one after warmup.

constexpr int64_t kDepthTrain = 4;
constexpr int64_t kDepthFirst = 6, kDepthResumed = 7;

Case DepthCase(const std::string& name, std::vector<std::string> data_flags, std::string eval_what,
               int64_t eval_samples) {
  return {.name = name,
          .recipe = "convforever_depth",
          .data_flags = std::move(data_flags),
          .compute_flags = kDepthCompute,
          .eval_what = std::move(eval_what),
          .eval_samples = eval_samples,
          .train_samples = kDepthTrain,
          .first_steps = kDepthFirst,
          .resumed_steps = kDepthResumed};
}

TEST_F(RecipeDataTest, FolderWithTrainAndValSubfolders) {
  const std::string dir = TempDir("recipe_folder");
  const std::string root = dir + "/data";
  WriteClassFolders(root + "/train", kClasses, 2, "img");
  WriteClassFolders(root + "/val", kClasses, 1, "val");
  RunRecipe(DepthCase("folder", {"--data=folder", "--data_dir=" + root, "--class_list=" + WriteClassList(dir)},
                      "image folder " + root + "/val", 2),
            dir);
}

TEST_F(RecipeDataTest, FlatFolderWithEvalFraction) {
  const std::string dir = TempDir("recipe_flat_folder");
  const std::string root = dir + "/data";
  int64_t held = 0;
  fs::create_directories(root + "/ant");
  fs::create_directories(root + "/bee");
  int seed = 0;
  for (const std::string& key : KeysFor({"ant/img_", "bee/img_"}, ".png", 0.3, kDepthTrain, 2, &held)) {
    WriteFile(root + "/" + key, Png(seed++));
  }
  RunRecipe(DepthCase("flat_folder",
                      {"--data=folder", "--data_dir=" + root, "--eval_fraction=0.3",
                       "--class_list=" + WriteClassList(dir)},
                      "held-out 30% of " + root + " by key hash", held),
            dir);
}

// JSONL records (path or url + label) with the recipe's own 50-category class list.
std::string JsonlLines(const std::vector<std::string>& refs, const std::string& field) {
  std::string lines;
  for (size_t i = 0; i < refs.size(); ++i) {
    lines += absl::StrCat("{\"", field, "\": \"", refs[i], "\", \"label\": ", i % 3, "}\n");
  }
  return lines;
}

TEST_F(RecipeDataTest, JsonlOfPaths) {
  const std::string dir = TempDir("recipe_jsonl");
  int64_t held = 0;
  const std::vector<std::string> keys = KeysFor({"imgs/img_"}, ".png", 0.3, kDepthTrain, 2, &held);
  fs::create_directories(dir + "/imgs");
  for (size_t i = 0; i < keys.size(); ++i) WriteFile(dir + "/" + keys[i], Png(int(i)));
  WriteFile(dir + "/records.jsonl", JsonlLines(keys, "path"));
  RunRecipe(DepthCase("jsonl", {"--data_dir=" + dir + "/records.jsonl", "--eval_fraction=0.3"},
                      "held-out 30% of " + dir + "/records.jsonl by key hash", held),
            dir);
}

TEST_F(RecipeDataTest, JsonlOfUrls) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string dir = TempDir("recipe_jsonl_urls");
  int64_t held = 0;
  const std::vector<std::string> urls =
      KeysFor({server->base_url() + "/img/"}, ".png", 0.3, kDepthTrain, 2, &held);
  auto files = std::make_shared<std::map<std::string, std::string>>();
  for (size_t i = 0; i < urls.size(); ++i) (*files)[urls[i].substr(server->base_url().size())] = Png(int(i));
  ServeFiles(*server, files);
  WriteFile(dir + "/records.jsonl", JsonlLines(urls, "url"));
  RunRecipe(DepthCase("jsonl_urls", {"--data_dir=" + dir + "/records.jsonl", "--eval_fraction=0.3"},
                      "held-out 30% of " + dir + "/records.jsonl by key hash", held),
            dir);
  EXPECT_GT(server->request_count(), 0);
}

// WebDataset: a training shard of kDepthTrain samples and a held-out shard of 2 (PNG + .cls), the
// labels among the recipe's class list.
std::map<std::string, std::string> WdsShards() {
  auto shard = [](const std::string& prefix, int n, int seed) {
    std::vector<std::pair<std::string, std::string>> members;
    for (int i = 0; i < n; ++i) {
      const std::string key = absl::StrFormat("%s%06d", prefix, i);
      members.push_back({key + ".png", Png(seed + i)});
      members.push_back({key + ".cls", absl::StrCat(i % 2)});
    }
    return data::testing::TarBytes(members);
  };
  return {{"/shard-000000.tar", shard("s", kDepthTrain, 0)}, {"/test-000000.tar", shard("t", 2, 50)}};
}

TEST_F(RecipeDataTest, WebDatasetShards) {
  const std::string dir = TempDir("recipe_wds");
  for (const auto& [name, bytes] : WdsShards()) WriteFile(dir + name, bytes);
  RunRecipe(DepthCase("wds",
                      {"--data=wds", "--data_dir=" + dir + "/shard-000000.tar",
                       "--eval_data_dir=" + dir + "/test-000000.tar"},
                      dir + "/test-000000.tar (--eval_data_dir)", 2),
            dir);
}

TEST_F(RecipeDataTest, WebDatasetShardsOverHttp) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string dir = TempDir("recipe_wds_http");
  ServeFiles(*server, std::make_shared<std::map<std::string, std::string>>(WdsShards()));
  const std::string url = server->base_url();
  Case c = DepthCase("wds_http",
                     {"--data=wds", "--data_dir=" + url + "/shard-000000.tar",
                      "--eval_data_dir=" + url + "/test-000000.tar"},
                     url + "/test-000000.tar (--eval_data_dir)", 2);
  RunRecipe(c, dir);
}

// Hugging Face Parquet written by the pack library: <out>/train/0000.parquet (kDepthTrain rows)
// and <out>/test/0000.parquet (2 rows), image bytes + class label.
void WriteParquet(const std::string& dir, const std::string& out) {
  WriteClassFolders(dir + "/src_train", kClasses, 2, "img");
  WriteClassFolders(dir + "/src_test", kClasses, 1, "img");
  for (const std::string split : {"train", "test"}) {
    data::DatasetSpec spec;
    spec.kind = "folder";
    spec.path = dir + "/src_" + split;
    auto source = data::OpenSource(spec);
    ASSERT_TRUE(source.ok()) << source.status();
    data::PackOptions o;
    o.out_dir = out;
    o.format = "parquet";
    o.split = split;
    auto summary = data::Pack(**source, o);
    ASSERT_TRUE(summary.ok()) << summary.status();
  }
}

TEST_F(RecipeDataTest, ParquetDirectoryWithATestSplit) {
  const std::string dir = TempDir("recipe_parquet");
  WriteParquet(dir, dir + "/hf");
  ASSERT_FALSE(HasFatalFailure());
  RunRecipe(DepthCase("parquet",
                      {"--data=parquet", "--data_dir=" + dir + "/hf", "--class_list=" + WriteClassList(dir)},
                      "parquet test split of " + dir + "/hf", 2),
            dir);
}

TEST_F(RecipeDataTest, ParquetFilesOverHttp) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string dir = TempDir("recipe_parquet_http");
  WriteParquet(dir, dir + "/hf");
  ASSERT_FALSE(HasFatalFailure());
  auto files = std::make_shared<std::map<std::string, std::string>>();
  for (const std::string split : {"train", "test"}) {
    (*files)["/" + split + "/0000.parquet"] = testing::ReadFile(dir + "/hf/" + split + "/0000.parquet");
  }
  ServeFiles(*server, files);
  const std::string url = server->base_url();
  RunRecipe(DepthCase("parquet_http",
                      {"--data=parquet", "--data_dir=" + url + "/train/0000.parquet",
                       "--eval_data_dir=" + url + "/test/0000.parquet", "--class_list=" + WriteClassList(dir)},
                      url + "/test/0000.parquet (--eval_data_dir)", 2),
            dir);
}

}  // namespace
}  // namespace cf::train
