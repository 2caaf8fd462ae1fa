// AdamW and SGD(nesterov) against torch.optim over 20 steps (fixture from
// tools/golden/optim_golden.py: two groups, per-step lr, a step where one parameter has no grad),
// both the fused CPU kernel and the foreach path; state save/load giving identical continuation;
// every bad option and bad state rejected by name.
#include <map>

#include "convforever/optim/optimizer.h"
#include "convforever/optim/test_util.h"
#include "gtest/gtest.h"

namespace cf::optim {
namespace {

using testing::MaxRelDiff;
using testing::ReadFixture;
using testing::ToTensor;

struct Problem {
  nlohmann::json fx;
  std::map<std::string, at::Tensor> params;
  std::vector<ParamGroup> groups;
};

std::vector<int64_t> Shape(const nlohmann::json& fx, const std::string& k) {
  return fx["shapes"][k].get<std::vector<int64_t>>();
}

Problem MakeProblem() {
  Problem pr;
  pr.fx = ReadFixture("optim_steps.json");
  for (const auto& [k, v] : pr.fx["init"].items()) {
    pr.params[k] = ToTensor(v, Shape(pr.fx, k)).requires_grad_(true);
  }
  for (size_t g = 0; g < pr.fx["groups"].size(); ++g) {
    ParamGroup group;
    for (const auto& name : pr.fx["groups"][g]) {
      group.names.push_back(name);
      group.params.push_back(pr.params[name]);
    }
    group.weight_decay = pr.fx["weight_decay"][g];
    pr.groups.push_back(group);
  }
  return pr;
}

void SetGrads(Problem& pr, int step) {
  for (auto& [k, p] : pr.params) {
    const bool none = step == pr.fx["no_grad"]["step"].get<int>() && k == pr.fx["no_grad"]["param"];
    p.mutable_grad() = none ? at::Tensor() : ToTensor(pr.fx["grads"][step][k], Shape(pr.fx, k));
  }
}

double LrAt(int step, double base) { return base * (1.0 - step / 40.0); }

OptimizerOptions Opts(const std::string& type, const nlohmann::json& fx, const std::string& impl) {
  OptimizerOptions o;
  o.type = type;
  o.lr = fx["lr"];
  if (type == "adamw") {
    o.beta1 = fx["beta1"];
    o.beta2 = fx["beta2"];
    o.eps = fx["eps"];
  } else {
    o.momentum = fx["momentum"];
    o.nesterov = fx["nesterov"];
  }
  o.implementation = impl;
  return o;
}

class GoldenTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(GoldenTest, MatchesTorchEveryStep) {
  const auto& [type, impl] = GetParam();
  Problem pr = MakeProblem();
  const nlohmann::json& fx = pr.fx[type];
  auto opt = CreateOptimizer(Opts(type, fx, impl), pr.groups);
  ASSERT_TRUE(opt.ok()) << opt.status();
  for (int step = 0; step < pr.fx["steps"].get<int>(); ++step) {
    SetGrads(pr, step);
    (*opt)->Step(LrAt(step, fx["lr"]));
    for (auto& [k, p] : pr.params) {
      const double rel = MaxRelDiff(p.detach(), ToTensor(fx["params"][step][k], Shape(pr.fx, k)));
      ASSERT_LT(rel, 1e-6) << type << "/" << impl << " step " << step << " param " << k;
    }
  }
  // w2 missed one step: its count is one behind.
  EXPECT_EQ((*opt)->step_count(0, 1), 19);
  EXPECT_EQ((*opt)->step_count(0, 0), 20);
}

INSTANTIATE_TEST_SUITE_P(All, GoldenTest,
                         ::testing::Combine(::testing::Values("adamw", "sgd"),
                                            ::testing::Values("auto", "foreach")));

// Save after 10 steps, load into a fresh optimizer over copies of the parameters, continue both:
// bitwise identical.
class ResumeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ResumeTest, IdenticalContinuation) {
  Problem a = MakeProblem();
  OptimizerOptions o;
  o.type = GetParam();
  auto opt_a = CreateOptimizer(o, a.groups);
  ASSERT_TRUE(opt_a.ok()) << opt_a.status();
  for (int step = 0; step < 10; ++step) {
    SetGrads(a, step);
    (*opt_a)->Step(1e-2);
  }
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  nlohmann::json meta;
  ASSERT_TRUE((*opt_a)->SaveState(&tensors, &meta).ok());
  // Round-trip the meta through text, as a checkpoint would.
  meta = nlohmann::json::parse(meta.dump());

