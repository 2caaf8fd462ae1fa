// Process-wide tuning of glibc's malloc for training loops.
//
// A training step allocates and frees the same few hundred activation and gradient buffers every
// step, many of them megabytes large. By default glibc serves large requests with fresh mmap()s
// and returns freed memory at the top of the heap to the kernel (trim), so every step pays page
// faults and page zeroing again for memory it just released. On the 2-core build VM that cost
// dominated a ConvNeXt with 14x14 feature maps: 165 images/s by default, 750 with the heap kept
// (train flags --stem_stride=2 --widths=32,64,128, GLIBC_TUNABLES mmap/trim thresholds raised).
// KeepFreedMemoryForReuse() raises the mmap threshold to 256 MiB (glibc's dynamic threshold stops
// at 32 MiB, which a 2048x4096 fp32 weight gradient plus malloc's header already exceeds: 8192
// page faults per step in //convforever/distributed:dist_benchmark) and the trim threshold to
// 1 GiB, so steady-state steps reuse heap memory; peak memory is what it was, only returned to the
// kernel later. No effect (returns false) where the C library is not glibc.
#ifndef CONVFOREVER_BASE_ALLOCATOR_H_
#define CONVFOREVER_BASE_ALLOCATOR_H_

namespace cf::base {

bool KeepFreedMemoryForReuse();

}  // namespace cf::base

#endif  // CONVFOREVER_BASE_ALLOCATOR_H_
