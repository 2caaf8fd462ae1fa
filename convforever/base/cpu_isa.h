// Which x86-64 instruction-set level the hand-written CPU kernels run at, chosen once per process
// from what the CPU has, overridable for measurements and tests.
//
// The kernels (models/gelu.cc, models/depthwise_conv.cc) compile one body several times with
// CF_TARGET_X86_64_V3 / CF_TARGET_X86_64_V4 and pick the variant for ActiveCpuIsa() through a
// CpuIsaVariants table. The levels are the x86-64 psABI's:
//   baseline   x86-64 (SSE2), what every x86-64 CPU runs and the only level of non-x86 or clang
//              builds;
//   x86-64-v3  AVX, AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE (Haswell, AMD Zen and later);
//   x86-64-v4  v3 + AVX-512 F/BW/CD/DQ/VL (Skylake-SP, Ice Lake, Sapphire Rapids, AMD Zen 4).
// AVX512-VNNI and AMX are detected and reported (the trainer's start-up log) but no kernel uses them.
//
// The level in use is the best one this CPU supports (and this build has), unless the
// environment variable CF_CPU_ISA names another: baseline | x86-64-v3 | x86-64-v4. A value that
// is not a level, or a level the CPU cannot run, is an error naming the value and what the CPU
// supports; there is no silent fallback. The trainer reports it as its start-up error; a kernel
// called with such an environment throws it (c10::Error) instead of running another level.
// ScopedCpuIsaForTesting forces a level for the current process while it lives (tests).
#ifndef CONVFOREVER_BASE_CPU_ISA_H_
#define CONVFOREVER_BASE_CPU_ISA_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// Function attributes that compile one function for a level; empty where this build has only
// the baseline (non-x86, or a compiler other than GCC), so the variants stay plain functions.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CF_CPU_ISA_HAS_VARIANTS 1
#define CF_TARGET_X86_64_V3 __attribute__((target("arch=x86-64-v3")))
#define CF_TARGET_X86_64_V4 __attribute__((target("arch=x86-64-v4")))
#else
#define CF_CPU_ISA_HAS_VARIANTS 0
#define CF_TARGET_X86_64_V3
#define CF_TARGET_X86_64_V4
#endif

namespace cf::base {

enum class CpuIsa { kBaseline = 0, kX86_64_V3 = 1, kX86_64_V4 = 2 };
inline constexpr CpuIsa kAllCpuIsas[] = {CpuIsa::kBaseline, CpuIsa::kX86_64_V3, CpuIsa::kX86_64_V4};

// "baseline", "x86-64-v3", "x86-64-v4": the names CF_CPU_ISA takes.
const char* CpuIsaName(CpuIsa isa);

// What the CPU has, as the kernels care about it.
struct CpuFeatures {
  bool x86_64_v3 = false;  // the whole v3 set (and v2 below it)
  bool x86_64_v4 = false;  // the whole v4 set
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  std::string vendor;  // "AMD", "Intel" or "" (other or unknown)
};

// This CPU's features (cpuid through __builtin_cpu_supports, which also checks that the OS saves
// the AVX / AVX-512 registers). All false off x86-64.
const CpuFeatures& DetectedCpuFeatures();

// Whether `cpu` can run `isa` in this build (levels above baseline need CF_CPU_ISA_HAS_VARIANTS).
bool CpuIsaSupported(CpuIsa isa, const CpuFeatures& cpu);
// The best level `cpu` can run in this build.
CpuIsa BestCpuIsa(const CpuFeatures& cpu);
// "baseline, x86-64-v3": the levels `cpu` can run in this build.
std::string SupportedCpuIsas(const CpuFeatures& cpu);

// The level CF_CPU_ISA=`value` asks for on `cpu`: InvalidArgument for an unknown name, and
// FailedPrecondition for a level `cpu` cannot run, each naming the value and the supported levels.
absl::StatusOr<CpuIsa> ParseCpuIsaSetting(absl::string_view value, const CpuFeatures& cpu);

// The level the kernels use: the one ScopedCpuIsaForTesting forces, else CF_CPU_ISA's (read once
// per process) on this CPU, else the best this CPU supports. The error is ParseCpuIsaSetting's.
absl::StatusOr<CpuIsa> ActiveCpuIsa();

// One start-up log line's worth, e.g. "x86-64-v3, the best this CPU supports (AMD; AVX2, FMA; no
// AVX-512; no AMX)", or "baseline, set by CF_CPU_ISA (...; best x86-64-v4)".
std::string DescribeActiveCpuIsa();

// A kernel's variants, one per level; For() is the one to call for a level.
template <typename Fn>
struct CpuIsaVariants {
  Fn baseline;
  Fn x86_64_v3;
  Fn x86_64_v4;
  Fn For(CpuIsa isa) const {
    switch (isa) {
      case CpuIsa::kX86_64_V4: return x86_64_v4;
      case CpuIsa::kX86_64_V3: return x86_64_v3;
      case CpuIsa::kBaseline: break;
    }
    return baseline;
  }
};

// Forces the level ActiveCpuIsa() returns while it lives, if this CPU can run it; otherwise it
// changes nothing and status() says why (for GTEST_SKIP). Not nestable across threads: one test
// at a time.
class ScopedCpuIsaForTesting {
 public:
  explicit ScopedCpuIsaForTesting(CpuIsa isa);
  ~ScopedCpuIsaForTesting();
  ScopedCpuIsaForTesting(const ScopedCpuIsaForTesting&) = delete;
  ScopedCpuIsaForTesting& operator=(const ScopedCpuIsaForTesting&) = delete;

  const absl::Status& status() const { return status_; }

 private:
  absl::Status status_;
  int previous_ = -1;
};

}  // namespace cf::base

#endif  // CONVFOREVER_BASE_CPU_ISA_H_
