#include "convforever/plan/measure.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <vector>

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include "absl/strings/str_cat.h"

namespace cf::plan {
namespace {

void Sync(c10::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? 0 : device.index());
}

}  // namespace

absl::StatusOr<double> MatmulFlops(c10::Device device, c10::ScalarType dtype, int64_t n, int reps) {
  try {
    at::NoGradGuard no_grad;
    const auto options = at::TensorOptions().device(device).dtype(dtype);
    at::Tensor a = at::randn({n, n}, options), b = at::randn({n, n}, options);
    at::Tensor c = at::mm(a, b);  // warm-up: kernel selection, first-touch of c
    Sync(device);
    std::vector<double> seconds;
    for (int i = 0; i < std::max(1, reps); ++i) {
      const auto start = std::chrono::steady_clock::now();
      at::mm_out(c, a, b);
      Sync(device);
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    return 2.0 * n * n * n / median;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("matmul peak on ", device.str(), ": ", e.what()));
  }
}

int64_t HeapBytesInUse() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 m = mallinfo2();
  return static_cast<int64_t>(m.uordblks + m.hblkhd);
#else
  return -1;
#endif
}

absl::StatusOr<double> ActivationBytesPerSample(models::Model& model, int64_t channels,
                                                int64_t image_size, bool channels_last) {
  if (HeapBytesInUse() < 0) {
    return absl::UnimplementedError("measuring activation memory needs glibc >= 2.33 (mallinfo2)");
  }
  try {
    model.train();
    auto held_after_forward = [&](int64_t batch) {
      // The input batch counts (it lives until backward, as the memory model assumes).
      const int64_t before = HeapBytesInUse();
      at::Tensor x = at::randn({batch, channels, image_size, image_size},
                               at::TensorOptions().memory_format(
                                   channels_last ? at::MemoryFormat::ChannelsLast
                                                 : at::MemoryFormat::Contiguous));
      at::Tensor logits = model.forward(x);  // the graph (and its saved tensors) lives with it
      const int64_t after = HeapBytesInUse();
      return static_cast<double>(after - before);
    };
    // First calls at each shape allocate for good (oneDNN primitive caches, thread pools).
    held_after_forward(1);
    held_after_forward(2);
    const double one = held_after_forward(1);
    const double two = held_after_forward(2);
    return two - one;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("activation measurement: ", e.what()));
  }
}

}  // namespace cf::plan
