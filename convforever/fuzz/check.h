// Checks of a parser's promises inside a fuzz target. A broken promise aborts with its file, line
// and condition on stderr; libFuzzer reports the abort as a crash and saves the input, and the
// corpus replay test fails on it the same way.
#ifndef CONVFOREVER_FUZZ_CHECK_H_
#define CONVFOREVER_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define CF_FUZZ_FAIL(what)                                                          \
  do {                                                                              \
    std::fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, what); \
    std::abort();                                                                   \
  } while (0)

// CF_FUZZ_CHECK(promise) fails when the promise does not hold; CF_FUZZ_FAIL_IF(broken) when
// the condition describing a broken promise does.
#define CF_FUZZ_CHECK(cond)           \
  do {                                \
    if (!(cond)) CF_FUZZ_FAIL(#cond); \
  } while (0)

#define CF_FUZZ_FAIL_IF(cond)                   \
  do {                                          \
    if (cond) CF_FUZZ_FAIL("violated: " #cond); \
  } while (0)

#endif  // CONVFOREVER_FUZZ_CHECK_H_
