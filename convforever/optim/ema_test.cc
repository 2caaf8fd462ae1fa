// EMA: the average against hand-computed values, decay warmup, swap-in/out, integer buffers,
// state round trip and bad states.
#include "convforever/optim/ema.h"

#include <cmath>
#include <ATen/core/grad_mode.h>

#include "gtest/gtest.h"

namespace cf::optim {
namespace {

TEST(Ema, AveragesFloatsCopiesIntegers) {
  at::Tensor w = at::zeros({2}).requires_grad_(true);
  at::Tensor count = at::zeros({}, at::kLong);
  EmaOptions o;
  o.decay = 0.9;
  Ema ema({{"w", w}, {"count", count}}, o);
  {
    at::NoGradGuard g;
    w.fill_(1.0);
    count.fill_(5);
  }
  ema.Update(1);  // 0.9 * 0 + 0.1 * 1
  EXPECT_NEAR(ema.shadow()[0][0].item<double>(), 0.1, 1e-7);
  EXPECT_EQ(ema.shadow()[1].item<int64_t>(), 5);
  ema.Update(2);  // 0.9 * 0.1 + 0.1 * 1 = 0.19
  EXPECT_NEAR(ema.shadow()[0][1].item<double>(), 0.19, 1e-7);
  EXPECT_EQ(ema.updates(), 2);
}

TEST(Ema, DecayWarmupLikeTimm) {
  EmaOptions o;
  o.decay = 0.999;
  o.warmup = true;
  Ema ema({}, o);
  EXPECT_EQ(ema.DecayAt(0), 0.0);
  EXPECT_NEAR(ema.DecayAt(1), 1.0 - std::pow(2.0, -2.0 / 3.0), 1e-15);
  EXPECT_NEAR(ema.DecayAt(100), 1.0 - std::pow(101.0, -2.0 / 3.0), 1e-15);
  EXPECT_EQ(ema.DecayAt(100000000), 0.999);  // capped at decay
  o.warmup = false;
  EXPECT_EQ(Ema({}, o).DecayAt(1), 0.999);
}

TEST(Ema, SwapInAndOut) {
  at::Tensor w = at::full({3}, 2.0).requires_grad_(true);
  EmaOptions o;
  o.decay = 0.5;
  Ema ema({{"w", w}}, o);  // shadow = 2
  {
    at::NoGradGuard g;
    w.fill_(4.0);
  }
  ema.Update(1);  // shadow = 3
  {
    auto guard = ema.SwapIn();
    EXPECT_TRUE(at::allclose(w.detach(), at::full({3}, 3.0)));
  }
  EXPECT_TRUE(at::allclose(w.detach(), at::full({3}, 4.0)));
  EXPECT_TRUE(at::allclose(ema.shadow()[0], at::full({3}, 3.0)));
}

TEST(Ema, StateRoundTripAndBadStates) {
  at::Tensor w = at::full({3}, 2.0);
  Ema ema({{"w", w}}, EmaOptions{});
  w.fill_(5.0);
  ema.Update(7);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  nlohmann::json meta;
  ASSERT_TRUE(ema.SaveState(&tensors, &meta).ok());
  Ema other({{"w", at::zeros({3})}}, EmaOptions{});
  ASSERT_TRUE(other.LoadState(tensors, meta).ok());
  EXPECT_TRUE(at::equal(other.shadow()[0], ema.shadow()[0]));
  EXPECT_EQ(other.updates(), 1);

  auto expect_error = [&](std::vector<std::pair<std::string, at::Tensor>> t, nlohmann::json m,
                          const std::string& word) {
    absl::Status st = other.LoadState(t, m);
    ASSERT_FALSE(st.ok()) << word;
    EXPECT_NE(std::string(st.message()).find(word), std::string::npos) << st;
  };
  expect_error(tensors, nlohmann::json::object(), "updates");
  expect_error({}, meta, "missing tensor \"w\"");
  expect_error({{"w", at::zeros({4})}}, meta, "shape");
  expect_error({{"w", at::zeros({3})}, {"v", at::zeros({1})}}, meta, "\"v\"");
}

}  // namespace
}  // namespace cf::optim
