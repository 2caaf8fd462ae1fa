// Held-out evaluation through the trainer binary, on fixtures in the real formats (a folder tree
// of PNGs, JSONL files of relative paths, JSONL records with URLs served by a loopback HTTP
// server): the evaluation set is never the training data (a held-out fraction by key hash, a
// separate location, or the data's own test split, each named in the log with its size), data
// without a test split and no choice fails at start, a URL evaluation set is downloaded once, two
// ranks evaluate the same set as one, and a class list with comments and stray whitespace means
// the same classes to the model as to the data.
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "convforever/data/decode.h"
#include "convforever/data/holdout.h"
#include "convforever/data/test_util.h"
#include "convforever/http/testing/test_server.h"
#include "convforever/train/testing/trainer_harness.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

namespace fs = std::filesystem;

using testing::Outcome;
using testing::ReadJson;
using testing::RunLaunched;
using testing::RunTrainer;
using testing::TempDir;
using testing::With;

const char* const kClasses[] = {"ant", "bee", "cat"};
constexpr int kPerClass = 20;

// kPerClass 16x16 PNGs per class under root/<class>/; returns the keys "<class>/img_<i>.png".
std::vector<std::string> WriteFolder(const std::string& root) {
  std::vector<std::string> keys;
  for (const char* cls : kClasses) {
    fs::create_directories(root + "/" + cls);
    for (int i = 0; i < kPerClass; ++i) {
      const std::string key = absl::StrCat(cls, "/img_", i, ".png");
      std::ofstream(root + "/" + key, std::ios::binary)
          << *data::EncodePng(data::testing::PatternImage(16, 16, 3, static_cast<int>(keys.size())));
      keys.push_back(key);
    }
  }
  return keys;
}

// --class_list naming kClasses (the trainer takes a JSONL file's class count from it).
std::string ClassListFlag(const std::string& dir) {
  std::ofstream(dir + "/classes.txt") << "ant\nbee\ncat\n";
  return "--class_list=" + dir + "/classes.txt";
}

int64_t HeldOut(const std::vector<std::string>& keys, double fraction) {
  int64_t n = 0;
  for (const auto& k : keys) n += data::InHoldoutPart(k, fraction, data::HoldoutPart::kHeldOut);
  return n;
}

std::vector<std::string> Small(const std::string& run_dir) {
  return {"--model=simple_cnn", "--image_size=16",     "--micro_batch_size=8",  "--num_workers=1",
          "--threads=1",        "--tensorboard=false", "--log_every_steps=1",   "--max_steps=2",
          "--hflip=false",      "--seed=3",            "--run_dir=" + run_dir};
}

// The number in "<prefix>N<suffix>" in `log`, or -1.
int64_t Count(const std::string& log, const std::string& prefix, const std::string& suffix) {
  const size_t at = log.find(prefix);
  if (at == std::string::npos) return -1;
  const size_t end = log.find(suffix, at + prefix.size());
  if (end == std::string::npos) return -1;
  return std::stoll(log.substr(at + prefix.size(), end - at - prefix.size()));
}

TEST(HeldOutEval, FolderWithEvalFractionEvaluatesTheHeldOutKeys) {
  const std::string dir = TempDir("heldout_folder");
  const std::vector<std::string> keys = WriteFolder(dir + "/data");
  const int64_t held = HeldOut(keys, 0.25);
  ASSERT_GT(held, 0);
  Outcome r = RunTrainer(With(Small(dir + "/run"), {"--data=folder", "--data_dir=" + dir + "/data",
                                                    "--eval_fraction=0.25"}),
                         dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Count(r.output, "eval: held-out 25% of " + dir + "/data by key hash, ", " samples"), held) << r.output;
  EXPECT_EQ(Count(r.output, "data: ", " training samples"), static_cast<int64_t>(keys.size()) - held) << r.output;
  EXPECT_NE(r.output.find(absl::StrCat("(", held, " images)")), std::string::npos) << r.output;
}

