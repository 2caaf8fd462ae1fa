// Measurements on this machine for the estimator: the device's matmul peak, the heap bytes in
// use (glibc), and the activation bytes a model's training forward keeps per sample.
//
// MatmulFlops: median FLOP/s of an n x n x n torch::mm (2n^3 FLOPs) after one warm-up, on the
// given device and dtype, with LibTorch's current intra-op thread count; on CUDA each timing is
// synchronised. This is "the CPU's peak" of the estimator: what LibTorch reaches on its best-case
// kernel with the threads training uses, not a vendor figure.
// HeapBytesInUse: glibc's mallinfo2() uordblks + hblkhd (all arenas; -1 elsewhere). LibTorch's CPU
// allocator calls malloc directly, so tensors show up here byte for byte (+ chunk headers).
// ActivationBytesPerSample: (heap held after making an input batch and running a training-mode
// forward with grad on it, at batch 2) minus (the same at batch 1), CPU only: the graph's fixed overhead cancels, leaving one sample's saved
// activations (+ its share of the output). Not thread-safe against other allocating threads.
#ifndef CONVFOREVER_PLAN_MEASURE_H_
#define CONVFOREVER_PLAN_MEASURE_H_

#include <cstdint>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "absl/status/statusor.h"
#include "convforever/models/model.h"

namespace cf::plan {

absl::StatusOr<double> MatmulFlops(c10::Device device, c10::ScalarType dtype, int64_t n, int reps);

int64_t HeapBytesInUse();

// images: [B, C, H, W] shape without B: channels, size. Runs the model in training mode on the
// CPU, fp32, optionally channels_last input; restores nothing else (call on a scratch model).
absl::StatusOr<double> ActivationBytesPerSample(models::Model& model, int64_t channels,
                                                int64_t image_size, bool channels_last);

}  // namespace cf::plan

#endif  // CONVFOREVER_PLAN_MEASURE_H_
