// Peak memory of one GPU (one rank) while training: weights, gradients, optimizer state (with
// ZeRO sharding), EMA weights and the activations autograd keeps for backward; and whether that
// fits a GPU. Bytes throughout; a GB is 1e9 bytes, as GPU memory is sold.
//
// Model state, P = trainable parameters, all fp32 (autocast keeps weights in fp32):
//   weights 4P, gradients 4P, EMA copy 4P (with --ema_decay), optimizer state: AdamW/LAMB 8P (two
//   moments), SGD 4P with momentum (0 without), Lion 4P (one moment).
//   ZeRO (several ranks) stage 1 and 2 keep the optimizer state and an fp32 master copy (4P) of
//   this rank's 1/N shard only, both on the CPU with offload. Gradients stay 4P at the peak for
//   both stages here: the trainer sums full local gradients over the micro-batches and reduces
//   (stage 2: reduce-scatters) them only after the last backward (dist/zero_optimizer.h); a
//   bucketed reduce-scatter during backward, as DeepSpeed does, would make them 4P/N.
//
// Activations of the ConvNeXt family (models/convnext.h), counted from what autograd saves,
// per block at N = B x H x W positions and C channels, in bytes, fp32 (bf16/fp16 autocast):
//   depthwise conv input          4NC  (2NC: autocast's low-precision copy)
//   LayerNorm input + mean/rstd   4NC + 8N  (same: the norm runs in fp32)
//   fc1 input                     4NC  (2NC)
//   GELU input (= fc1 output)     16NC (8NC)
//   fc2 input (= GELU output)     16NC (8NC)
//   layer-scale product input     4NC  (2NC), only with layer scale on
// = 44NC + 8N fp32 (24NC + 8N bf16) per block. The block input is the previous output (already
// counted as that block's depthwise input), the residual add saves nothing and drop path saves a
// [B] mask. Stem: the input image + the conv output as the norm's input (+8N stats); each
// downsample: the norm's input + stats, and the conv's input. Checkpointing (--enable_gradient_
// checkpointing) keeps only the stem and each stage's input, plus one stage's activations while
// that stage is recomputed in backward (the largest one). Backward's transient gradients add
// about two MLP-sized buffers (2 x 4NC at the block width) of the stage backward starts in.
// The measured check is plan/measure_test (batch 1 vs 2 on the CPU, glibc heap counters).
// Thread-safe: pure functions.
#ifndef CONVFOREVER_PLAN_MEMORY_H_
#define CONVFOREVER_PLAN_MEMORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cf::plan {

// Memory counts as usable up to this fraction of a GPU's memory: the CUDA context (~0.3-0.5 GB),
// cuDNN/cuBLAS workspaces and the caching allocator's fragmentation take the rest.
inline constexpr double kUsableMemoryFraction = 0.9;

// The shape of a ConvNeXt as the activation model needs it (models/convnext.h's options).
struct ConvNeXtShape {
  std::vector<int64_t> depths;  // blocks per stage
  std::vector<int64_t> dims;    // channels per stage
  int64_t stem_stride = 4;
  int64_t in_chans = 3;
  int64_t num_classes = 1000;
  bool layer_scale = true;      // layer_scale_init > 0
};

struct ActivationOptions {
  int64_t image_size = 224;
  int64_t batch = 1;                 // micro-batch per GPU
  std::string precision = "fp32";    // fp32 | bf16 | fp16
  bool gradient_checkpointing = false;
};

// Bytes autograd holds at the end of the forward pass (what backward will read).
double ConvNeXtSavedBytes(const ConvNeXtShape& shape, const ActivationOptions& options);
// Peak activation bytes over a training step (saved bytes with checkpointing's recompute and
// backward's transient gradients).
double ConvNeXtPeakActivationBytes(const ConvNeXtShape& shape, const ActivationOptions& options);

// Optimizer state bytes for P fp32 parameters; InvalidArgument for an unknown optimizer name.
absl::StatusOr<double> OptimizerStateBytes(const std::string& optimizer, int64_t params,
                                           double momentum);

struct MemoryInput {
  int64_t params = 0;
  std::string optimizer = "adamw";   // adamw | lamb | sgd | lion
  double momentum = 0.9;             // SGD only
  bool ema = false;
  int world_size = 1;
  int zero_stage = 0;                // 0, 1 or 2; ignored with one rank (as the trainer does)
  bool zero_offload = false;
  double activation_bytes = 0;       // peak activations at the micro-batch
};

struct MemoryResult {
  double weights = 0, gradients = 0, optimizer_state = 0, master = 0, ema = 0, activations = 0;
  double total = 0;
};

absl::StatusOr<MemoryResult> EstimateMemory(const MemoryInput& input);

// total <= memory_gb x 1e9 x kUsableMemoryFraction.
bool FitsInMemory(double total_bytes, double memory_gb);

}  // namespace cf::plan

#endif  // CONVFOREVER_PLAN_MEMORY_H_
