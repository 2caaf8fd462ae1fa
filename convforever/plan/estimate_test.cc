#include "convforever/plan/estimate.h"

#include "gtest/gtest.h"

namespace cf::plan {
namespace {

TEST(Flops, TrainingIsSixMacsAndEightWithCheckpointing) {
  // ConvNeXt-T: 4.47 GMACs forward at 224 -> 26.82 GFLOPs to train on one image.
  EXPECT_DOUBLE_EQ(TrainFlopsPerImage(4.47e9, false), 26.82e9);
  EXPECT_DOUBLE_EQ(TrainFlopsPerImage(4.47e9, true), 35.76e9);
  EXPECT_DOUBLE_EQ(EvalFlopsPerImage(4.47e9), 8.94e9);
}

TEST(EvalPasses, MirrorsTheTrainingLoop) {
  EXPECT_EQ(EvalPasses(300, 468, 0), 1);    // stops inside epoch 0: the final evaluation only
  EXPECT_EQ(EvalPasses(468, 468, 0), 1);    // last step ends the epoch: the final one covers it
  EXPECT_EQ(EvalPasses(700, 468, 0), 2);
  EXPECT_EQ(EvalPasses(4680, 468, 0), 10);  // 10 epochs
  EXPECT_EQ(EvalPasses(1000, 468, 250), 4); // 250, 500, 750, 1000 (final = same step)
  EXPECT_EQ(EvalPasses(1001, 468, 250), 5);
  EXPECT_EQ(EvalPasses(0, 468, 0), 0);
}

TEST(CommPadding, RingAllReduceAgainstBackward) {
  CommInput c;
  c.params = 100'000'000;
  c.gpus = 2;
  c.link_gbps = 32;                // 4e9 bytes/s
  c.step_compute_seconds = 0.02;
  c.overlap_seconds = 0.01;
  CommResult r = CommPadding(c);
  EXPECT_DOUBLE_EQ(r.bytes_per_gpu, 4e8);  // 2 (2-1)/2 x 4 bytes x 1e8
  EXPECT_DOUBLE_EQ(r.comm_seconds, 0.1);
  EXPECT_DOUBLE_EQ(r.exposed_seconds, 0.09);
  EXPECT_DOUBLE_EQ(r.padding, 4.5);
  c.gpus = 8;  // 2 x 7/8 x 4e8 = 7e8 bytes
  EXPECT_DOUBLE_EQ(CommPadding(c).bytes_per_gpu, 7e8);
  c.link_gbps = 3200;  // 0.00175 s, hidden under the 0.01 s backward
  EXPECT_DOUBLE_EQ(CommPadding(c).padding, 0.0);
  c.gpus = 1;
  EXPECT_DOUBLE_EQ(CommPadding(c).bytes_per_gpu, 0.0);
}

// The sync modes' traffic against DDP's, by hand: DiLoCo H=50 fp32 is 1/50 and not overlapped;
// int8 on 2 GPUs all-gathers 1 x P x (1 + 4/4096) bytes against DDP's 2 x 1/2 x 4P.
TEST(SyncTraffic, ModesScaleTheRingBytes) {
  EXPECT_DOUBLE_EQ(SyncTrafficOf("ddp", 2, 0.1, 50, "fp32", 4096).bytes_scale, 1.0);
  EXPECT_TRUE(SyncTrafficOf("ddp", 2, 0.1, 50, "fp32", 4096).hidden_by_backward);
  EXPECT_DOUBLE_EQ(SyncTrafficOf("powersgd", 2, 0.07, 50, "fp32", 4096).bytes_scale, 0.07);
  const SyncTraffic fp32 = SyncTrafficOf("diloco", 2, 0.1, 50, "fp32", 4096);
  EXPECT_DOUBLE_EQ(fp32.bytes_scale, 1.0 / 50);
  EXPECT_FALSE(fp32.hidden_by_backward);
  EXPECT_DOUBLE_EQ(SyncTrafficOf("diloco", 2, 0.1, 50, "bf16", 4096).bytes_scale, 0.5 / 50);
  EXPECT_DOUBLE_EQ(SyncTrafficOf("diloco", 2, 0.1, 50, "int8", 4096).bytes_scale,
                   2 * (1 + 4.0 / 4096) / (8.0 * 50));
  // Not overlapped: all of it is exposed.
  CommInput c;
  c.params = 100'000'000;
  c.gpus = 2;
  c.link_gbps = 32;  // 4e9 bytes/s
  c.step_compute_seconds = 0.02;
  c.overlap_seconds = 0.01;
  c.bytes_scale = fp32.bytes_scale;
  c.hidden_by_backward = false;
  const CommResult r = CommPadding(c);
  EXPECT_DOUBLE_EQ(r.bytes_per_gpu, 4e8 / 50);
  EXPECT_DOUBLE_EQ(r.exposed_seconds, 0.1 / 50);
  EXPECT_DOUBLE_EQ(r.padding, 0.1);
}

CostInput TwoGpus() {
  CostInput in;
  in.forward_macs = 1e9;        // 6e9 training FLOPs per image
  in.train_samples = 3'600'000; // 2.16e16 FLOPs
  in.eval_images = 3'000'000;   // 6e15 FLOPs
  in.params = 100'000'000;
  in.micro_batch = 100;
  in.gpus = 2;                  // 200 images per step: 18,000 steps
  in.peak_flops = 100e12;
  in.utilization = 0.3;         // 3e13 FLOP/s per GPU, 6e13 for two
  in.usd_per_hour = 1.5;
  return in;
}

TEST(EstimateCost, DatasheetTimesUtilisationAndDollars) {
  CostInput in = TwoGpus();
  in.link_gbps = 320;  // all-reduce 4e8 B at 4e10 B/s = 0.01 s < backward 0.02 x 2/3
  CostResult r = EstimateCost(in);
  EXPECT_DOUBLE_EQ(r.train_flops, 2.16e16);
  EXPECT_DOUBLE_EQ(r.eval_flops, 6e15);
  EXPECT_DOUBLE_EQ(r.achieved_flops_per_gpu, 3e13);
  EXPECT_DOUBLE_EQ(r.train_seconds, 360);
  EXPECT_DOUBLE_EQ(r.eval_seconds, 100);
  EXPECT_DOUBLE_EQ(r.padding, 0);
  EXPECT_DOUBLE_EQ(r.wall_seconds, 460);
  EXPECT_NEAR(r.gpu_hours, 460.0 * 2 / 3600, 1e-12);  // 0.25556 GPU-hours
  EXPECT_NEAR(r.usd, 0.383333333, 1e-9);               // x $1.50
}

TEST(EstimateCost, ExposedCommunicationIsPadding) {
  CostInput in = TwoGpus();
  in.link_gbps = 32;  // 0.1 s per step; step 0.02 s, backward 0.01333 s: exposed 0.086667 s
  CostResult r = EstimateCost(in);
  EXPECT_NEAR(r.padding, 4.333333333, 1e-9);
  EXPECT_NEAR(r.wall_seconds, 360 * (1 + 4.333333333) + 100, 1e-6);
  in.accumulation = 4;  // one all-reduce per 4 micro-batches: step 0.08 s, overlap 0.01333 s
  r = EstimateCost(in);
  EXPECT_NEAR(r.padding, (0.1 - 0.08 / 4 * 2 / 3) / 0.08, 1e-9);
  in.gradient_checkpointing = true;  // 8 MACs per image, backward share 3/4 of a micro-batch
  r = EstimateCost(in);
  EXPECT_DOUBLE_EQ(r.train_flops, 8e9 * 3'600'000);
  EXPECT_NEAR(r.train_seconds, 480, 1e-9);
}

TEST(EstimateCost, LocalUsesMeasuredTimes) {
  CostInput in;
  in.local = true;
  in.forward_macs = 1e7;
  in.train_samples = 300 * 128;  // 300 steps of 128
  in.micro_batch = 128;
  in.step_seconds = 0.1;
  in.eval_images = 10'000;
  in.eval_seconds_per_image = 2e-4;
  in.startup_seconds = 1.5;
  CostResult r = EstimateCost(in);
  EXPECT_DOUBLE_EQ(r.train_seconds, 30);
  EXPECT_DOUBLE_EQ(r.eval_seconds, 2);
  EXPECT_DOUBLE_EQ(r.wall_seconds, 33.5);
  EXPECT_DOUBLE_EQ(r.achieved_flops_per_gpu, 6e7 * 128 / 0.1);
  EXPECT_DOUBLE_EQ(r.usd, 0);
}

}  // namespace
}  // namespace cf::plan
