// OptimizerShardUpdater on one process (a local communicator, so the shard is every element):
// the shard follows the FULL parameters' group rules (a [2, 3] weight is decayed although its
// shard piece is 1-D), its state round-trips with the step counts Adam's bias correction needs,
// an unsharded optimizer state loads into it, and LAMB or foreign state names are errors.
// The multi-rank cases (offsets, stage 2) are end to end in train_test.cc (TrainerZero).
#include "convforever/train/sharded_optimizer.h"

#include <ATen/ATen.h>

#include "convforever/distributed/launch_env.h"
#include "gtest/gtest.h"

namespace cf::train {
namespace {

using Named = std::vector<std::pair<std::string, at::Tensor>>;

Named MakeParams() {
  at::manual_seed(3);
  return {{"fc.weight", at::randn({2, 3}).requires_grad_()},
          {"fc.bias", at::randn({3}).requires_grad_()}};
}

Named Clone(const Named& params) {
  Named out;
  for (const auto& [n, p] : params) out.emplace_back(n, p.detach().clone().requires_grad_());
  return out;
}

std::vector<optim::ParamGroup> Groups(const Named& params) {
  optim::ParamGroupOptions g;
  g.weight_decay = 0.5;  // large, so a wrong group shows
  return optim::MakeParamGroups(params, g);
}

optim::OptimizerOptions AdamW() {
  optim::OptimizerOptions o;
  o.type = "adamw";
  o.lr = 0.1;
  return o;
}

// A fixed gradient per step, the same for the plain and the sharded optimizer.
void Backward(const Named& params, int step) {
  at::Tensor loss = (params[0].second * (step + 1)).pow(2).sum() + params[1].second.sum() * 3;
  loss.backward();
}

struct Sharded {
  std::unique_ptr<distributed::Communicator> comm;
  std::unique_ptr<distributed::ZeroOptimizer> zero;
  OptimizerShardUpdater* updater = nullptr;
};

Sharded MakeSharded(const Named& params, const optim::OptimizerOptions& o) {
  Sharded s;
  auto comm = distributed::Communicator::Create(distributed::LaunchEnv{}, {});
  EXPECT_TRUE(comm.ok()) << comm.status();
  s.comm = std::move(*comm);
  auto zero = CreateShardedOptimizer(s.comm.get(), params, Groups(params), o, distributed::ZeroOptions{1},
                                     &s.updater);
  EXPECT_TRUE(zero.ok()) << zero.status();
  if (zero.ok()) s.zero = std::move(*zero);
  return s;
}

void ShardedSteps(Sharded& s, const Named& params, int from, int to) {
  for (int step = from; step < to; ++step) {
    Backward(params, step);
    ASSERT_TRUE(s.zero->ReduceGradients().ok());
    ASSERT_TRUE(s.zero->ClipGradNorm(0).ok());
    ASSERT_TRUE(s.zero->Step(0.1).ok());
    for (const auto& [n, p] : params) p.mutable_grad().reset();
  }
}

void ExpectClose(const Named& a, const Named& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(at::allclose(a[i].second, b[i].second, 1e-6, 1e-7))
        << a[i].first << " max diff " << (a[i].second - b[i].second).abs().max().item<double>();
  }
}

TEST(ShardedOptimizer, FollowsTheFullParametersGroupsAndMatchesThePlainOptimizer) {
  Named plain = MakeParams();
  Named sharded = Clone(plain);
  auto opt = optim::CreateOptimizer(AdamW(), Groups(plain));
  ASSERT_TRUE(opt.ok()) << opt.status();
  for (int step = 0; step < 3; ++step) {
    Backward(plain, step);
    (*opt)->Step(0.1);
    (*opt)->ZeroGrad();
  }
  Sharded s = MakeSharded(sharded, AdamW());
  ASSERT_NE(s.updater, nullptr);
  ShardedSteps(s, sharded, 0, 3);
  ExpectClose(plain, sharded);
  // The weight is in the decayed group, the bias is not.
  const auto& groups = s.updater->optimizer().groups();
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].names, std::vector<std::string>{"fc.weight"});
  EXPECT_EQ(groups[0].weight_decay, 0.5);
  EXPECT_EQ(groups[1].names, std::vector<std::string>{"fc.bias"});
  EXPECT_EQ(groups[1].weight_decay, 0.0);
}

TEST(ShardedOptimizer, StateRoundTripsWithStepCounts) {
  Named straight = MakeParams();
  Sharded a = MakeSharded(straight, AdamW());
  ShardedSteps(a, straight, 0, 4);

  Named resumed = MakeParams();
  Sharded b = MakeSharded(resumed, AdamW());
  ShardedSteps(b, resumed, 0, 2);
  auto state = b.updater->StateDict();
  ASSERT_FALSE(state.empty());
  EXPECT_EQ(state.back().first, OptimizerShardUpdater::kMetaTensorName);
  Named copy = Clone(resumed);
  Sharded c = MakeSharded(copy, AdamW());
  ASSERT_TRUE(c.updater->LoadStateDict(state).ok());
  ShardedSteps(c, copy, 2, 4);
  ExpectClose(straight, copy);
  EXPECT_EQ(c.updater->optimizer().step_count(0, 0), 4);

  state.pop_back();  // without the meta: clear error
  absl::Status s = c.updater->LoadStateDict(state);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(OptimizerShardUpdater::kMetaTensorName), std::string::npos) << s;
}

TEST(ShardedOptimizer, LoadsAnUnshardedState) {
  Named plain = MakeParams();
  auto opt = optim::CreateOptimizer(AdamW(), Groups(plain));
  ASSERT_TRUE(opt.ok());
  for (int step = 0; step < 2; ++step) {
    Backward(plain, step);
    (*opt)->Step(0.1);
    (*opt)->ZeroGrad();
  }
  Named tensors;
  nlohmann::json meta;
  ASSERT_TRUE((*opt)->SaveState(&tensors, &meta).ok());
  Named sharded = Clone(plain);
  Sharded s = MakeSharded(sharded, AdamW());
  ASSERT_TRUE(s.updater->LoadUnshardedState(tensors, meta).ok());
  for (int step = 2; step < 4; ++step) {
    Backward(plain, step);
    (*opt)->Step(0.1);
    (*opt)->ZeroGrad();
  }
  ShardedSteps(s, sharded, 2, 4);
  ExpectClose(plain, sharded);

  tensors.emplace_back("head.weight/exp_avg", at::zeros({4}));
  absl::Status bad = s.updater->LoadUnshardedState(tensors, meta);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("head.weight/exp_avg"), std::string::npos) << bad;
}

TEST(ShardedOptimizer, LambIsRefused) {
  Named params = MakeParams();
  auto comm = distributed::Communicator::Create(distributed::LaunchEnv{}, {});
  ASSERT_TRUE(comm.ok());
  optim::OptimizerOptions lamb = AdamW();
  lamb.type = "lamb";
  OptimizerShardUpdater* updater = nullptr;
  auto zero = CreateShardedOptimizer(comm->get(), params, Groups(params), lamb, distributed::ZeroOptions{2},
                                     &updater);
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("LAMB cannot run under ZeRO"), std::string::npos)
      << zero.status();
}

}  // namespace
}  // namespace cf::train
