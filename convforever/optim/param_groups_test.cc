// Param groups: timm's decay / no-decay split and layer-wise lr decay over ConvNeXt names.
#include "convforever/optim/param_groups.h"

#include <cmath>
#include <map>

#include "gtest/gtest.h"

namespace cf::optim {
namespace {

std::vector<std::pair<std::string, at::Tensor>> TinyConvNext() {
  // Two stages of 2 and 1 blocks, timm names.
  std::vector<std::pair<std::string, at::Tensor>> ps;
  auto add = [&](const std::string& n, std::vector<int64_t> shape) {
    ps.emplace_back(n, at::zeros(shape).requires_grad_(true));
  };
  add("stem.0.weight", {8, 3, 4, 4});
  add("stem.0.bias", {8});
  add("stem.1.weight", {8});
  add("stages.0.blocks.0.conv_dw.weight", {8, 1, 7, 7});
  add("stages.0.blocks.0.gamma", {8});
  add("stages.0.blocks.1.mlp.fc1.weight", {32, 8});
  add("stages.1.downsample.1.weight", {16, 8, 2, 2});
  add("stages.1.blocks.0.mlp.fc2.weight", {16, 64});
  add("head.fc.weight", {10, 16});
  add("head.fc.bias", {10});
  ps.emplace_back("frozen.weight", at::zeros({4, 4}));  // requires_grad = false
  return ps;
}

TEST(ParamGroups, DecaySplitLikeTimm) {
  ParamGroupOptions o;
  o.weight_decay = 0.05;
  o.no_decay_names = {"head.fc.weight"};
  auto groups = MakeParamGroups(TinyConvNext(), o);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_DOUBLE_EQ(groups[0].weight_decay, 0.05);
  EXPECT_EQ(groups[0].names, (std::vector<std::string>{
                                 "stem.0.weight", "stages.0.blocks.0.conv_dw.weight",
                                 "stages.0.blocks.1.mlp.fc1.weight", "stages.1.downsample.1.weight",
                                 "stages.1.blocks.0.mlp.fc2.weight"}));
  EXPECT_DOUBLE_EQ(groups[1].weight_decay, 0.0);
  EXPECT_EQ(groups[1].names, (std::vector<std::string>{"stem.0.bias", "stem.1.weight",
                                                       "stages.0.blocks.0.gamma", "head.fc.weight",
                                                       "head.fc.bias"}));
  // Groups alias the model's tensors.
  EXPECT_TRUE(groups[0].params[0].is_same(TinyConvNext()[0].second) == false);
  auto model = TinyConvNext();
  auto aliased = MakeParamGroups(model, o);
  EXPECT_TRUE(aliased[0].params[0].is_same(model[0].second));
}

TEST(ParamGroups, LayerDecayOverConvNextNames) {
  ParamGroupOptions o;
  o.layer_decay = 0.5;
  // 3 blocks -> layers: stem 0, s0b0 1, s0b1 2, s1 downsample + s1b0 3, head 4 = top.
  std::map<std::string, double> scale;
  for (const ParamGroup& g : MakeParamGroups(TinyConvNext(), o)) {
    for (const std::string& n : g.names) scale[n] = g.lr_scale;
  }
  EXPECT_DOUBLE_EQ(scale["stem.0.weight"], std::pow(0.5, 4));
  EXPECT_DOUBLE_EQ(scale["stem.0.bias"], std::pow(0.5, 4));
  EXPECT_DOUBLE_EQ(scale["stages.0.blocks.0.gamma"], std::pow(0.5, 3));
  EXPECT_DOUBLE_EQ(scale["stages.0.blocks.1.mlp.fc1.weight"], std::pow(0.5, 2));
  EXPECT_DOUBLE_EQ(scale["stages.1.downsample.1.weight"], 0.5);
  EXPECT_DOUBLE_EQ(scale["stages.1.blocks.0.mlp.fc2.weight"], 0.5);
  EXPECT_DOUBLE_EQ(scale["head.fc.weight"], 1.0);
  EXPECT_EQ(scale.count("frozen.weight"), 0u);
}

TEST(ParamGroups, LayerIdOfOddNames) {
  const std::vector<int> offsets = {0, 3};
  EXPECT_EQ(ConvNextLayerId("stem.0.weight", offsets, 5), 0);
  EXPECT_EQ(ConvNextLayerId("stages.1.blocks.1.x", offsets, 5), 5);
  EXPECT_EQ(ConvNextLayerId("stages.x.blocks.1.x", offsets, 5), 6);   // malformed: top
  EXPECT_EQ(ConvNextLayerId("stages.9.blocks.0.x", offsets, 5), 6);   // unknown stage: top
  EXPECT_EQ(ConvNextLayerId("norm_pre.weight", offsets, 5), 6);
}

}  // namespace
}  // namespace cf::optim
