#include "convforever/base/cpu_isa.h"

#include <atomic>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cf::base {
namespace {

constexpr char kEnv[] = "CF_CPU_ISA";

CpuFeatures Detect() {
  CpuFeatures f;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
#if !defined(__clang__)
  // GCC (12+) knows the psABI levels as a whole and the AMX bits.
  f.x86_64_v3 = __builtin_cpu_supports("x86-64-v3");
  f.x86_64_v4 = __builtin_cpu_supports("x86-64-v4");
  f.amx_tile = __builtin_cpu_supports("amx-tile");
  f.amx_int8 = __builtin_cpu_supports("amx-int8");
  f.amx_bf16 = __builtin_cpu_supports("amx-bf16");
#else
  f.x86_64_v3 = f.avx2 && f.fma && __builtin_cpu_supports("bmi2");
  f.x86_64_v4 = f.x86_64_v3 && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl;
#endif
  if (__builtin_cpu_is("amd")) f.vendor = "AMD";
  if (__builtin_cpu_is("intel")) f.vendor = "Intel";
#endif
  return f;
}

// The level a ScopedCpuIsaForTesting forces, or -1.
std::atomic<int> forced{-1};

// CF_CPU_ISA's level, resolved on first use.
const absl::StatusOr<CpuIsa>& FromEnvironment() {
  static const absl::StatusOr<CpuIsa>* const resolved = [] {
    const char* value = std::getenv(kEnv);
    const CpuFeatures& cpu = DetectedCpuFeatures();
    return new absl::StatusOr<CpuIsa>(value == nullptr ? absl::StatusOr<CpuIsa>(BestCpuIsa(cpu))
                                                       : ParseCpuIsaSetting(value, cpu));
  }();
  return *resolved;
}

std::string FeatureList(const CpuFeatures& f) {
  std::vector<std::string> has;
  if (!f.vendor.empty()) has.push_back(f.vendor);
  std::vector<std::string> isa;
  if (f.avx2) isa.push_back("AVX2");
  if (f.fma) isa.push_back("FMA");
  std::vector<std::string> avx512;
  if (f.avx512f) avx512.push_back("F");
  if (f.avx512bw) avx512.push_back("BW");
  if (f.avx512dq) avx512.push_back("DQ");
  if (f.avx512vl) avx512.push_back("VL");
  isa.push_back(avx512.empty() ? "no AVX-512" : "AVX-512 " + absl::StrJoin(avx512, "/"));
  if (!avx512.empty()) isa.push_back(f.avx512vnni ? "AVX512-VNNI" : "no AVX512-VNNI");
  has.push_back(absl::StrJoin(isa, ", "));
  std::vector<std::string> amx;
  if (f.amx_tile) amx.push_back("TILE");
  if (f.amx_int8) amx.push_back("INT8");
  if (f.amx_bf16) amx.push_back("BF16");
  has.push_back(amx.empty() ? "no AMX" : "AMX " + absl::StrJoin(amx, "/"));
  return absl::StrJoin(has, "; ");
}

}  // namespace

const char* CpuIsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kX86_64_V4: return "x86-64-v4";
    case CpuIsa::kX86_64_V3: return "x86-64-v3";
    case CpuIsa::kBaseline: break;
  }
  return "baseline";
}

const CpuFeatures& DetectedCpuFeatures() {
  static const CpuFeatures* const features = new CpuFeatures(Detect());
  return *features;
}

bool CpuIsaSupported(CpuIsa isa, const CpuFeatures& cpu) {
  switch (isa) {
    case CpuIsa::kX86_64_V4: return CF_CPU_ISA_HAS_VARIANTS && cpu.x86_64_v4;
    case CpuIsa::kX86_64_V3: return CF_CPU_ISA_HAS_VARIANTS && cpu.x86_64_v3;
    case CpuIsa::kBaseline: break;
  }
  return true;
}

CpuIsa BestCpuIsa(const CpuFeatures& cpu) {
  if (CpuIsaSupported(CpuIsa::kX86_64_V4, cpu)) return CpuIsa::kX86_64_V4;
  if (CpuIsaSupported(CpuIsa::kX86_64_V3, cpu)) return CpuIsa::kX86_64_V3;
  return CpuIsa::kBaseline;
}

std::string SupportedCpuIsas(const CpuFeatures& cpu) {
  std::vector<std::string> names;
  for (CpuIsa isa : kAllCpuIsas) {
    if (CpuIsaSupported(isa, cpu)) names.push_back(CpuIsaName(isa));
  }
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<CpuIsa> ParseCpuIsaSetting(absl::string_view value, const CpuFeatures& cpu) {
  for (CpuIsa isa : kAllCpuIsas) {
    if (value != CpuIsaName(isa)) continue;
    if (CpuIsaSupported(isa, cpu)) return isa;
    return absl::FailedPreconditionError(absl::StrCat(
        kEnv, "=", value, ": this CPU cannot run it", CF_CPU_ISA_HAS_VARIANTS ? "" : " (in this build)",
        "; it supports ", SupportedCpuIsas(cpu), " (", FeatureList(cpu), ")"));
  }
  return absl::InvalidArgumentError(absl::StrCat(kEnv, "=", value,
                                                 ": not a level; want baseline, x86-64-v3 or "
                                                 "x86-64-v4, of which this CPU supports ",
                                                 SupportedCpuIsas(cpu)));
}

absl::StatusOr<CpuIsa> ActiveCpuIsa() {
  const int f = forced.load(std::memory_order_acquire);
  if (f >= 0) return static_cast<CpuIsa>(f);
  return FromEnvironment();
}

std::string DescribeActiveCpuIsa() {
  const CpuFeatures& cpu = DetectedCpuFeatures();
  const absl::StatusOr<CpuIsa> isa = ActiveCpuIsa();
  if (!isa.ok()) return std::string(isa.status().message());
  const CpuIsa best = BestCpuIsa(cpu);
  std::string out = CpuIsaName(*isa);
  if (forced.load() >= 0) {
    absl::StrAppend(&out, ", forced by a test");
  } else if (std::getenv(kEnv) != nullptr) {
    absl::StrAppend(&out, ", set by ", kEnv);
  } else {
    absl::StrAppend(&out, ", the best this CPU supports");
  }
  absl::StrAppend(&out, " (", FeatureList(cpu));
  if (*isa != best) absl::StrAppend(&out, "; best ", CpuIsaName(best));
  if (!CF_CPU_ISA_HAS_VARIANTS) absl::StrAppend(&out, "; this build has baseline kernels only");
  absl::StrAppend(&out, ")");
  return out;
}

ScopedCpuIsaForTesting::ScopedCpuIsaForTesting(CpuIsa isa) {
  const CpuFeatures& cpu = DetectedCpuFeatures();
  if (!CpuIsaSupported(isa, cpu)) {
    status_ = absl::FailedPreconditionError(absl::StrCat(
        CpuIsaName(isa), ": this CPU cannot run it; it supports ", SupportedCpuIsas(cpu), " (",
        FeatureList(cpu), ")"));
    return;
  }
  previous_ = forced.exchange(static_cast<int>(isa));
}

ScopedCpuIsaForTesting::~ScopedCpuIsaForTesting() {
  if (status_.ok()) forced.store(previous_);
}

}  // namespace cf::base