TEST(HeldOutEval, JsonlWithEvalFractionEvaluatesTheHeldOutPaths) {
  const std::string dir = TempDir("heldout_jsonl");
  std::vector<std::string> written;
  std::string lines;
  int i = 0;
  for (const std::string& k : WriteFolder(dir + "/imgs")) {
    written.push_back("imgs/" + k);
    lines += absl::StrCat("{\"path\": \"imgs/", k, "\", \"label\": ", i++ % 3, "}\n");
  }
  std::ofstream(dir + "/data.jsonl") << lines;
  const int64_t held = HeldOut(written, 0.2);
  Outcome r = RunTrainer(With(Small(dir + "/run"), {"--data=jsonl", "--data_dir=" + dir + "/data.jsonl",
                                                    ClassListFlag(dir), "--eval_fraction=0.2"}),
                         dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Count(r.output, "eval: held-out 20% of " + dir + "/data.jsonl by key hash, ", " samples"), held)
      << r.output;
  EXPECT_EQ(Count(r.output, "data: ", " training samples"), static_cast<int64_t>(written.size()) - held);
}

// JSONL, WebDataset, Parquet and flat folders have no test split: without --eval_data_dir or
// --eval_fraction the trainer refuses to start (it used to evaluate on the training data).
TEST(HeldOutEval, DataWithoutATestSplitNeedsAChoice) {
  const std::string dir = TempDir("heldout_choice");
  WriteFolder(dir + "/imgs");
  std::ofstream(dir + "/train.jsonl") << "{\"path\": \"imgs/ant/img_0.png\", \"label\": 0}\n"
                                      << "{\"path\": \"imgs/bee/img_0.png\", \"label\": 1}\n";
  std::ofstream(dir + "/test.jsonl") << "{\"path\": \"imgs/ant/img_1.png\", \"label\": 0}\n"
                                     << "{\"path\": \"imgs/bee/img_1.png\", \"label\": 1}\n"
                                     << "{\"path\": \"imgs/cat/img_1.png\", \"label\": 2}\n";
  const std::vector<std::string> jsonl = {"--data=jsonl", "--data_dir=" + dir + "/train.jsonl", ClassListFlag(dir),
                                          "--micro_batch_size=2"};
  Outcome none = RunTrainer(With(Small(dir + "/none"), jsonl), dir);
  EXPECT_EQ(none.exit_code, 1) << none.output;
  for (const char* part : {"--data=jsonl has no test split of its own", "--eval_data_dir", "--eval_fraction"}) {
    EXPECT_NE(none.output.find(part), std::string::npos) << part << "\n" << none.output;
  }
  EXPECT_EQ(none.output.find("eval: "), std::string::npos) << none.output;

  Outcome flat = RunTrainer(With(Small(dir + "/flat"), {"--data=folder", "--data_dir=" + dir + "/imgs"}), dir);
  EXPECT_EQ(flat.exit_code, 1) << flat.output;
  EXPECT_NE(flat.output.find("image folder without train/ and val/"), std::string::npos) << flat.output;

  Outcome separate = RunTrainer(With(With(Small(dir + "/separate"), jsonl), {"--eval_data_dir=" + dir + "/test.jsonl"}), dir);
  ASSERT_EQ(separate.exit_code, 0) << separate.output;
  EXPECT_NE(separate.output.find("eval: " + dir + "/test.jsonl (--eval_data_dir), 3 samples"), std::string::npos)
      << separate.output;

  Outcome both = RunTrainer(With(With(Small(dir + "/both"), jsonl),
                                 {"--eval_data_dir=" + dir + "/test.jsonl", "--eval_fraction=0.1"}), dir);
  EXPECT_EQ(both.exit_code, 1) << both.output;
  EXPECT_NE(both.output.find("both choose the evaluation data"), std::string::npos) << both.output;

  // Data with its own test split refuses a held-out fraction.
  Outcome synthetic = RunTrainer(With(Small(dir + "/synthetic"), {"--data=synthetic", "--synthetic_samples=64",
                                                                  "--eval_fraction=0.1"}), dir);
  EXPECT_EQ(synthetic.exit_code, 1) << synthetic.output;
  EXPECT_NE(synthetic.output.find("--data=synthetic has a test split of its own"), std::string::npos)
      << synthetic.output;
  Outcome own = RunTrainer(With(Small(dir + "/own"), {"--data=synthetic", "--synthetic_samples=256"}), dir);
  ASSERT_EQ(own.exit_code, 0) << own.output;
  EXPECT_NE(own.output.find("eval: synthetic test split, 64 samples"), std::string::npos) << own.output;
}

