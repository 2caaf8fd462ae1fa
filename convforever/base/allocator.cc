#include "convforever/base/allocator.h"

#include <cstdlib>  // defines __GLIBC__ on glibc systems (via <features.h>)

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace cf::base {

bool KeepFreedMemoryForReuse() {
#if defined(__GLIBC__)
  // glibc refuses mmap thresholds above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit): requests larger than
  // that still get their own mapping, a small share of the work that computes on them.
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return mmap_ok && trim_ok;
#else
  return false;
#endif
}

}  // namespace cf::base
