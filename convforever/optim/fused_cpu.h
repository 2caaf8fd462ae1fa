// Internal: runs an elementwise kernel over a list of contiguous CPU tensors as one parallel loop
// over fixed-size chunks of all of them, so small tensors do not each pay a thread fork and large
// ones are split across threads. `fn(i, begin, end)` handles elements [begin, end) of tensor i.
// Used by the optimizers' fused float32 CPU paths (one pass over memory instead of one per op).
#ifndef CONVFOREVER_OPTIM_FUSED_CPU_H_
#define CONVFOREVER_OPTIM_FUSED_CPU_H_

#include <ATen/Parallel.h>

#include <cstdint>
#include <vector>

// at::parallel_for is an inline OpenMP region in a LibTorch built with AT_PARALLEL_OPENMP; compiled
// without -fopenmp (BUILD's copts) it silently runs on one thread.
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "compile with -fopenmp: LibTorch's at::parallel_for would run the fused loops on one thread"
#endif

namespace cf::optim::internal {

template <typename Fn>
void ForEachChunk(const std::vector<int64_t>& numels, const Fn& fn) {
  constexpr int64_t kChunk = 1 << 15;
  struct Chunk { int64_t tensor, begin, end; };
  std::vector<Chunk> chunks;
  for (int64_t i = 0; i < static_cast<int64_t>(numels.size()); ++i) {
    for (int64_t b = 0; b < numels[i]; b += kChunk) {
      chunks.push_back({i, b, b + kChunk < numels[i] ? b + kChunk : numels[i]});
    }
  }
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) fn(chunks[c].tensor, chunks[c].begin, chunks[c].end);
  });
}

}  // namespace cf::optim::internal

#endif  // CONVFOREVER_OPTIM_FUSED_CPU_H_
