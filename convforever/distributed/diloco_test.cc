// DiLoCo on one rank (the local communicator: the average of one delta is itself): the outer
// Nesterov and plain momentum steps against a hand computation, the fragment schedule, overlap
// keeping the inner step taken meanwhile, and the state surviving a save/load.
#include "convforever/distributed/diloco.h"

#include <ATen/ATen.h>

#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

std::unique_ptr<Communicator> LocalComm() {
  LaunchEnv env;
  absl::StatusOr<std::unique_ptr<Communicator>> c = Communicator::Create(env, CommOptions{});
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

DiLoCo::NamedTensors Params(at::Tensor a, at::Tensor b) { return {{"a", a}, {"b", b}}; }

TEST(DiLoCo, OuterNesterovStepMatchesHandComputation) {
  auto comm = LocalComm();
  at::Tensor a = at::tensor({1.0f, -2.0f}), b = at::tensor({0.5f});
  DiLoCoOptions o;
  o.inner_steps = 3;
  o.outer_lr = 0.7;
  o.outer_momentum = 0.9;
  auto d = DiLoCo::Create(comm.get(), Params(a, b), o);
  ASSERT_TRUE(d.ok()) << d.status();
  // Inner steps move the weights; nothing happens before step 3.
  a.copy_(at::tensor({0.8f, -1.5f}));
  b.fill_(0.4f);
  ASSERT_TRUE((*d)->AfterInnerStep(1).ok());
  ASSERT_TRUE((*d)->AfterInnerStep(2).ok());
  EXPECT_FLOAT_EQ(a[0].item<float>(), 0.8f);
  ASSERT_TRUE((*d)->AfterInnerStep(3).ok());
  // delta = theta_last - theta = (0.2, -0.5, 0.1); m = delta; theta = theta_last - 0.7 (delta + 0.9 m).
  const double lr = 0.7, mu = 0.9;
  double theta[3] = {1.0, -2.0, 0.5}, m[3] = {0, 0, 0};
  const double first[3] = {0.8, -1.5, 0.4};
  for (int i = 0; i < 3; ++i) {
    const double delta = theta[i] - first[i];
    m[i] = mu * m[i] + delta;
    theta[i] -= lr * (delta + mu * m[i]);
  }
  EXPECT_NEAR(a[0].item<double>(), theta[0], 1e-6);
  EXPECT_NEAR(a[1].item<double>(), theta[1], 1e-6);
  EXPECT_NEAR(b[0].item<double>(), theta[2], 1e-6);
  EXPECT_NEAR(theta[0], 1.0 - 0.7 * 0.2 * 1.9, 1e-12);  // the formula, spelled out once
  // Second round: momentum carries over.
  const double second[3] = {theta[0] + 0.1, theta[1] - 0.3, theta[2]};
  a.copy_(at::tensor({float(second[0]), float(second[1])}));
  b.fill_(float(second[2]));
  for (int64_t s = 4; s <= 6; ++s) ASSERT_TRUE((*d)->AfterInnerStep(s).ok());
  for (int i = 0; i < 3; ++i) {
    const double delta = theta[i] - second[i];
    m[i] = mu * m[i] + delta;
    theta[i] -= lr * (delta + mu * m[i]);
  }
  EXPECT_NEAR(a[0].item<double>(), theta[0], 1e-5);
  EXPECT_NEAR(a[1].item<double>(), theta[1], 1e-5);
  EXPECT_NEAR(b[0].item<double>(), theta[2], 1e-5);
}

TEST(DiLoCo, PlainMomentumAndLrOneWithoutMomentumIsTheAverage) {
  auto comm = LocalComm();
  at::Tensor a = at::tensor({1.0f}), b = at::tensor({2.0f});
  DiLoCoOptions o;
  o.inner_steps = 1;
  o.outer_lr = 1.0;
  o.outer_momentum = 0;
  o.outer_nesterov = false;
  auto d = DiLoCo::Create(comm.get(), Params(a, b), o);
  ASSERT_TRUE(d.ok());
  a.fill_(0.25f);
  ASSERT_TRUE((*d)->AfterInnerStep(1).ok());
  EXPECT_FLOAT_EQ(a[0].item<float>(), 0.25f);  // theta_last - 1 * (theta_last - theta) = theta
  // Plain momentum: theta = theta_last - lr * m, m = mu m + delta.
  at::Tensor c = at::tensor({1.0f});
  o.outer_momentum = 0.5;
  o.outer_lr = 0.1;
  auto e = DiLoCo::Create(comm.get(), {{"c", c}}, o);
  ASSERT_TRUE(e.ok());
  c.fill_(0.0f);  // delta 1, m 1
  ASSERT_TRUE((*e)->AfterInnerStep(1).ok());
  EXPECT_FLOAT_EQ(c[0].item<float>(), 0.9f);
  c.fill_(0.9f);  // delta 0, m 0.5
  ASSERT_TRUE((*e)->AfterInnerStep(2).ok());
  EXPECT_FLOAT_EQ(c[0].item<float>(), 0.85f);
}

TEST(DiLoCo, FragmentsTakeTurnsOncePerWindow) {
  auto comm = LocalComm();
  std::vector<at::Tensor> ts;
  DiLoCo::NamedTensors params;
  for (int i = 0; i < 6; ++i) {
    ts.push_back(at::zeros({10}));
    params.emplace_back("p" + std::to_string(i), ts.back());
  }
  DiLoCoOptions o;
  o.inner_steps = 5;
  o.fragments = 3;
  auto d = DiLoCo::Create(comm.get(), params, o);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ((*d)->num_fragments(), 3);
  for (int f = 0; f < 3; ++f) EXPECT_EQ((*d)->fragment_numel(f), 20);
  // Offsets (f+1)*5/3 = 1, 3, 5: steps 1, 3, 5, 6, 8, 10, ...
  const int expected[] = {-1, 0, -1, 1, -1, 2, 0, -1, 1, -1, 2};
  for (int64_t s = 0; s <= 10; ++s) EXPECT_EQ((*d)->FragmentDueAt(s), expected[s]) << "step " << s;
  o.fragments = 6;
  EXPECT_FALSE(DiLoCo::Create(comm.get(), params, o).ok());  // F > H
}

// Overlap: fragment launched after step 2 is applied after step 3, keeping step 3's change.
TEST(DiLoCo, OverlapAppliesOneStepLaterAndKeepsThatStep) {
  auto comm = LocalComm();
  at::Tensor a = at::tensor({1.0f});
  DiLoCoOptions o;
  o.inner_steps = 2;
  o.outer_lr = 0.5;
  o.outer_momentum = 0;
  o.outer_nesterov = false;
  o.overlap = true;
  auto d = DiLoCo::Create(comm.get(), {{"a", a}}, o);
  ASSERT_TRUE(d.ok());
  a.fill_(0.0f);                               // delta 1 at step 2
  ASSERT_TRUE((*d)->AfterInnerStep(2).ok());
  EXPECT_FLOAT_EQ(a[0].item<float>(), 0.0f);  // not applied yet
  a.fill_(-0.25f);                             // step 3 moves by -0.25
  ASSERT_TRUE((*d)->AfterInnerStep(3).ok());
  EXPECT_FLOAT_EQ(a[0].item<float>(), 0.5f - 0.25f);  // theta = 1 - 0.5 * 1, plus step 3's move
  // SyncAll at the end: everything applied, nothing pending.
  a.fill_(0.0f);
  ASSERT_TRUE((*d)->AfterInnerStep(4).ok());
  ASSERT_TRUE((*d)->SyncAll(4).ok());
  EXPECT_FLOAT_EQ(a[0].item<float>(), 0.25f);  // theta_last 0.5, delta 0.5, lr 0.5
}

// Save in the middle of an overlapped sync (int8 with error feedback), load into a fresh DiLoCo,
// and both continue identically.
TEST(DiLoCo, StateRoundTripsWithAPendingFragment) {
  auto comm = LocalComm();
  DiLoCoOptions o;
  o.inner_steps = 2;
  o.dtype = WireDtype::kInt8;
  o.int8_chunk = 3;
  o.overlap = true;
  at::manual_seed(3);
  at::Tensor init = at::randn({7});
  at::Tensor a = init.clone(), b = init.clone();
  auto d1 = DiLoCo::Create(comm.get(), {{"w", a}}, o);
  auto d2 = DiLoCo::Create(comm.get(), {{"w", b}}, o);
  ASSERT_TRUE(d1.ok() && d2.ok());
  a.sub_(0.1 * at::randn({7}));
  ASSERT_TRUE((*d1)->AfterInnerStep(1).ok());
  ASSERT_TRUE((*d1)->AfterInnerStep(2).ok());  // launched, pending
  ASSERT_TRUE((*d1)->FinishCommunication().ok());
  DiLoCo::Metadata meta;
  DiLoCo::NamedTensors outer = (*d1)->OuterState(&meta);
  DiLoCo::NamedTensors rank = (*d1)->RankState();
  EXPECT_EQ(meta["diloco_pending_fragment"], "0");
  ASSERT_TRUE((*d2)->LoadOuterState(outer, meta, "test").ok());
  ASSERT_TRUE((*d2)->LoadRankState(rank, "test").ok());
  b.copy_(a);
  for (int64_t s = 3; s <= 6; ++s) {
    at::Tensor step = 0.05 * at::randn({7});
    a.sub_(step);
    b.sub_(step);
    ASSERT_TRUE((*d1)->AfterInnerStep(s).ok());
    ASSERT_TRUE((*d2)->AfterInnerStep(s).ok());
  }
  EXPECT_TRUE(at::equal(a, b)) << a << b;
  EXPECT_FALSE(at::allclose(a, init));
  // A missing tensor is an error naming it.
  outer.pop_back();
  absl::Status bad = (*d2)->LoadOuterState(outer, meta, "x.safetensors");
  EXPECT_NE(bad.message().find("pending/avg"), absl::string_view::npos) << bad;
}

}  // namespace
}  // namespace cf::distributed
