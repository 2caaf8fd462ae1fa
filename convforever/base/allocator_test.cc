#include "convforever/base/allocator.h"

#include <gtest/gtest.h>

namespace cf::base {
namespace {

// glibc accepts both thresholds (a value over its limits, e.g. a 64 MiB mmap threshold, is
// refused and would make this fail); elsewhere the call reports that it did nothing.
TEST(Allocator, GlibcAcceptsTheThresholds) {
#if defined(__GLIBC__)
  EXPECT_TRUE(KeepFreedMemoryForReuse());
#else
  EXPECT_FALSE(KeepFreedMemoryForReuse());
#endif
}

}  // namespace
}  // namespace cf::base
