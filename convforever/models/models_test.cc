// Registry, shapes, parameter/MAC accounting, options and their errors, drop path, channels_last,
// and activation checkpointing for every model family.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "convforever/models/convnext.h"
#include "convforever/models/layers.h"
#include "convforever/models/registry.h"
#include "convforever/models/resnet.h"

namespace cf::models {
namespace {

std::shared_ptr<Model> Make(const std::string& name, const ModelOptions& o) {
  auto m = CreateModel(name, o);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : nullptr;
}

// A small, fast configuration of each entry (the big ConvNeXts differ from tiny only in numbers,
// which the analytic-count test covers).
ModelOptions Small(const std::string& name) {
  ModelOptions o = DefaultOptions(name);
  o.num_classes = 7;
  if (name.rfind("resnet", 0) == 0 || name.rfind("convnext", 0) == 0 || name == "convforever") {
    o.image_size = 32;
  }
  return o;
}

TEST(RegistryTest, EveryEntryBuildsAndMapsImagesToLogits) {
  for (const std::string& name : ModelNames()) {
    // The big ConvNeXts differ from tiny only in numbers (covered by the analytic-count test).
    if (name == "convnext_large" || name == "convnext_xlarge" || name == "convnext_base" ||
        name == "convnext_small") {
      continue;
    }
    ModelOptions o = Small(name);
    auto model = Make(name, o);
    ASSERT_NE(model, nullptr) << name;
    model->eval();
    at::Tensor x = at::randn({2, o.in_channels, o.image_size, o.image_size});
    at::Tensor y = model->forward(x);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 7})) << name;
    EXPECT_TRUE(at::isfinite(y).all().item<bool>()) << name;
  }
}

TEST(RegistryTest, ParameterCountsMatchThePapers) {
  ModelOptions o;
  EXPECT_EQ(CountParameters(*Make("convnext_tiny", o)), 28589128);
  EXPECT_EQ(CountParameters(*Make("resnet50", o)), 25557032);
  EXPECT_EQ(CountParameters(*Make("resnet18", o)), 11689512);
  EXPECT_EQ(CountParameters(*Make("resnet34", o)), 21797672);
  std::map<std::string, int64_t> listed;
  for (const ModelInfo& m : ListModels()) listed[m.name] = m.params;
  EXPECT_EQ(listed.size(), ModelNames().size());
  // timm's counts for the large variants (analytic here; tiny is cross-checked above).
  EXPECT_EQ(listed["convnext_tiny"], 28589128);
  EXPECT_EQ(listed["convnext_small"], 50223688);
  EXPECT_EQ(listed["convnext_base"], 88591464);
  EXPECT_EQ(listed["convnext_large"], 197767336);
  EXPECT_EQ(listed["convnext_xlarge"], 350196968);
  EXPECT_EQ(listed["resnet50"], 25557032);
}

TEST(RegistryTest, AnalyticConvNeXtCountMatchesTheBuiltModel) {
  for (const std::string name : {"convnext_nano_fmnist", "convforever"}) {
    ModelOptions o = DefaultOptions(name);
    o.depth = 7;
    o.width_multiplier = 0.5;
    auto m = Make(name, o);
    ConvNeXt* c = dynamic_cast<ConvNeXt*>(m.get());
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(ConvNeXtParameterCount(c->options()), CountParameters(*c)) << name;
  }
}

TEST(RegistryTest, ForwardMacsMatchPublishedFigures) {
  ModelOptions o;
  // timm/fvcore: ConvNeXt-T 4.47 GMACs (ours omits the norms: 4.456), ResNet-50 4.09, ResNet-18 1.81.
  EXPECT_NEAR(*ForwardFlops("convnext_tiny", o, 224) / 1e9, 4.46, 0.02);
  EXPECT_NEAR(*ForwardFlops("resnet50", o, 224) / 1e9, 4.09, 0.02);
  EXPECT_NEAR(*ForwardFlops("resnet18", o, 224) / 1e9, 1.81, 0.02);
  // Deep models have a closed form: no construction needed even at depth 4000.
  o.depth = 4000;
  auto deep = ForwardFlops("convforever", o, 224);
  ASSERT_TRUE(deep.ok());
  EXPECT_GT(*deep, 5e11);
}

