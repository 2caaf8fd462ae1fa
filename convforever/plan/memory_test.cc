#include "convforever/plan/memory.h"

#include "gtest/gtest.h"

namespace cf::plan {
namespace {

TEST(Memory, OptimizerStateBytes) {
  EXPECT_DOUBLE_EQ(OptimizerStateBytes("adamw", 1'000'000, 0.9).value(), 8e6);
  EXPECT_DOUBLE_EQ(OptimizerStateBytes("lamb", 1'000'000, 0.9).value(), 8e6);
  EXPECT_DOUBLE_EQ(OptimizerStateBytes("sgd", 1'000'000, 0.9).value(), 4e6);
  EXPECT_DOUBLE_EQ(OptimizerStateBytes("sgd", 1'000'000, 0.0).value(), 0.0);
  EXPECT_DOUBLE_EQ(OptimizerStateBytes("lion", 1'000'000, 0.9).value(), 4e6);
  auto bad = OptimizerStateBytes("adam", 1, 0.9);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("'adam'"), std::string::npos);
}

TEST(Memory, ZeroShardsOptimizerStateAndMaster) {
  MemoryInput in;
  in.params = 100'000'000;
  in.activation_bytes = 5e8;
  MemoryResult plain = EstimateMemory(in).value();
  EXPECT_DOUBLE_EQ(plain.total, 4e8 + 4e8 + 8e8 + 5e8);
  in.world_size = 4;
  in.zero_stage = 1;
  MemoryResult z1 = EstimateMemory(in).value();
  EXPECT_DOUBLE_EQ(z1.optimizer_state, 2e8);
  EXPECT_DOUBLE_EQ(z1.master, 1e8);
  EXPECT_DOUBLE_EQ(z1.gradients, 4e8);
  EXPECT_DOUBLE_EQ(z1.total, 4e8 + 4e8 + 2e8 + 1e8 + 5e8);
  in.zero_stage = 2;  // full local gradients at the backward peak in this trainer (memory.h)
  EXPECT_DOUBLE_EQ(EstimateMemory(in).value().total, z1.total);
  in.zero_offload = true;
  MemoryResult off = EstimateMemory(in).value();
  EXPECT_DOUBLE_EQ(off.optimizer_state + off.master, 0.0);
  in.world_size = 1;  // one rank: nothing to shard (the trainer ignores --zero_stage)
  in.zero_offload = false;
  EXPECT_DOUBLE_EQ(EstimateMemory(in).value().total, plain.total);
  in.ema = true;
  EXPECT_DOUBLE_EQ(EstimateMemory(in).value().ema, 4e8);
}

TEST(Memory, FitsLeavesTenPercent) {
  EXPECT_TRUE(FitsInMemory(21.6e9, 24));
  EXPECT_FALSE(FitsInMemory(21.7e9, 24));
}

// A two-stage ConvNeXt small enough to count by hand: stem 4 on 16x16x3 -> 4x4x8, stage 0 one
// block at 8 channels, stage 1 (downsample to 2x2) one block at 16 channels, 10 classes, batch 2.
ConvNeXtShape Tiny() {
  ConvNeXtShape s;
  s.depths = {1, 1};
  s.dims = {8, 16};
  s.stem_stride = 4;
  s.in_chans = 3;
  s.num_classes = 10;
  s.layer_scale = false;
  return s;
}

TEST(Memory, ConvNeXtActivationsByHand) {
  ActivationOptions o;
  o.image_size = 16;
  o.batch = 2;
  // fp32. stem: image 4*2*3*256 = 6144, conv out 4*32*8 = 1024, stats 8*32 = 256 -> 7424.
  // stage 0 block (N 32, C 8, NC 256): 44*256 + 8*32 = 11520.
  // stage 1: downsample norm input 1024 + stats 256 + conv input 1024 = 2304; block (N 8, C 16,
  // NC 128): 44*128 + 64 = 5696 -> 8000. head: 2*(12*16 + 8 + 8*10) = 560. Total 27504.
  EXPECT_DOUBLE_EQ(ConvNeXtSavedBytes(Tiny(), o), 27504);
  // + backward's transient at the last stage: 2 x 4 bytes x 4NC = 4096.
  EXPECT_DOUBLE_EQ(ConvNeXtPeakActivationBytes(Tiny(), o), 31600);
  // bf16: stem + the autocast copy of the image 3072 -> 10496; block 0: 24*256 + 256 = 6400;
  // stage 1: 1024 + 256 + 512 + 24*128 + 64 = 4928; head 560. Total 22384.
  o.precision = "bf16";
  EXPECT_DOUBLE_EQ(ConvNeXtSavedBytes(Tiny(), o), 22384);
  // Checkpointing, fp32: stem 7424 + head 560 + stage inputs 1024 + 1024 = 10032; the peak adds
  // the largest stage recomputed with its transient: stage 0, 11520 + 8192.
  o.precision = "fp32";
  o.gradient_checkpointing = true;
  EXPECT_DOUBLE_EQ(ConvNeXtSavedBytes(Tiny(), o), 10032);
  EXPECT_DOUBLE_EQ(ConvNeXtPeakActivationBytes(Tiny(), o), 10032 + 11520 + 8192);
  // Layer scale saves the fc2 output too: + 4NC per block = 1024 + 512.
  o.gradient_checkpointing = false;
  ConvNeXtShape with_gamma = Tiny();
  with_gamma.layer_scale = true;
  EXPECT_DOUBLE_EQ(ConvNeXtSavedBytes(with_gamma, o), 27504 + 1024 + 512);
}

TEST(Memory, ActivationsScaleWithBatch) {
  ActivationOptions o;
  o.image_size = 16;
  o.batch = 4;
  EXPECT_DOUBLE_EQ(ConvNeXtSavedBytes(Tiny(), o), 2 * 27504);
}

}  // namespace
}  // namespace cf::plan
