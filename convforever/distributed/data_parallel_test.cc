// DataParallel: bucket layout in-process; and over real processes (Gloo, 127.0.0.1), 2 ranks
// with per-rank batch B end with the same parameters as 1 rank with batch 2B after 20 SGD steps,
// with and without gradient accumulation, with and without overlap, with a strided (non-contiguous) weight.
#include "convforever/distributed/data_parallel.h"

#include <cmath>

#include <ATen/ATen.h>

#include "convforever/distributed/multiprocess_harness.h"
#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

using testing::ReadFloats;
using testing::RunRanks;
using testing::TempPath;
constexpr char kWorker[] = "convforever/distributed/dist_test_worker";

TEST(DataParallel, BucketsInReverseRegistrationOrderUpToTheCap) {
  auto comm = Communicator::Create(LaunchEnv{}, {});
  ASSERT_TRUE(comm.ok());
  NamedTensors params = {{"a", at::zeros({1024}).requires_grad_()},     // 4 KiB
                         {"b", at::zeros({1024}).requires_grad_()},     // 4 KiB
                         {"frozen", at::zeros({8})},                    // no grad: skipped
                         {"c", at::zeros({3000}).requires_grad_()}};    // 12 KB
  DataParallel dp(comm->get(), params, DataParallelOptions{6.0 / 1024});  // 6 KiB cap
  ASSERT_EQ(dp.num_buckets(), 2);
  EXPECT_EQ(dp.bucket_parameter_names(0), std::vector<std::string>({"c"}));
  EXPECT_EQ(dp.bucket_parameter_names(1), std::vector<std::string>({"b", "a"}));
}

TEST(DataParallel, FirstBucketHasItsOwnCap) {
  auto comm = Communicator::Create(LaunchEnv{}, {});
  ASSERT_TRUE(comm.ok());
  NamedTensors params = {{"a", at::zeros({1024}).requires_grad_()},   // 4 KiB each
                         {"b", at::zeros({1024}).requires_grad_()},
                         {"c", at::zeros({1024}).requires_grad_()},
                         {"d", at::zeros({1024}).requires_grad_()}};
  DataParallelOptions options;
  options.bucket_cap_mb = 12.0 / 1024;
  options.first_bucket_cap_mb = 4.0 / 1024;
  DataParallel dp(comm->get(), params, options);
  ASSERT_EQ(dp.num_buckets(), 2);
  EXPECT_EQ(dp.bucket_parameter_names(0), std::vector<std::string>({"d"}));
  EXPECT_EQ(dp.bucket_parameter_names(1), std::vector<std::string>({"c", "b", "a"}));
}

TEST(DataParallel, OneRankFinishLeavesGradsAlone) {
  auto comm = Communicator::Create(LaunchEnv{}, {});
  ASSERT_TRUE(comm.ok());
  at::Tensor w = at::ones({3}).requires_grad_();
  DataParallel dp(comm->get(), {{"w", w}});
  (w * 2).sum().backward();
  ASSERT_TRUE(dp.FinishGradientSync().ok());
  EXPECT_TRUE(at::allclose(w.grad(), at::full({3}, 2.0f)));
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

// Runs the worker with `world` ranks and returns rank 0's final parameters (checking that every
// rank ended with the same ones).
std::vector<float> Train(const std::string& tag, int world, std::vector<std::string> args) {
  std::string out = TempPath(tag);
  args.push_back("--out=" + out);
  auto results = RunRanks(kWorker, world, args);
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(results[r].exit_code, 0) << tag << " rank " << r << ":\n" << results[r].err;
  }
  std::vector<float> params = ReadFloats(out + ".rank0");
  for (int r = 1; r < world; ++r) {
    EXPECT_LT(MaxAbsDiff(params, ReadFloats(out + ".rank" + std::to_string(r))), 1e-6)
        << tag << ": rank " << r << " diverged from rank 0";
  }
  return params;
}

class DataParallelEquivalence : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_ = new std::vector<float>(Train("ref", 1, {"--batch=16", "--steps=20"}));
    std::vector<float> init = Train("init", 1, {"--batch=16", "--steps=0"});
    // Guards the comparisons below against a run that does not train at all.
    ASSERT_GT(MaxAbsDiff(*reference_, init), 1e-2);
  }
  static std::vector<float>* reference_;
};
std::vector<float>* DataParallelEquivalence::reference_ = nullptr;

TEST_F(DataParallelEquivalence, TwoRanksHalfBatchMatchOneRank) {
  EXPECT_LT(MaxAbsDiff(*reference_, Train("dp", 2, {"--batch=8", "--steps=20"})), 2e-5);
}

TEST_F(DataParallelEquivalence, TwoRanksWithAccumulationMatchOneRank) {
  EXPECT_LT(MaxAbsDiff(*reference_, Train("dp_acc", 2, {"--batch=8", "--accum=2", "--steps=20"})), 2e-5);
}

// A dense parameter that is not contiguous (as channels_last convolutions are): .grad as a view
// into the bucket keeps the parameter's strides (checked by the worker).
TEST_F(DataParallelEquivalence, StridedParameterTwoRanksMatchOneRank) {
  std::vector<float> ref = Train("ref_t", 1, {"--batch=16", "--steps=20", "--transposed_fc"});
  EXPECT_LT(MaxAbsDiff(ref, Train("dp_t", 2, {"--batch=8", "--steps=20", "--transposed_fc"})), 2e-5);
}

TEST_F(DataParallelEquivalence, WithoutOverlapMatchesOneRank) {
  EXPECT_LT(MaxAbsDiff(*reference_, Train("dp_no_overlap", 2, {"--batch=8", "--overlap=false"})), 2e-5);
}

}  // namespace
}  // namespace cf::distributed