TEST(RegistryTest, ConvForeverSplitsDepthOverStages) {
  EXPECT_EQ(SplitDepth(30, 4), (std::vector<int64_t>{8, 8, 7, 7}));
  EXPECT_EQ(SplitDepth(4, 4), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(SplitDepth(13, 4), (std::vector<int64_t>{4, 3, 3, 3}));
  ModelOptions o = Small("convforever");
  o.depth = 30;
  auto m = Make("convforever", o);
  ConvNeXt* c = dynamic_cast<ConvNeXt*>(m.get());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->options().depths(), (std::vector<int64_t>{8, 8, 7, 7}));
  EXPECT_EQ(c->options().dims(), (std::vector<int64_t>{96, 192, 384, 768}));
  o.depth = 4;
  o.widths = {8, 16, 24, 32};
  m = Make("convforever", o);
  c = dynamic_cast<ConvNeXt*>(m.get());
  EXPECT_EQ(c->options().dims(), o.widths);
  o.widths.clear();
  o.width_multiplier = 0.5;
  m = Make("convforever", o);
  c = dynamic_cast<ConvNeXt*>(m.get());
  EXPECT_EQ(c->options().dims(), (std::vector<int64_t>{48, 96, 192, 384}));
}

void ExpectInvalid(const std::string& name, const ModelOptions& o, const std::string& fragment) {
  auto m = CreateModel(name, o);
  ASSERT_FALSE(m.ok()) << name << " accepted; expected error with " << fragment;
  EXPECT_NE(std::string(m.status().message()).find(fragment), std::string::npos) << m.status();
}

TEST(RegistryTest, BadOptionsGiveClearErrors) {
  ModelOptions o;
  o.depth = 3;
  ExpectInvalid("convforever", o, "depth must be >= 4");
  ExpectInvalid("convnext_giant", ModelOptions(), "unknown model 'convnext_giant'");
  o = ModelOptions();
  o.widths = {1, 2};
  ExpectInvalid("convnext_tiny", o, "widths needs 4 entries");
  o = ModelOptions();
  o.num_classes = 0;
  ExpectInvalid("resnet18", o, "num_classes");
  o = ModelOptions();
  o.drop_path_rate = 1.0;
  ExpectInvalid("convnext_tiny", o, "drop_path_rate");
  o = ModelOptions();
  o.stem_stride = 3;
  ExpectInvalid("convnext_tiny", o, "stem_stride");
  o = ModelOptions();
  o.image_size = 30;
  ExpectInvalid("vit_tiny_32", o, "multiple of the patch size");
  EXPECT_FALSE(ForwardFlops("nope", ModelOptions(), 224).ok());
}

TEST(ConvNeXtTest, SmallImageStemsKeepResolution) {
  for (int stride : {1, 2, 4}) {
    ModelOptions o = DefaultOptions("convnext_nano_fmnist");
    o.stem_stride = stride;
    auto m = Make("convnext_nano_fmnist", o);
    ConvNeXt* c = dynamic_cast<ConvNeXt*>(m.get());
    at::Tensor x = at::randn({2, 1, 28, 28});
    at::Tensor stem = c->stem->forward(x);
    EXPECT_EQ(stem.size(2), 28 / stride) << stride;
    EXPECT_EQ(m->forward(x).sizes(), (std::vector<int64_t>{2, 10}));
  }
}

TEST(ConvNeXtTest, DropPathIsStochasticOnlyInTraining) {
  ModelOptions o = Small("convforever");
  o.depth = 4;
  o.widths = {8, 16, 16, 16};
  o.drop_path_rate = 0.5;
  o.layer_scale_init = 1.0;  // make the residual branches matter
  auto m = Make("convforever", o);
  at::Tensor x = at::randn({8, 3, 32, 32});
  m->eval();
  EXPECT_TRUE(at::equal(m->forward(x), m->forward(x)));
  m->train();
  EXPECT_FALSE(at::allclose(m->forward(x), m->forward(x)));
  EXPECT_DOUBLE_EQ(LinearDropPathRate(0.5, 0, 4), 0.0);
  EXPECT_DOUBLE_EQ(LinearDropPathRate(0.5, 3, 4), 0.5);
  // Per-sample: a dropped sample's branch is exactly zero, a kept one scaled by 1/(1-p).
  at::Tensor ones = at::ones({1000, 1, 1, 1});
  at::Tensor d = DropPath(ones, 0.25, true);
  EXPECT_TRUE(at::logical_or(d == 0, (d - 1.0 / 0.75).abs() < 1e-6).all().item<bool>());
  EXPECT_NEAR(d.mean().item<double>(), 1.0, 0.15);
}

