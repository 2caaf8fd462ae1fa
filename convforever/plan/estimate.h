// The cost model of a training run: FLOPs, time on a target GPU (or this machine), multi-GPU
// padding, GPU-hours and dollars. Plain arithmetic on numbers the caller gathers (the model's
// analytic MACs, the data's sample counts, measured step times); memory is in memory.h.
//
// FLOPs. One image's forward pass costs F = 2 x MACs FLOPs (a multiply-accumulate is two).
// Backward costs about 2F (gradients w.r.t. activations and w.r.t. weights, each the size of the
// forward), so training is 3F = 6 x MACs per image; gradient checkpointing runs the forward once
// more in backward: 4F = 8 x MACs. Evaluation is forward only: 2 x MACs. MACs come from the model
// registry (models/registry.h ForwardFlops: convolutions and linear layers; norms and activations
// uncounted, as fvcore/timm count).
//
// Time on a target GPU: FLOPs / (peak x utilisation x gpus), then x (1 + padding) for the data
// parallel communication that compute does not hide (CommPadding below). Peak is the datasheet's
// dense figure for the precision (gpus.h). Utilisation (model FLOPs achieved / peak) is either
// given (kDefaultUtilization, or --utilization) or measured by a calibration run on this machine.
// Time on this machine (`local`): steps x measured step time + eval images x measured time per
// eval image + measured startup; no peak involved.
// Thread-safe: pure functions.
#ifndef CONVFOREVER_PLAN_ESTIMATE_H_
#define CONVFOREVER_PLAN_ESTIMATE_H_

#include <cstdint>
#include <string>

namespace cf::plan {

// Model FLOPs utilisation assumed for a ConvNeXt on a GPU when nothing was measured: a judgment,
// not a measurement. A ConvNeXt block's 1x1 layers (8C^2 MACs per position) are matmuls that run
// near peak, but its 7x7 depthwise convolution, LayerNorm, GELU, residual add and layout changes
// are memory-bound, and at stage widths 96-768 they take about as long as the matmuls in bf16;
// with the matmuls themselves at ~70% of peak this lands near 30%. Measure instead when you can
// (--calibrate on the target GPU, or --utilization from a real run's summary.json).
inline constexpr double kDefaultUtilization = 0.30;

// FLOPs of one training image (forward + backward, + recompute with checkpointing) and of one
// evaluation image, from forward MACs of one image.
double TrainFlopsPerImage(double forward_macs, bool gradient_checkpointing);
double EvalFlopsPerImage(double forward_macs);

// How many full evaluations a run makes: one at each epoch end the loop reaches before its last
// step (eval_every_steps == 0), or every eval_every_steps steps, plus the final one (not repeated
// when it falls on the same step). Mirrors convforever/train/trainer.cc.
int64_t EvalPasses(int64_t total_steps, int64_t steps_per_epoch, int64_t eval_every_steps);

// Data-parallel gradient all-reduce of fp32 gradients over a ring: each GPU sends and receives
// 2 (N-1)/N x 4P bytes per optimizer step. It overlaps the last micro-batch's backward (buckets
// are reduced while earlier layers still compute); what does not fit under that backward is
// exposed. padding = exposed / compute time of the step (0 for one GPU). Other sync modes
// (SyncTraffic) scale those bytes and may not overlap backward at all.
struct CommInput {
  int64_t params = 0;
  int gpus = 1;
  double link_gbps = 0;            // per-GPU ring bandwidth, gigabits per second
  double step_compute_seconds = 0; // all micro-batches of one optimizer step on one GPU
  double overlap_seconds = 0;      // backward time of the last micro-batch
  double bytes_scale = 1.0;        // the sync mode's bytes per step / DDP's (SyncTraffic)
  bool hidden_by_backward = true;  // false: the transfer waits after the step (DiLoCo)
};

// What a --sync mode moves per optimizer step, relative to DDP's fp32 ring all-reduce of the
// same parameters (the byte ledger's ring model, convforever/distributed/byte_ledger.h):
//   ddp       1, overlapped with backward.
//   powersgd  `powersgd_fraction`: the caller's count of the factors' bytes over the gradients'
//             (4 r (n+m) per compressed matrix, 4 n m for what stays whole), overlapped.
//   diloco    once every H steps, not overlapped: fp32 1/H, bf16 1/(2H); int8 is all-gathered,
//             (N-1) P (1 + 4/chunk) bytes against DDP's 2 (N-1)/N 4P: N (1 + 4/chunk) / (8H).
struct SyncTraffic {
  double bytes_scale = 1.0;
  bool hidden_by_backward = true;
};
SyncTraffic SyncTrafficOf(const std::string& sync, int gpus, double powersgd_fraction,
                          int64_t diloco_inner_steps, const std::string& diloco_dtype,
                          int64_t diloco_int8_chunk);
struct CommResult {
  double bytes_per_gpu = 0;    // sent (= received) per optimizer step
  double comm_seconds = 0;
  double exposed_seconds = 0;
  double padding = 0;          // fraction, e.g. 0.12 = +12%
};
CommResult CommPadding(const CommInput& in);

// Everything for one row of the estimate (one model configuration on one target).
struct CostInput {
  double forward_macs = 0;         // one image at the training size
  bool gradient_checkpointing = false;
  int64_t train_samples = 0;       // images trained on, all GPUs together
  int64_t eval_images = 0;         // evaluation images over the whole run (passes x set size)
  int64_t params = 0;
  int64_t micro_batch = 1;         // per GPU
  int64_t accumulation = 1;
  int gpus = 1;
  double link_gbps = 0;
  SyncTraffic sync;                // --sync's traffic (DDP's by default)
  // Target GPU (local == false): peak FLOP/s for the precision and the utilisation.
  bool local = false;
  double peak_flops = 0;
  double utilization = kDefaultUtilization;
  // This machine (local == true): measured seconds.
  double step_seconds = 0;         // one optimizer step (all micro-batches) on one GPU
  double eval_seconds_per_image = 0;
  double startup_seconds = 0;
  double usd_per_hour = 0;         // per GPU
};

struct CostResult {
  double train_flops = 0;          // all GPUs together
  double eval_flops = 0;
  double achieved_flops_per_gpu = 0;  // model FLOP/s while training, one GPU
  double train_seconds = 0;        // wall time of the training steps, without padding
  double eval_seconds = 0;
  double startup_seconds = 0;
  double padding = 0;              // fraction added to train_seconds for communication
  CommResult comm;
  double wall_seconds = 0;         // train x (1 + padding) + eval + startup
  double gpu_hours = 0;            // wall x gpus / 3600
  double usd = 0;                  // gpu_hours x usd_per_hour
};

CostResult EstimateCost(const CostInput& in);

}  // namespace cf::plan

#endif  // CONVFOREVER_PLAN_ESTIMATE_H_
