// Our models against torchvision's (fixtures by tools/golden/models_torchvision.py): with the same
// weights (a closed form of each torchvision name, mirrored here by DetTensor and mapped through
// name_map.h), logits and input gradients agree to 1e-4 relative (fp32).
#include <cmath>
#include <cstdlib>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "convforever/models/convnext.h"
#include "convforever/models/name_map.h"
#include "convforever/models/registry.h"
#include "convforever/models/safetensors.h"

namespace cf::models {
namespace {

std::string Testdata(const std::string& file) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  if (srcdir && ws) return std::string(srcdir) + "/" + ws + "/convforever/models/testdata/" + file;
  return "convforever/models/testdata/" + file;
}

int64_t NameKey(const std::string& name) {
  int64_t k = 0;
  for (size_t j = 0; j < name.size(); ++j) k += int64_t(j + 1) * static_cast<unsigned char>(name[j]);
  return k % 9973;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Mirror of det_tensor() in tools/golden/models_torchvision.py (computed in float64, then fp32).
at::Tensor DetTensor(const std::string& name, at::IntArrayRef shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  if (EndsWith(name, "num_batches_tracked")) return at::zeros(shape, at::kLong);
  at::Tensor i = at::arange(n, at::kDouble);
  at::Tensor h = at::sin(i * 12.9898 + double(NameKey(name)) * 78.233) * 43758.5453;
  at::Tensor v = 2.0 * (h - at::floor(h)) - 1.0;
  if (EndsWith(name, "running_var")) {
    v = 1.0 + 0.25 * (v + 1.0);
  } else if (EndsWith(name, "running_mean")) {
    v = 0.1 * v;
  } else if (EndsWith(name, "layer_scale")) {
    v = 0.5 + 0.25 * v;
  } else if (shape.size() >= 2) {
    v = v * std::sqrt(3.0 / double(n / shape[0]));
  } else if (EndsWith(name, "weight")) {
    v = 1.0 + 0.2 * v;
  } else {
    v = 0.1 * v;
  }
  return v.to(at::kFloat).reshape(shape);
}

void LoadDeterministicWeights(Model& model) {
  at::NoGradGuard no_grad;
  for (auto& [name, t] : model.StateDict()) {
    auto tv = MapName(model.family(), name, WeightFormat::kTorchvision);
    ASSERT_TRUE(tv.ok()) << tv.status();
    // torchvision's layer scale is [C, 1, 1]: same values, other shape.
    std::vector<int64_t> shape = t.sizes().vec();
    if (EndsWith(*tv, "layer_scale")) shape = {t.size(0), 1, 1};
    t.copy_(DetTensor(*tv, shape).reshape(t.sizes()));
  }
}

void ExpectClose(const at::Tensor& ours, const at::Tensor& ref, const std::string& what) {
  ASSERT_EQ(ours.sizes(), ref.sizes()) << what;
  const double scale = ref.abs().max().item<double>();
  const double err = (ours - ref).abs().max().item<double>();
  EXPECT_LE(err, 1e-4 * scale) << what << ": max abs error " << err << " vs max |ref| " << scale;
  EXPECT_GT(scale, 1e-3) << what << " is degenerate";
}

void RunGolden(Model& model, const std::string& fixture) {
  auto file = ReadSafetensorsFile(Testdata(fixture));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->metadata["made_by"], "tools/golden/models_torchvision.py");
  std::map<std::string, at::Tensor> t(file->tensors.begin(), file->tensors.end());
  LoadDeterministicWeights(model);
  model.eval();
  at::Tensor x = t.at("input").clone().requires_grad_(true);
  at::Tensor logits = model.forward(x);
  logits.backward(t.at("grad_output"));
  ExpectClose(logits, t.at("logits"), fixture + " logits");
  ExpectClose(x.grad(), t.at("input_grad"), fixture + " input gradient");
  // channels_last gives the same numbers.
  at::Tensor xc = t.at("input").contiguous(at::MemoryFormat::ChannelsLast).requires_grad_(true);
  at::Tensor lc = model.forward(xc);
  lc.backward(t.at("grad_output"));
  ExpectClose(lc, t.at("logits"), fixture + " logits (channels_last)");
  ExpectClose(xc.grad(), t.at("input_grad"), fixture + " input gradient (channels_last)");
}

TEST(GoldenTest, ConvNeXtTinyMatchesTorchvision) {
  auto model = CreateModel("convnext_tiny", ModelOptions());
  ASSERT_TRUE(model.ok());
  RunGolden(**model, "golden_convnext_tiny.safetensors");
}

TEST(GoldenTest, SmallConvNeXtMatchesTorchvision) {
  ConvNeXtOptions o({2, 1, 2}, {16, 32, 48});
  o.num_classes(10);
  ConvNeXt model(o);
  RunGolden(model, "golden_convnext_small_custom.safetensors");
}

TEST(GoldenTest, ResNet50MatchesTorchvision) {
  auto model = CreateModel("resnet50", ModelOptions());
  ASSERT_TRUE(model.ok());
  RunGolden(**model, "golden_resnet50.safetensors");
}

}  // namespace
}  // namespace cf::models
