#include "convforever/base/allocator.h"

#include <gtest/gtest.h>

// AddressSanitizer replaces malloc, and its mallopt() does nothing and says so.
#if defined(__SANITIZE_ADDRESS__)
#define CF_MALLOC_IS_SANITIZERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CF_MALLOC_IS_SANITIZERS 1
#endif
#endif

namespace cf::base {
namespace {

// glibc accepts both thresholds (a value over its limits, e.g. a 64 MiB mmap threshold, is
// refused and would make this fail); elsewhere the call reports that it did nothing.
TEST(Allocator, GlibcAcceptsTheThresholds) {
#if defined(CF_MALLOC_IS_SANITIZERS)
  GTEST_SKIP() << "malloc is AddressSanitizer's here, not glibc's";
#elif defined(__GLIBC__)
  EXPECT_TRUE(KeepFreedMemoryForReuse());
#else
  EXPECT_FALSE(KeepFreedMemoryForReuse());
#endif
}

}  // namespace
}  // namespace cf::base
