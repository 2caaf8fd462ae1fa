// ZeroOptimizer over real processes (Gloo, 127.0.0.1): ZeRO-1 and ZeRO-2 end with the same
// parameters as plain data parallel (AdamW, 20 steps, with accumulation); sharded state saved and
// resumed with the same world size continues exactly; another world size is a clear error.
#include "convforever/distributed/zero_optimizer.h"

#include <cmath>
#include <filesystem>

#include <ATen/ATen.h>

#include "convforever/distributed/multiprocess_harness.h"
#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

using testing::ReadFloats;
using testing::RunRanks;
using testing::TempPath;
constexpr char kWorker[] = "convforever/distributed/dist_test_worker";

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

std::vector<float> Train(const std::string& tag, int world, std::vector<std::string> args) {
  std::string out = TempPath(tag);
  args.push_back("--out=" + out);
  auto results = RunRanks(kWorker, world, args);
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(results[r].exit_code, 0) << tag << " rank " << r << ":\n" << results[r].err;
  }
  std::vector<float> params = ReadFloats(out + ".rank0");
  for (int r = 1; r < world; ++r) {
    EXPECT_LT(MaxAbsDiff(params, ReadFloats(out + ".rank" + std::to_string(r))), 1e-6) << tag;
  }
  return params;
}

TEST(ZeroOptimizer, StagesOneAndTwoMatchDataParallel) {
  std::vector<std::string> common = {"--optimizer=adamw", "--batch=8", "--accum=2", "--steps=20"};
  std::vector<float> dp = Train("dp", 2, common);
  for (const char* stage : {"--zero=1", "--zero=2"}) {
    std::vector<std::string> args = common;
    args.push_back(stage);
    EXPECT_LT(MaxAbsDiff(dp, Train(std::string("zero") + stage[7], 2, args)), 2e-5) << stage;
  }
}

TEST(ZeroOptimizer, ShardedStateResumesWithTheSameWorldSize) {
  std::vector<std::string> common = {"--optimizer=adamw", "--zero=2", "--batch=4"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  std::vector<float> straight = Train("straight", 2, with({"--steps=12"}));
  std::string dir = TempPath("shards");
  std::filesystem::create_directories(dir);
  Train("first_half", 2, with({"--steps=6", "--save_dir=" + dir}));
  ASSERT_TRUE(std::filesystem::exists(dir + "/zero_rank1_of2.pt"));
  std::vector<float> resumed = Train(
      "second_half", 2,
      with({"--steps=6", "--start_step=6", "--load_dir=" + dir,
            "--init_params=" + TempPath("first_half") + ".rank0"}));
  EXPECT_LT(MaxAbsDiff(straight, resumed), 1e-6);

  // Without the optimizer state the resumed run differs: the check above can fail.
  std::vector<float> fresh = Train(
      "fresh_state", 2,
      with({"--steps=6", "--start_step=6", "--init_params=" + TempPath("first_half") + ".rank0"}));
  EXPECT_GT(MaxAbsDiff(straight, fresh), 1e-5);
}

TEST(ZeroOptimizer, ShardedStateOfAnotherWorldSizeIsAClearError) {
  std::vector<std::string> common = {"--optimizer=adamw", "--zero=1", "--batch=4"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  std::string dir = TempPath("shards_of_two");
  std::filesystem::create_directories(dir);
  Train("two_ranks", 2, with({"--steps=1", "--save_dir=" + dir}));
  auto results = RunRanks(kWorker, 1, with({"--steps=1", "--load_dir=" + dir}));
  EXPECT_EQ(results[0].exit_code, 3);
  EXPECT_NE(results[0].err.find("is sharded over 2 ranks but this run has 1"), std::string::npos)
      << results[0].err;
}

TEST(ZeroOptimizer, BadStageIsAnError) {
  auto comm = Communicator::Create(LaunchEnv{}, {});
  ASSERT_TRUE(comm.ok());
  NamedTensors params = {{"w", at::zeros({4}).requires_grad_()}};
  auto sgd = [](const std::vector<ShardParam>& s) { return MakeSgdUpdater(s, {}); };
  auto zero = ZeroOptimizer::Create(comm->get(), params, ZeroOptions{3}, sgd);
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("ZeRO stage 3 is not supported"), std::string::npos);
}

TEST(ZeroOptimizer, OneRankSgdStepIsPlainSgd) {
  auto comm = Communicator::Create(LaunchEnv{}, {});
  ASSERT_TRUE(comm.ok());
  at::Tensor w = at::ones({5}).requires_grad_();
  auto sgd = [](const std::vector<ShardParam>& s) { return MakeSgdUpdater(s, SgdOptions{0.5}); };
  auto zero = ZeroOptimizer::Create(comm->get(), {{"w", w}}, ZeroOptions{2}, sgd);
  ASSERT_TRUE(zero.ok()) << zero.status();
  (w * 2).sum().backward();
  ASSERT_TRUE((*zero)->ReduceGradients().ok());
  EXPECT_FALSE(w.grad().defined());  // stage 2 releases the full gradient
  auto norm = (*zero)->ClipGradNorm(1.0);
  ASSERT_TRUE(norm.ok());
  EXPECT_NEAR(*norm, 2 * std::sqrt(5.0), 1e-6);
  ASSERT_TRUE((*zero)->Step().ok());
  // Clipped gradient 2/(2*sqrt(5)) per element, times lr 0.5.
  EXPECT_TRUE(at::allclose(w, at::full({5}, 1 - 0.5 * 2 / (2 * std::sqrt(5.0))), 1e-5, 1e-6));
}

}  // namespace
}  // namespace cf::distributed
