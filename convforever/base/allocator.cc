#include "convforever/base/allocator.h"

#include <cstdlib>  // defines __GLIBC__ on glibc systems (via <features.h>)

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace cf::base {

bool KeepFreedMemoryForReuse() {
#if defined(__GLIBC__)
  // 256 MiB: a layer's weight gradient of exactly 32 MiB (a 2048x4096 fp32 Linear) is 32 MiB plus
  // malloc's header, which a 32 MiB threshold would still map afresh every step. Threads other
  // than the main one allocate from 64 MiB arenas: their larger requests still get a mapping of
  // their own. A glibc that refuses thresholds above HEAP_MAX_SIZE / 2 gets that, 32 MiB.
  const bool mmap_ok =
      mallopt(M_MMAP_THRESHOLD, 256 << 20) == 1 || mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return mmap_ok && trim_ok;
#else
  return false;
#endif
}

}  // namespace cf::base