// An image folder laid out as train/ + val/: evaluation reads val/, with train/'s classes.
TEST(HeldOutEval, FolderWithAValSubfolderEvaluatesIt) {
  const std::string dir = TempDir("heldout_split_folder");
  const std::vector<std::string> train = WriteFolder(dir + "/data/train");
  fs::create_directories(dir + "/data/val/bee");
  fs::copy_file(dir + "/data/train/bee/img_0.png", dir + "/data/val/bee/x.png");
  fs::copy_file(dir + "/data/train/bee/img_1.png", dir + "/data/val/bee/y.png");
  Outcome r = RunTrainer(With(Small(dir + "/run"), {"--data=folder", "--data_dir=" + dir + "/data"}), dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("eval: image folder " + dir + "/data/val, 2 samples"), std::string::npos) << r.output;
  EXPECT_EQ(Count(r.output, "data: ", " training samples"), static_cast<int64_t>(train.size())) << r.output;
  EXPECT_NE(r.output.find("3 classes"), std::string::npos) << r.output;
}

// JSONL records with URLs: the held-out images are downloaded at the first evaluation only; later
// evaluations read them from memory. With --eval_cache_mb=0 (the control) every evaluation
// downloads them again.
TEST(HeldOutEval, UrlEvalSetIsDownloadedOnce) {
  auto server_or = http::testing::TestServer::Start();
  ASSERT_TRUE(server_or.ok()) << server_or.status();
  std::unique_ptr<http::testing::TestServer> server = std::move(*server_or);
  const std::string dir = TempDir("heldout_urls");
  const std::vector<std::string> keys = WriteFolder(dir + "/imgs");
  std::map<std::string, std::string> files;
  std::vector<std::string> urls;
  std::string lines;
  for (size_t i = 0; i < keys.size(); ++i) {
    std::ifstream in(dir + "/imgs/" + keys[i], std::ios::binary);
    files["/img/" + keys[i]] = std::string(std::istreambuf_iterator<char>(in), {});
    urls.push_back(server->base_url() + "/img/" + keys[i]);
    lines += absl::StrCat("{\"url\": \"", urls.back(), "\", \"label\": ", i / kPerClass, "}\n");
  }
  std::ofstream(dir + "/data.jsonl") << lines;
  server->Handle("GET", "/img/", [&files](const http::testing::ServerRequest& r) {
    auto it = files.find(r.path);
    return it == files.end() ? http::testing::ServerResponse::Text(404, "no")
                             : http::testing::ServerResponse::Text(200, it->second);
  });
  const std::vector<std::string> args = {"--data=jsonl", "--data_dir=" + dir + "/data.jsonl", ClassListFlag(dir),
                                         "--eval_fraction=0.3", "--eval_every_steps=2", "--max_steps=6"};
  for (const int64_t cache_mb : {1024, 0}) {
    server->ClearRequests();
    Outcome r = RunTrainer(With(With(Small(absl::StrCat(dir, "/run", cache_mb)), args),
                                {absl::StrCat("--eval_cache_mb=", cache_mb)}),
                           dir);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    int evaluations = 0;
    for (size_t at = r.output.find("eval step "); at != std::string::npos; at = r.output.find("eval step ", at + 1)) {
      ++evaluations;
    }
    ASSERT_EQ(evaluations, 3) << r.output;
    std::map<std::string, int> requests;
    for (const auto& q : server->requests()) ++requests[server->base_url() + q.path];
    int held = 0;
    for (const std::string& url : urls) {
      if (!data::InHoldoutPart(url, 0.3, data::HoldoutPart::kHeldOut)) continue;
      ++held;
      EXPECT_EQ(requests[url], cache_mb > 0 ? 1 : evaluations) << url << " with --eval_cache_mb=" << cache_mb;
    }
    EXPECT_GT(held, 0);
  }
}

