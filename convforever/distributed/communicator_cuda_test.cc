// The NCCL engine behind Communicator on a real GPU, as one rank (CommOptions::
// process_group_for_one_rank): rendezvous through our TCPStore, then every collective the trainer
// and ZeRO use on CUDA tensors. With one rank each result is known exactly (sum/max/min of one
// value is the value), so what is checked is that ProcessGroupNCCL, libnccl and the driver work
// together in this build. Bazel tag `cuda`: skipped without a GPU, a failure then under
// CF_REQUIRE_CUDA=1 (convforever/base/cuda_test_util.h). A Gloo twin runs on any machine.
#include <vector>

#include <ATen/ATen.h>

#include "convforever/base/cuda_test_util.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/multiprocess_harness.h"
#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

// The same one-rank path over Gloo on the CPU: runs everywhere, so the option, the rendezvous
// and this file's setup are checked on machines without a GPU too.
TEST(CommunicatorCuda, GlooOneRankProcessGroupOnRequest) {
  LaunchEnv env;
  env.master_port = testing::FreeLoopbackPort();
  CommOptions options;
  options.backend = "gloo";
  options.process_group_for_one_rank = true;
  options.timeout = absl::Seconds(60);
  auto comm = Communicator::Create(env, options);
  ASSERT_TRUE(comm.ok()) << comm.status();
  EXPECT_EQ((*comm)->backend_name(), "gloo");
  const at::Tensor values = at::arange(10, at::kFloat);
  std::vector<at::Tensor> ts = {values.clone()};
  ASSERT_TRUE((*comm)->AllReduceSum(ts).ok());
  EXPECT_TRUE(at::equal(ts[0], values));
  EXPECT_TRUE((*comm)->Barrier().ok());
}

TEST(CommunicatorCuda, NcclOneRankCollectives) {
  CF_SKIP_UNLESS_CUDA();
  LaunchEnv env;
  env.master_port = testing::FreeLoopbackPort();
  CommOptions options;
  options.backend = "nccl";
  options.cuda = true;
  options.process_group_for_one_rank = true;
  options.timeout = absl::Seconds(60);
  auto comm = Communicator::Create(env, options);
  ASSERT_TRUE(comm.ok()) << comm.status();
  Communicator& c = **comm;
  EXPECT_EQ(c.backend_name(), "nccl");

  const at::Tensor values = at::arange(1000, at::TensorOptions(at::kCUDA).dtype(at::kFloat));
  std::vector<at::Tensor> ts = {values.clone(), values.to(at::kBFloat16)};
  ASSERT_TRUE(c.AllReduceSum(ts).ok());
  EXPECT_TRUE(at::equal(ts[0], values));
  EXPECT_TRUE(at::equal(ts[1], values.to(at::kBFloat16)));
  for (ReduceOp op : {ReduceOp::kMax, ReduceOp::kMin}) {
    std::vector<at::Tensor> one = {values.clone()};
    ASSERT_TRUE(c.AllReduce(one, op).ok());
    EXPECT_TRUE(at::equal(one[0], values));
  }

  at::Tensor async = values.clone();
  AsyncWork work = c.AllReduceAsync(async);
  ASSERT_TRUE(work.Wait().ok());
  EXPECT_TRUE(at::equal(async, values));

  std::vector<at::Tensor> bcast = {values.clone()};
  ASSERT_TRUE(c.Broadcast(bcast, /*root=*/0).ok());
  EXPECT_TRUE(at::equal(bcast[0], values));

  at::Tensor scattered = at::empty_like(values);
  ASSERT_TRUE(c.ReduceScatterSum(values, scattered).ok());
  EXPECT_TRUE(at::equal(scattered, values));
  at::Tensor gathered = at::empty_like(values);
  ASSERT_TRUE(c.AllGather(values, gathered).ok());
  EXPECT_TRUE(at::equal(gathered, values));

  std::vector<double> scalars = {1.5, 42.0};
  ASSERT_TRUE(c.AllReduceScalars(scalars).ok());
  EXPECT_EQ(scalars, (std::vector<double>{1.5, 42.0}));
  EXPECT_TRUE(c.Barrier().ok());
}

}  // namespace
}  // namespace cf::distributed