  Problem b = MakeProblem();
  for (auto& [k, p] : b.params) p.detach().copy_(a.params[k].detach());
  auto opt_b = CreateOptimizer(o, b.groups);
  ASSERT_TRUE(opt_b.ok());
  ASSERT_TRUE((*opt_b)->LoadState(tensors, meta).ok());
  for (int step = 10; step < 20; ++step) {
    SetGrads(a, step);
    SetGrads(b, step);
    (*opt_a)->Step(1e-2);
    (*opt_b)->Step(1e-2);
  }
  for (auto& [k, p] : a.params) EXPECT_TRUE(at::equal(p.detach(), b.params[k].detach())) << k;
}

INSTANTIATE_TEST_SUITE_P(All, ResumeTest, ::testing::Values("adamw", "sgd", "lion", "lamb"));

TEST(Optimizer, ZeroGradDropsGradients) {
  Problem pr = MakeProblem();
  auto opt = CreateOptimizer(OptimizerOptions{}, pr.groups);
  ASSERT_TRUE(opt.ok());
  SetGrads(pr, 0);
  (*opt)->ZeroGrad();
  for (auto& [k, p] : pr.params) EXPECT_FALSE(p.grad().defined()) << k;
  // A step with no gradients changes nothing and counts nothing.
  at::Tensor before = pr.params["w1"].detach().clone();
  (*opt)->Step(1.0);
  EXPECT_TRUE(at::equal(before, pr.params["w1"].detach()));
  EXPECT_EQ((*opt)->step_count(0, 0), 0);
}

TEST(Optimizer, LrScaleMultipliesLr) {
  // SGD without momentum: p -= lr * lr_scale * g exactly.
  at::Tensor p = at::ones({3}).requires_grad_(true);
  p.mutable_grad() = at::full({3}, 2.0);
  ParamGroup g{{"p"}, {p}, 0.0, 0.25};
  OptimizerOptions o;
  o.type = "sgd";
  o.momentum = 0;
  auto opt = CreateOptimizer(o, {g});
  ASSERT_TRUE(opt.ok());
  (*opt)->Step(0.5);
  EXPECT_TRUE(at::allclose(p.detach(), at::full({3}, 1.0 - 0.5 * 0.25 * 2.0)));
}

// Adam + L2 (decoupled_weight_decay=false, DeepSpeed's adam_w_mode=false), both paths, one step:
// g' = g + wd*p = 0.6; m_hat = 0.6, v_hat = 0.36 -> p = 1 - 0.1 * 0.6 / (0.6 + eps) = 0.9.
TEST(Optimizer, AdamL2BothPaths) {
  for (const char* impl : {"auto", "foreach"}) {
    at::Tensor p = at::ones({4}).requires_grad_(true);
    p.mutable_grad() = at::full({4}, 0.5);
    OptimizerOptions o;
    o.decoupled_weight_decay = false;
    o.implementation = impl;
    auto opt = CreateOptimizer(o, {ParamGroup{{"p"}, {p}, 0.1, 1.0}});
    ASSERT_TRUE(opt.ok());
    (*opt)->Step(0.1);
    EXPECT_TRUE(at::allclose(p.detach(), at::full({4}, 0.9), 1e-6, 1e-6)) << impl << p;
  }
}

TEST(Optimizer, RejectsBadOptions) {
  Problem pr = MakeProblem();
  auto expect_error = [&](OptimizerOptions o, std::vector<ParamGroup> groups, const std::string& word) {
    auto r = CreateOptimizer(o, std::move(groups));
    ASSERT_FALSE(r.ok()) << word;
    EXPECT_NE(std::string(r.status().message()).find(word), std::string::npos) << r.status();
  };
  OptimizerOptions o;
  o.type = "adamax";
  expect_error(o, pr.groups, "adamax");
  o = {};
  o.lr = -1;
  expect_error(o, pr.groups, "lr");
  o = {};
  o.beta2 = 1.0;
  expect_error(o, pr.groups, "beta2");
  o = {};
  o.beta1 = -0.1;
  expect_error(o, pr.groups, "beta1");
  o = {};
  o.type = "sgd";
  o.nesterov = true;
  o.momentum = 0;
  expect_error(o, pr.groups, "nesterov");
  o = {};
  o.implementation = "cuda";
  expect_error(o, pr.groups, "implementation");
  o = {};
  auto groups = pr.groups;
  groups[1].names[0] = groups[0].names[0];
  expect_error(o, groups, "duplicate");
  groups = pr.groups;
  groups[0].weight_decay = -1;
  expect_error(o, groups, "weight_decay");
  groups = pr.groups;
  groups[0].names.pop_back();
  expect_error(o, groups, "names");
  groups = pr.groups;
  groups[0].params[0] = at::Tensor();
  expect_error(o, groups, "undefined");
}

TEST(Optimizer, LoadStateRejectsBadState) {
  Problem pr = MakeProblem();
  auto opt = CreateOptimizer(OptimizerOptions{}, pr.groups);
  ASSERT_TRUE(opt.ok());
  SetGrads(pr, 0);
  (*opt)->Step(1e-3);
  std::vector<std::pair<std::string, at::Tensor>> good;
  nlohmann::json meta;
  ASSERT_TRUE((*opt)->SaveState(&good, &meta).ok());
  auto expect_error = [&](std::vector<std::pair<std::string, at::Tensor>> t, nlohmann::json m,
                          const std::string& word) {
    absl::Status st = (*opt)->LoadState(t, m);
    ASSERT_FALSE(st.ok()) << word;
    EXPECT_NE(std::string(st.message()).find(word), std::string::npos) << st;
  };
  nlohmann::json m = meta;
  m["type"] = "sgd";
  expect_error(good, m, "type");
  m = meta;
  m.erase("steps");
  expect_error(good, m, "steps");
  m = meta;
  m["steps"]["nope"] = 3;
  expect_error(good, m, "nope");
  m = meta;
  m["steps"]["w1"] = -2;
  expect_error(good, m, "w1");
  auto t = good;
  t.pop_back();
  expect_error(t, meta, "missing tensor");
  t = good;
  t[0].second = at::zeros({7});
  expect_error(t, meta, t[0].first);
  t = good;
  t.emplace_back("w1/extra", at::zeros({1}));
  expect_error(t, meta, "w1/extra");
  // The failed loads left the state intact: a good load still works.
  EXPECT_TRUE((*opt)->LoadState(good, meta).ok());
}

}  // namespace
}  // namespace cf::optim