// --eval_only on one checkpoint: 2 launched Gloo ranks (each evaluating its unpadded half, the
// counts summed) print the figures of 1 rank, over the whole set of 65 images (an odd count,
// which padding to equal shards would have made 66).
TEST(HeldOutEval, TwoRanksEvaluateLikeOne) {
  const std::string dir = TempDir("heldout_two_ranks");
  const std::vector<std::string> base = {"--data=synthetic", "--synthetic_samples=260", "--synthetic_classes=4",
                                         "--image_size=16",  "--micro_batch_size=8",    "--num_workers=1",
                                         "--threads=1",      "--tensorboard=false",     "--model=simple_cnn",
                                         "--run_dir=" + dir + "/run", "--seed=5"};
  Outcome trained = RunTrainer(With(base, {"--max_steps=3"}), dir);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("eval: synthetic test split, 65 samples"), std::string::npos) << trained.output;
  Outcome one = RunTrainer(With(base, {"--eval_only"}), dir);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  std::smatch line;
  ASSERT_TRUE(std::regex_search(one.output, line, std::regex(R"(top-1 \S+%  top-5 \S+%  loss \S+  \(\d+ images\))")))
      << one.output;
  EXPECT_NE(line.str().find("(65 images)"), std::string::npos) << line.str();
  Outcome two = RunLaunched(2, With(base, {"--eval_only"}), dir + "/two.log");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("rank 1 of 2"), std::string::npos) << two.output;
  const size_t first = two.output.find(line.str());
  ASSERT_NE(first, std::string::npos) << line.str() << "\n" << two.output;
  EXPECT_NE(two.output.find(line.str(), first + 1), std::string::npos) << "rank 1 differs:\n" << two.output;
}

// One class-list reader: a comment line, trailing spaces and a tab are not class names for the
// model either (config.json's id2label), and the head has as many outputs as the data classes.
TEST(HeldOutEval, ClassListIsReadTheSameEverywhere) {
  const std::string dir = TempDir("heldout_class_list");
  WriteFolder(dir + "/imgs");
  std::string lines;
  for (int i = 0; i < kPerClass; ++i) {
    lines += absl::StrCat("{\"path\": \"imgs/ant/img_", i, ".png\", \"label\": \"ant\"}\n");
    lines += absl::StrCat("{\"path\": \"imgs/bee/img_", i, ".png\", \"label\": \"bee\"}\n");
  }
  std::ofstream(dir + "/data.jsonl") << lines;
  std::ofstream(dir + "/classes.txt") << "# two of the insects\nant  \nbee\t\n\n";
  Outcome r = RunTrainer(With(Small(dir + "/run"), {"--data=jsonl", "--data_dir=" + dir + "/data.jsonl",
                                                    "--class_list=" + dir + "/classes.txt", "--eval_fraction=0.25"}),
                         dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json config = ReadJson(dir + "/run/checkpoints/step-00000002/config.json");
  EXPECT_EQ(config["label_names"], (nlohmann::json{"ant", "bee"})) << config;
  EXPECT_EQ(config["num_classes"], 2) << config;
  EXPECT_NE(r.output.find(" 2 classes"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace cf::train
