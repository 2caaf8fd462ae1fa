#include "convforever/base/allocator.h"

#include <sys/resource.h>

#include <cstdlib>

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

// glibc accepts both thresholds (a value it refuses would make this fail); elsewhere the call
// reports that it did nothing.
TEST(Allocator, GlibcAcceptsTheThresholds) {
#if defined(CF_MALLOC_IS_SANITIZERS)
  GTEST_SKIP() << "malloc is AddressSanitizer's here, not glibc's";
#elif defined(__GLIBC__)
  EXPECT_TRUE(KeepFreedMemoryForReuse());
#else
  EXPECT_FALSE(KeepFreedMemoryForReuse());
#endif
}

// The property the trainer relies on: a 32 MiB buffer freed and allocated again (a weight gradient
// every step) comes back without page faults, i.e. from the heap, not from a fresh mapping.
TEST(Allocator, A32MiBBufferIsReusedWithoutPageFaults) {
#if defined(CF_MALLOC_IS_SANITIZERS) || !defined(__GLIBC__)
  GTEST_SKIP() << "not glibc's malloc";
#else
  ASSERT_TRUE(KeepFreedMemoryForReuse());
  constexpr size_t kBytes = size_t{32} << 20;
  auto touch = [] {
    auto* p = static_cast<volatile char*>(std::malloc(kBytes));
    for (size_t i = 0; i < kBytes; i += 4096) p[i] = 1;
    std::free(const_cast<char*>(p));
  };
  touch();  // the first time faults the pages in
  struct rusage before, after;
  getrusage(RUSAGE_SELF, &before);
  touch();
  getrusage(RUSAGE_SELF, &after);
  // A fresh mapping would fault all 8192 pages again.
  EXPECT_LT(after.ru_minflt - before.ru_minflt, 1000);
#endif
}

}  // namespace
}  // namespace cf::base