TEST(ConvNeXtTest, InitIsTruncatedNormalWithZeroBiases) {
  auto m = Make("convnext_tiny", ModelOptions());
  auto* c = dynamic_cast<ConvNeXt*>(m.get());
  at::Tensor w = c->stages[2]->as<ConvNeXtStageImpl>()->blocks[0]->as<ConvNeXtBlockImpl>()->mlp->fc1->weight;
  EXPECT_NEAR(w.std().item<double>(), 0.02 * 0.88, 0.002);  // std of N(0, s) truncated at 2s
  EXPECT_LE(w.abs().max().item<double>(), 0.04 + 1e-6);
  EXPECT_EQ(c->head->fc->bias.abs().sum().item<double>(), 0.0);
}

// Gradients with per-stage checkpointing must equal the plain ones, drop path included.
void ExpectCheckpointingExact(const std::string& name, ModelOptions o) {
  o.drop_path_rate = 0.3;
  auto m = Make(name, o);
  m->train();
  at::Tensor x = at::randn({4, o.in_channels, o.image_size, o.image_size}).requires_grad_(true);
  auto grads = [&](bool ckpt) {
    m->SetGradientCheckpointing(ckpt);
    m->zero_grad();
    if (x.grad().defined()) x.grad().zero_();
    at::manual_seed(7);
    at::Tensor loss = m->forward(x).pow(2).sum();
    loss.backward();
    std::vector<at::Tensor> g{x.grad().clone()};
    for (auto& p : m->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
    return g;
  };
  auto plain = grads(false);
  auto ckpt = grads(true);
  ASSERT_EQ(plain.size(), ckpt.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_TRUE(at::allclose(plain[i], ckpt[i], 1e-5, 1e-6)) << name << " tensor " << i;
  }
}

TEST(CheckpointTest, GradientsEqualNonCheckpointed) {
  ModelOptions o = Small("convforever");
  o.depth = 5;
  o.widths = {8, 16, 16, 24};
  o.layer_scale_init = 0.5;
  ExpectCheckpointingExact("convforever", o);
  ModelOptions r = Small("resnet18");
  r.widths = {8, 8, 16, 16};
  ExpectCheckpointingExact("resnet18", r);
  ModelOptions v = Small("vit_tiny_32");
  v.image_size = 8;
  ExpectCheckpointingExact("vit_tiny_32", v);
}

TEST(ChannelsLastTest, SameLogitsAndGradientsAsContiguous) {
  for (const std::string name : {"convnext_nano_fmnist", "resnet18", "simple_cnn", "vit_tiny_32"}) {
    ModelOptions o = Small(name);
    if (name == std::string("resnet18")) o.widths = {8, 8, 16, 16};
    auto m = Make(name, o);
    m->eval();
    at::Tensor x = at::randn({2, o.in_channels, o.image_size, o.image_size});
    at::Tensor a = x.clone().requires_grad_(true);
    at::Tensor b = x.contiguous(at::MemoryFormat::ChannelsLast).requires_grad_(true);
    at::Tensor ya = m->forward(a), yb = m->forward(b);
    EXPECT_TRUE(at::allclose(ya, yb, 1e-4, 1e-5)) << name;
    ya.sum().backward();
    yb.sum().backward();
    EXPECT_TRUE(at::allclose(a.grad(), b.grad(), 1e-4, 1e-6)) << name;
  }
}

TEST(ResNetTest, BlurPoolAndConvHeadOptions) {
  ModelOptions o = Small("resnet50");
  o.widths = {8, 8, 16, 16};
  o.blur_pool = true;
  o.conv_head = true;
  o.drop_path_rate = 0.1;
  auto m = Make("resnet50", o);
  bool found = false;
  for (const auto& [name, t] : m->StateDict()) {
    if (name == "fc.weight") {
      found = true;
      EXPECT_EQ(t.sizes(), (std::vector<int64_t>{7, 64, 1, 1}));
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(m->forward(at::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 7}));
  // BlurPool is a normalized low-pass: a constant image stays constant, halved in size.
  at::Tensor flat = BlurPool(at::full({1, 2, 8, 8}, 3.0));
  EXPECT_EQ(flat.sizes(), (std::vector<int64_t>{1, 2, 4, 4}));
  EXPECT_TRUE(at::allclose(flat, at::full({1, 2, 4, 4}, 3.0)));
}

TEST(ResNetTest, TorchvisionStateDictNames) {
  auto m = Make("resnet50", ModelOptions());
  std::set<std::string> names;
  for (const auto& [n, t] : m->StateDict()) names.insert(n);
  for (const char* n : {"conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv3.weight",
                        "layer1.0.downsample.0.weight", "layer4.2.bn3.bias", "fc.weight", "fc.bias"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  EXPECT_EQ(names.size(), 320u);  // torchvision resnet50 state_dict() has 320 entries
}

}  // namespace
}  // namespace cf::models
