// Our GELU against LibTorch's (at::gelu / at::gelu_backward, what torch.nn.GELU() runs, computed in
// float64 as the exact reference: LibTorch 2.11's own float32 kernels are up to 1e-6 off): over a
// dense grid of the range where it matters, large magnitudes, every tail length, autograd, and
// NaN propagation (the trainer's non-finite-loss check relies on it), 1 vs 2 threads; fallbacks
// for other dtypes.
// The kernel tests run once per CPU level (baseline, x86-64-v3, x86-64-v4), each forced; a level
// this CPU cannot run is reported as skipped. A bad CF_CPU_ISA makes the kernels refuse to run.
#include "convforever/models/gelu.h"


#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "convforever/base/cpu_isa.h"
#include "convforever/base/cpu_isa_testing.h"

namespace cf::models {
namespace {

// |ours - ref| <= 1e-6 + 1e-6 |ref|: A&S 7.1.26's 1.5e-7 erf error, scaled by |x| in x * Phi(x).
void ExpectClose(const at::Tensor& got, const at::Tensor& ref, const char* what) {
  at::Tensor excess = (got - ref).abs() - (ref.abs() * 1e-6 + 1e-6);
  const int64_t worst = excess.argmax().item<int64_t>();
  EXPECT_LE(excess.max().item<double>(), 0.0)
      << what << ": at element " << worst << " got " << got.flatten()[worst].item<double>()
      << ", LibTorch " << ref.flatten()[worst].item<double>();
}

// The exact values, through LibTorch in float64, returned in x's dtype.
at::Tensor RefGelu(const at::Tensor& x) { return at::gelu(x.to(at::kDouble)).to(x.scalar_type()); }
at::Tensor RefGeluBackward(const at::Tensor& g, const at::Tensor& x) {
  return at::gelu_backward(g.to(at::kDouble), x.to(at::kDouble)).to(x.scalar_type());
}

at::Tensor Inputs() {
  at::manual_seed(3);
  return at::cat({at::linspace(-12, 12, 200003), at::randn({4096}) * 3, at::randn({77}) * 30,
                  at::tensor({0.0f, -0.0f, 1e-30f, -1e-30f, 50.0f, -50.0f, 1e4f, -1e4f})});
}

class GeluAtLevel : public base::CpuIsaTest {};

TEST_P(GeluAtLevel, ForwardAndBackwardMatchLibTorch) {
  const at::Tensor x = Inputs();
  const at::Tensor g = at::randn_like(x);
  ExpectClose(GeluForward(x), RefGelu(x), "forward");
  ExpectClose(GeluBackward(g, x), RefGeluBackward(g, x), "backward");
}

TEST_P(GeluAtLevel, EveryTailLengthAndShape) {
  for (int64_t n = 1; n <= 40; ++n) {
    const at::Tensor x = at::randn({n}) * 4;
    ExpectClose(GeluForward(x), RefGelu(x), "forward tail");
    ExpectClose(GeluBackward(at::ones_like(x), x), RefGeluBackward(at::ones_like(x), x), "backward tail");
  }
  const at::Tensor nd = at::randn({3, 5, 7, 11}).transpose(1, 3);  // non-contiguous
  ExpectClose(GeluForward(nd), RefGelu(nd), "non-contiguous");
  EXPECT_EQ(GeluForward(nd).sizes(), nd.sizes());
}

TEST_P(GeluAtLevel, ChannelsLastKeepsItsLayout) {
  const at::Tensor x = at::randn({4, 24, 5, 6}).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor y = GeluForward(x);
  EXPECT_TRUE(y.is_contiguous(at::MemoryFormat::ChannelsLast));
  ExpectClose(y, RefGelu(x), "channels_last forward");
  const at::Tensor g = at::randn({4, 24, 5, 6});  // NCHW gradient for a channels_last input
  ExpectClose(GeluBackward(g, x), RefGeluBackward(g, x), "channels_last backward");
  at::Tensor a = x.clone().requires_grad_(true);
  const at::Tensor ga = torch::autograd::grad({Gelu(a)}, {a}, {g})[0];
  ExpectClose(ga, RefGeluBackward(g, x), "channels_last autograd");
}

TEST_P(GeluAtLevel, AutogradMatchesLibTorch) {
  const at::Tensor base = at::randn({64, 48}) * 2;
  const at::Tensor upstream = at::randn({64, 48});
  at::Tensor a = base.clone().requires_grad_(true);
  at::Tensor b = base.clone().requires_grad_(true);
  const at::Tensor ga = torch::autograd::grad({Gelu(a)}, {a}, {upstream})[0];
  const at::Tensor gb = torch::autograd::grad({RefGelu(b)}, {b}, {upstream})[0];
  ExpectClose(ga, gb, "autograd");
}

// The kernels split the elements between LibTorch's threads (at::parallel_for): each element's
// value must not depend on the split, so one and two threads agree bit for bit, on a length that
// is no multiple of the chunk or the vector.
TEST_P(GeluAtLevel, TwoThreadsGiveTheSameValues) {
  const at::Tensor x = Inputs();
  const at::Tensor g = at::randn_like(x);
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const at::Tensor y1 = GeluForward(x), d1 = GeluBackward(g, x);
  at::set_num_threads(2);
  const at::Tensor y2 = GeluForward(x), d2 = GeluBackward(g, x);
  at::set_num_threads(before);
  EXPECT_TRUE(at::equal(y1, y2));
  EXPECT_TRUE(at::equal(d1, d2));
  ExpectClose(y2, RefGelu(x), "forward, 2 threads");
  ExpectClose(d2, RefGeluBackward(g, x), "backward, 2 threads");
}

TEST_P(GeluAtLevel, NanStaysNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const at::Tensor x = at::tensor({1.0f, nan, -2.0f});
  const at::Tensor y = GeluForward(x);
  EXPECT_TRUE(std::isnan(y[1].item<float>()));
  EXPECT_FALSE(std::isnan(y[0].item<float>()));
  EXPECT_TRUE(std::isnan(GeluBackward(at::ones_like(x), x)[1].item<float>()));
  EXPECT_TRUE(std::isinf(GeluForward(at::tensor({INFINITY}))[0].item<float>()));
}

INSTANTIATE_TEST_SUITE_P(Levels, GeluAtLevel, base::AllCpuIsasForTesting(), base::CpuIsaTestName);

// Runs only as the child of BadCpuIsaSettingIsRefused: the kernel's error, or that it ran.
TEST(GeluChild, DISABLED_RunKernel) {
  try {
    const at::Tensor y = GeluForward(at::ones({40}));
    std::printf("RAN[%.6f]\n", y[0].item<double>());
  } catch (const c10::Error& e) {
    std::printf("ERROR[%s]\n", e.what_without_backtrace());
  }
}

// This binary run again with CF_CPU_ISA=`value`; its output.
std::string RunChild(const std::string& value) { return base::RunThisTestWithCpuIsa(value, "GeluChild.*"); }

// The kernels throw the setting's error instead of running some other level.
TEST(Gelu, BadCpuIsaSettingIsRefused) {
  std::string out = RunChild("bogus");
  EXPECT_NE(out.find("ERROR[GELU kernels: CF_CPU_ISA=bogus: not a level"), std::string::npos) << out;
  EXPECT_EQ(out.find("RAN["), std::string::npos) << out;
  out = RunChild("baseline");
  EXPECT_NE(out.find("RAN[0.841345]"), std::string::npos) << out;
  const base::CpuIsa best = base::BestCpuIsa(base::DetectedCpuFeatures());
  if (best == base::CpuIsa::kX86_64_V4) {
    std::printf("this CPU runs every level: no unsupported CF_CPU_ISA to refuse here (cpu_isa_test "
                "checks the refusal on a described CPU)\n");
    return;
  }
  const char* above = base::CpuIsaName(static_cast<base::CpuIsa>(static_cast<int>(best) + 1));
  out = RunChild(above);
  EXPECT_NE(out.find(std::string("ERROR[GELU kernels: CF_CPU_ISA=") + above + ": this CPU cannot run it"),
            std::string::npos)
      << out;
}

TEST(Gelu, OtherDtypesGoToLibTorch) {
  const at::Tensor x = at::randn({100}, at::kDouble);
  EXPECT_TRUE(at::allclose(Gelu(x), RefGelu(x)));
  EXPECT_THROW(GeluForward(x), c10::Error);
  EXPECT_THROW(GeluBackward(at::ones({3}), at::ones({4})), c10::Error);
}

}  // namespace
}  // namespace cf::models
