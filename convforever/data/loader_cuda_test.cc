// The loader's pinned-memory path (LoaderOptions::pin_memory, loader_batch.cc), which only does
// anything when LibTorch sees a GPU (Bazel tag `cuda`; skipped without one, a failure then under
// CF_REQUIRE_CUDA=1, see convforever/base/cuda_test_util.h): batches come page-locked, keep their
// memory format, and copy to the device asynchronously with the same values.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "convforever/base/cuda_test_util.h"
#include "convforever/data/loader.h"

namespace cf::data {
namespace {

LoaderOptions PinnedOptions(bool channels_last) {
  LoaderOptions o;
  o.batch_size = 8;
  o.num_workers = 2;
  o.prefetch_batches = 2;
  o.seed = 3;
  o.image_size = 16;
  o.channels = 3;
  o.transforms.channels_last = channels_last;
  o.pin_memory = true;
  return o;
}

DatasetSpec Synthetic() {
  DatasetSpec s{"synthetic", ""};
  s.synthetic_samples = 40;
  s.synthetic_classes = 5;
  s.synthetic_size = 16;
  return s;
}

void ExpectPinnedBatches(bool channels_last) {
  auto loader = Loader::Create(Synthetic(), PinnedOptions(channels_last));
  ASSERT_TRUE(loader.ok()) << loader.status();
  ASSERT_TRUE((*loader)->StartEpoch(0).ok());
  int batches = 0;
  for (;;) {
    auto b = (*loader)->Next();
    ASSERT_TRUE(b.ok()) << b.status();
    if (!b->has_value()) break;
    const at::Tensor& images = (**b).images;
    ASSERT_EQ(images.dim(), 4);
    EXPECT_TRUE(images.is_pinned()) << "batch " << batches << " is pageable";
    if (channels_last) {
      EXPECT_TRUE(images.is_contiguous(at::MemoryFormat::ChannelsLast)) << "pinning lost NHWC";
    }
    at::Tensor on_gpu = images.to(at::kCUDA, /*non_blocking=*/true);
    EXPECT_TRUE(at::equal(on_gpu.cpu(), images));
    ++batches;
  }
  EXPECT_EQ(batches, 5);
}

TEST(LoaderCuda, PinnedBatchesNchw) {
  CF_SKIP_UNLESS_CUDA();
  ExpectPinnedBatches(/*channels_last=*/false);
}

TEST(LoaderCuda, PinnedBatchesKeepChannelsLast) {
  CF_SKIP_UNLESS_CUDA();
  ExpectPinnedBatches(/*channels_last=*/true);
}

}  // namespace
}  // namespace cf::data
