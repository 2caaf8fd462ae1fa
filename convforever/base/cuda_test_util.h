// For tests of CUDA code paths (Bazel tag `cuda`): CF_SKIP_UNLESS_CUDA() at the top of a test
// skips it, with a message saying why, when the process cannot use a GPU (a CPU-only LibTorch
// build, or no device visible), so `tools/cf test` stays green on machines without one. With the
// environment variable CF_REQUIRE_CUDA=1 (set by ci/gpu_check.sh on the GPU machine) the same
// condition is a test failure instead: a GPU check whose CUDA tests all skipped proves nothing.
//
// Header-only; pulls <ATen/Context.h>, not <torch/torch.h>. Not for use outside tests.
#ifndef CONVFOREVER_BASE_CUDA_TEST_UTIL_H_
#define CONVFOREVER_BASE_CUDA_TEST_UTIL_H_

#include <cstdlib>
#include <cstring>
#include <string>

#include <ATen/Context.h>

namespace cf::base {

// Empty when CUDA is usable here; otherwise why not.
inline std::string CudaUnavailableReason() {
#ifndef CF_WITH_CUDA
  return "this binary was built without CUDA: its LibTorch has no libtorch_cuda.so";
#else
  if (!at::hasCUDA()) return "no CUDA device visible to LibTorch: no GPU or no driver";
  return "";
#endif
}

inline bool CudaRequired() {
  const char* v = std::getenv("CF_REQUIRE_CUDA");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

}  // namespace cf::base

// Skips the current test without a usable GPU, or fails it when CF_REQUIRE_CUDA=1.
#define CF_SKIP_UNLESS_CUDA()                                                                \
  do {                                                                                       \
    const std::string cf_cuda_reason = ::cf::base::CudaUnavailableReason();                  \
    if (!cf_cuda_reason.empty()) {                                                           \
      if (::cf::base::CudaRequired()) {                                                      \
        FAIL() << "CF_REQUIRE_CUDA=1 but CUDA is unusable: " << cf_cuda_reason;              \
      }                                                                                      \
      GTEST_SKIP() << "needs a CUDA GPU (" << cf_cuda_reason                                 \
                   << "); ci/gpu_check.sh runs it on the GPU machine";                       \
    }                                                                                        \
  } while (0)

#endif  // CONVFOREVER_BASE_CUDA_TEST_UTIL_H_
