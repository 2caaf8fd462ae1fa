// CUDA paths of the trainer that only a GPU can exercise (Bazel tag `cuda`; skipped without a
// GPU, a failure then under CF_REQUIRE_CUDA=1, see convforever/base/cuda_test_util.h):
//   * a few optimizer steps of a ConvNeXt on --device=cuda in bf16, channels_last, with pinned
//     batches, through Train() itself, ending in a checkpoint;
//   * fp16 with the dynamic loss scaler: an initial scale far too large must overflow, be skipped
//     and backed off until steps apply, and the checkpoint must hold the reduced scale;
//   * the CUDA generators' state (rng_state.h) captured, encoded, decoded and restored bit for bit.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "convforever/base/cuda_test_util.h"
#include "convforever/train/rng_state.h"
#include "convforever/train/trainer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  fs::path dir = fs::path(root ? root : "/tmp") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// A small ConvNeXt on synthetic 32x32 RGB images: seconds on any GPU.
TrainerOptions SmallCudaRun(const std::string& run_dir) {
  TrainerOptions o;
  o.model = "convnext_nano_fmnist";
  o.data = "synthetic";
  o.synthetic_samples = 512;
  o.synthetic_classes = 10;
  o.image_size = 32;
  o.channels = 3;
  o.micro_batch_size = 32;
  o.max_steps = 6;
  o.num_workers = 2;
  o.device = "cuda";
  o.run_dir = run_dir;
  o.tensorboard = false;
  o.log_every_steps = 1;
  o.seed = 7;
  return o;
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
}

TEST(TrainerCuda, Bf16ChannelsLastStepsAndCheckpoints) {
  CF_SKIP_UNLESS_CUDA();
  TrainerOptions o = SmallCudaRun(TempDir("cuda_bf16"));
  o.precision = "bf16";
  o.channels_last = true;
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps, 6);
  EXPECT_EQ(r->skipped_steps, 0);
  ASSERT_EQ(r->step_losses.size(), 6u);
  for (double loss : r->step_losses) EXPECT_TRUE(std::isfinite(loss)) << loss;
  // ln(10) ~ 2.30 at chance; a diverging run (bad bf16 or channels_last kernels) ends far above.
  EXPECT_LT(r->step_losses.back(), 5.0);
  ASSERT_FALSE(r->checkpoint_dir.empty());
  EXPECT_TRUE(fs::exists(fs::path(r->checkpoint_dir) / "model.safetensors"));
  EXPECT_TRUE(fs::exists(fs::path(r->checkpoint_dir) / "DONE"));
}

TEST(TrainerCuda, Fp16DynamicLossScalerBacksOffAndTrains) {
  CF_SKIP_UNLESS_CUDA();
  TrainerOptions o = SmallCudaRun(TempDir("cuda_fp16"));
  o.precision = "fp16";
  o.max_steps = 16;
  // 2^24 times the loss overflows fp16 gradients (max 65504) at once: the scaler must skip those
  // steps and halve the scale until steps apply.
  o.loss_scale_init = 16777216.0;
  o.max_nonfinite_steps = 16;
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps, 16);
  EXPECT_GE(r->skipped_steps, 1) << "an fp16 scale of 2^24 never overflowed: is autocast on?";
  EXPECT_LE(r->skipped_steps, 12) << "the scaler did not back off far enough to train";
  ASSERT_FALSE(r->step_losses.empty());
  EXPECT_TRUE(std::isfinite(r->step_losses.back()));
  nlohmann::json state = ReadJson(r->checkpoint_dir + "/trainer_state.json");
  ASSERT_TRUE(state.is_object()) << r->checkpoint_dir << "/trainer_state.json";
  ASSERT_TRUE(state.contains("loss_scaler")) << state.dump().substr(0, 500);
  const double scale = state["loss_scaler"]["scale"].get<double>();
  EXPECT_LT(scale, 16777216.0);
  EXPECT_GT(scale, 0.0);
}

std::vector<float> DrawCuda() {
  at::Tensor t = at::cat({at::randn({256}, at::kCUDA), at::rand({256}, at::kCUDA),
                          at::bernoulli(at::full({256}, 0.3, at::kCUDA))});
  t = t.cpu();
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

TEST(RngStateCuda, RestoreReproducesTheSameNumbers) {
  CF_SKIP_UNLESS_CUDA();
  at::manual_seed(1234);
  DrawCuda();  // move away from the seed's initial state (and past the Philox offset 0)
  absl::StatusOr<std::vector<std::string>> states = CaptureTorchCudaRngStates();
  ASSERT_TRUE(states.ok()) << states.status();
  ASSERT_EQ(states->size(), static_cast<size_t>(at::getNumGPUs()));
  const std::vector<float> first = DrawCuda();
  DrawCuda();
  at::manual_seed(99);
  ASSERT_TRUE(RestoreTorchCudaRngStates(*states).ok());
  EXPECT_EQ(DrawCuda(), first);
}

TEST(RngStateCuda, EncodedStateHasCudaSectionsAndRoundTrips) {
  CF_SKIP_UNLESS_CUDA();
  at::manual_seed(5);
  DrawCuda();
  absl::StatusOr<RngState> state = CaptureRngState({});
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_TRUE(state->sections.count("torch/cuda/0")) << "no CUDA generator in the captured state";
  absl::StatusOr<RngState> decoded = DecodeRngState(EncodeRngState(*state));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  const std::vector<float> first = DrawCuda();
  at::manual_seed(6);
  ASSERT_TRUE(RestoreRngState(*decoded, {}).ok());
  EXPECT_EQ(DrawCuda(), first);
}

}  // namespace
}  // namespace cf::train
