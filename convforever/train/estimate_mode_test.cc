// The trainer binary's estimate mode end to end: recipes' own flags, the JSON report's numbers
// against the data and the model, data that is not present here, calibration, and bad flags.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace {

namespace fs = std::filesystem;

const char kTrainBinary[] = "convforever/train/train";

struct Outcome {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Outcome RunTrainer(std::vector<std::string> args) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = tmp ? tmp : "/tmp";
  const std::string out_path = dir + "/estimate.out", err_path = dir + "/estimate.err";
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
    dup2(::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 2);
    args.insert(args.begin(), kTrainBinary);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(kTrainBinary, argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  Outcome o;
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  o.out = ReadFile(out_path);
  o.err = ReadFile(err_path);
  return o;
}

std::string Recipe(const std::string& name) {
  return "--flagfile=convforever/train/recipes/" + name + ".flags";
}

std::string RunDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return std::string("--run_dir=") + (tmp ? tmp : "/tmp") + "/estimate_run";
}

nlohmann::json Json(const Outcome& o) {
  nlohmann::json j = nlohmann::json::parse(o.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << o.out << o.err;
  return j;
}

TEST(EstimateMode, DefaultRecipeOnA4090) {
  Outcome o = RunTrainer({Recipe("fashion_mnist"), RunDir(), "--estimate", "--gpu=rtx4090",
                          "--format=json"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  nlohmann::json j = Json(o);
  // 60,000 images, batch 128 -> 468 steps per epoch, 10 epochs; one evaluation per epoch of the
  // 10,000 test images.
  EXPECT_EQ(j["train_samples"], 10 * 468 * 128);
  EXPECT_EQ(j["eval_images"], 10 * 10000);
  EXPECT_EQ(j["target"]["gpu"], "rtx4090");
  EXPECT_EQ(j["target"]["precision"], "fp32");
  EXPECT_DOUBLE_EQ(j["target"]["peak_tflops"].get<double>(), 82.6);
  EXPECT_DOUBLE_EQ(j["target"]["utilization"].get<double>(), 0.30);
  ASSERT_EQ(j["rows"].size(), 1u);
  const nlohmann::json& row = j["rows"][0];
  EXPECT_EQ(row["model"], "convnext_nano_fmnist");
  EXPECT_EQ(row["params"], 412714);  // the trainer's own log line for this recipe
  const double gmacs = row["gmacs_per_image"].get<double>();
  EXPECT_NEAR(row["train_pflops"].get<double>(), 6 * gmacs * 1e9 * 10 * 468 * 128 / 1e15, 1e-12);
  const double seconds = (6 * gmacs * 1e9 * 10 * 468 * 128 + 2 * gmacs * 1e9 * 100000) /
                         (82.6e12 * 0.30);
  EXPECT_NEAR(row["gpu_hours"].get<double>(), seconds / 3600, 1e-9);
  EXPECT_NEAR(row["usd"].get<double>(), seconds / 3600 * 0.35, 1e-9);
  EXPECT_EQ(row["fits"], true);
  EXPECT_EQ(row["memory"]["method"], "analytic");
}

TEST(EstimateMode, ScalingStudyDepthsWithoutLocalData) {
  // The recipe's jsonl data is not here: the estimate says to pass --samples.
  Outcome missing = RunTrainer({Recipe("convforever_depth"), RunDir(), "--estimate",
                                "--data_dir=/nonexistent/captions.jsonl"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("--samples=N"), std::string::npos) << missing.err;

  Outcome no_dir = RunTrainer({Recipe("convforever_depth"), RunDir(), "--estimate"});
  EXPECT_EQ(no_dir.exit_code, 2);
  EXPECT_NE(no_dir.err.find("--samples=N"), std::string::npos) << no_dir.err;
  Outcome without_dir = RunTrainer({Recipe("convforever_depth"), RunDir(), "--estimate",
                                    "--samples=3000000", "--format=json"});
  ASSERT_EQ(without_dir.exit_code, 0) << without_dir.err;
  EXPECT_NE(Json(without_dir)["notes"].dump().find("no --data_dir"), std::string::npos);

  Outcome o = RunTrainer({Recipe("convforever_depth"), RunDir(), "--estimate",
                          "--data_dir=/nonexistent/captions.jsonl", "--samples=3000000",
                          "--eval_samples=0", "--depths=30,50,100", "--gpu=rtx4090", "--gpus=4",
                          "--format=json"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  nlohmann::json j = Json(o);
  ASSERT_EQ(j["rows"].size(), 3u);
  EXPECT_EQ(j["target"]["precision"], "bf16");
  EXPECT_EQ(j["train_samples"], 3000000);
  double last_gmacs = 0;
  for (int i = 0; i < 3; ++i) {
    const nlohmann::json& row = j["rows"][i];
    EXPECT_EQ(row["depth"], std::vector<int>({30, 50, 100})[i]);
    EXPECT_GT(row["gmacs_per_image"].get<double>(), last_gmacs);
    last_gmacs = row["gmacs_per_image"].get<double>();
    EXPECT_GT(row["padding"].get<double>(), 0.0);  // 4 GPUs over the default PCIe-class link
    EXPECT_TRUE(row["fits"].is_boolean());
  }
  // 50 categories from the class list; bf16 halves the autocast activations.
  EXPECT_NE(j["notes"].dump().find("synthetic"), std::string::npos) << j["notes"].dump();
}

TEST(EstimateMode, ImageNetRecipeWithoutTheData) {
  // ConvNeXt-T's 300 ImageNet epochs on 8 A100s: the model keeps its 1000 classes, the recipe's
  // EMA doubles the 300 evaluations of 50,000 images.
  Outcome o = RunTrainer({Recipe("imagenet1k_convnext_t"), RunDir(), "--estimate",
                          "--samples=384350100", "--eval_samples=50000", "--gpu=a100_80g",
                          "--gpus=8", "--format=json"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  nlohmann::json j = Json(o);
  const nlohmann::json& row = j["rows"][0];
  EXPECT_EQ(row["params"], 28589128);
  EXPECT_NEAR(row["gmacs_per_image"].get<double>(), 4.4555, 1e-4);  // registry: conv + linear
  EXPECT_EQ(j["eval_images"], 2 * 300 * 50000);
  EXPECT_EQ(j["gradient_accumulation_steps"], 4);
}

TEST(EstimateMode, LocalCalibrationAndJsonFile) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string json_path = std::string(tmp ? tmp : "/tmp") + "/estimate.json";
  Outcome o = RunTrainer({"--data=synthetic", "--synthetic_samples=256", "--image_size=16",
                          "--model=simple_cnn", "--micro_batch_size=8", "--max_steps=20",
                          "--threads=1", RunDir(), "--estimate", "--gpu=local",
                          "--calibrate_steps=2", "--estimate_json=" + json_path});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("throughput: measured on this machine"), std::string::npos) << o.out;
  nlohmann::json j = nlohmann::json::parse(ReadFile(json_path));
  EXPECT_EQ(j["train_samples"], 20 * 8);
  EXPECT_EQ(j["eval_images"], 64);  // synthetic eval set: a quarter of 256
  const nlohmann::json& row = j["rows"][0];
  EXPECT_GT(row["train_hours"].get<double>(), 0.0);
  EXPECT_GT(row["startup_seconds"].get<double>(), 0.0);
  EXPECT_GT(j["target"]["utilization"].get<double>(), 0.0);
  EXPECT_EQ(row["memory"]["method"], "measured (CPU fp32)");
  EXPECT_TRUE(row["fits"].is_null());  // a CPU has no GPU memory to fit
}

TEST(EstimateMode, BadFlagsAreNamed) {
  struct Case {
    std::vector<std::string> flags;
    std::string want;
  } cases[] = {
      {{"--gpu=v100"}, "have: rtx3090"},
      {{"--depths=30"}, "--depths: only --model=convforever"},
      {{"--depths=3x"}, "--depths: expected integers >= 4"},
      {{"--format=xml"}, "--format: want table or json"},
      {{"--gpu_table=/nonexistent/gpus.csv"}, "cannot read the GPU table /nonexistent/gpus.csv"},
      {{"--gpus=0"}, "--gpus must be >= 1"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {Recipe("fashion_mnist"), RunDir(), "--estimate"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    Outcome o = RunTrainer(args);
    EXPECT_EQ(o.exit_code, 2) << c.flags[0] << ": " << o.err;
    EXPECT_NE(o.err.find(c.want), std::string::npos) << c.flags[0] << ": " << o.err;
  }
}

}  // namespace
