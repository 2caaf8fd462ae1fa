// The level parsing and its errors (on CPUs described by hand, so an AVX2-only CPU's refusal of
// x86-64-v4 is checked on any machine), CF_CPU_ISA read from the real environment of a child
// process (this test binary run again), and the test hook.
#include "convforever/base/cpu_isa.h"

#include <cstdio>
#include <string>


#include <gtest/gtest.h>

#include "convforever/base/cpu_isa_testing.h"

namespace cf::base {
namespace {

CpuFeatures Avx2Cpu() {
  CpuFeatures f;
  f.x86_64_v3 = f.avx2 = f.fma = true;
  f.vendor = "AMD";
  return f;
}

CpuFeatures Avx512Cpu() {
  CpuFeatures f = Avx2Cpu();
  f.x86_64_v4 = f.avx512f = f.avx512bw = f.avx512dq = f.avx512vl = f.avx512vnni = true;
  f.vendor = "Intel";
  return f;
}

TEST(CpuIsa, NamesParseToTheirLevels) {
  for (CpuIsa isa : kAllCpuIsas) {
    const absl::StatusOr<CpuIsa> parsed = ParseCpuIsaSetting(CpuIsaName(isa), Avx512Cpu());
    if (!CF_CPU_ISA_HAS_VARIANTS && isa != CpuIsa::kBaseline) {
      EXPECT_FALSE(parsed.ok());
      continue;
    }
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, isa);
  }
}

TEST(CpuIsa, UnknownValueIsAnErrorNamingItAndTheChoices) {
  const absl::StatusOr<CpuIsa> parsed = ParseCpuIsaSetting("bogus", Avx2Cpu());
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(parsed.status().message());
  EXPECT_NE(message.find("CF_CPU_ISA=bogus"), std::string::npos) << message;
  EXPECT_NE(message.find("want baseline, x86-64-v3 or x86-64-v4"), std::string::npos) << message;
  // Case matters: the names are the psABI's, written one way.
  EXPECT_FALSE(ParseCpuIsaSetting("X86-64-V3", Avx2Cpu()).ok());
  EXPECT_FALSE(ParseCpuIsaSetting("", Avx2Cpu()).ok());
}

TEST(CpuIsa, LevelTheCpuCannotRunIsAnErrorNamingWhatItHas) {
  if (!CF_CPU_ISA_HAS_VARIANTS) GTEST_SKIP() << "this build has baseline kernels only";
  const absl::StatusOr<CpuIsa> parsed = ParseCpuIsaSetting("x86-64-v4", Avx2Cpu());
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(parsed.status().message(),
            "CF_CPU_ISA=x86-64-v4: this CPU cannot run it; it supports baseline, x86-64-v3 (AMD; "
            "AVX2, FMA, no AVX-512; no AMX)");
  EXPECT_FALSE(ParseCpuIsaSetting("x86-64-v3", CpuFeatures{}).ok());
  EXPECT_TRUE(ParseCpuIsaSetting("baseline", CpuFeatures{}).ok());
}

TEST(CpuIsa, BestLevel) {
  EXPECT_EQ(BestCpuIsa(CpuFeatures{}), CpuIsa::kBaseline);
  EXPECT_EQ(BestCpuIsa(Avx2Cpu()), CF_CPU_ISA_HAS_VARIANTS ? CpuIsa::kX86_64_V3 : CpuIsa::kBaseline);
  EXPECT_EQ(BestCpuIsa(Avx512Cpu()), CF_CPU_ISA_HAS_VARIANTS ? CpuIsa::kX86_64_V4 : CpuIsa::kBaseline);
  // The detected features are self-consistent: v4 implies v3 implies AVX2 and FMA.
  const CpuFeatures& here = DetectedCpuFeatures();
  if (here.x86_64_v4) EXPECT_TRUE(here.x86_64_v3 && here.avx512f && here.avx512bw);
  if (here.x86_64_v3) EXPECT_TRUE(here.avx2 && here.fma);
}

TEST(CpuIsa, TestHookForcesSupportedLevelsAndRestores) {
  const absl::StatusOr<CpuIsa> before = ActiveCpuIsa();
  ASSERT_TRUE(before.ok()) << before.status();
  for (CpuIsa isa : kAllCpuIsas) {
    ScopedCpuIsaForTesting force(isa);
    if (!CpuIsaSupported(isa, DetectedCpuFeatures())) {
      EXPECT_FALSE(force.status().ok()) << CpuIsaName(isa);
      EXPECT_NE(std::string(force.status().message()).find("cannot run"), std::string::npos);
      EXPECT_EQ(*ActiveCpuIsa(), *before) << "an unsupported level must change nothing";
      continue;
    }
    ASSERT_TRUE(force.status().ok()) << force.status();
    EXPECT_EQ(*ActiveCpuIsa(), isa);
    EXPECT_EQ(DescribeActiveCpuIsa().rfind(CpuIsaName(isa), 0), 0u) << DescribeActiveCpuIsa();
  }
  EXPECT_EQ(*ActiveCpuIsa(), *before);
}

// Runs only as the child of EnvironmentSetting: prints what ActiveCpuIsa() makes of CF_CPU_ISA.
TEST(CpuIsaChild, DISABLED_PrintActive) {
  const absl::StatusOr<CpuIsa> isa = ActiveCpuIsa();
  std::printf("ACTIVE[%s]\n", isa.ok() ? CpuIsaName(*isa) : std::string(isa.status().message()).c_str());
  std::printf("DESCRIBE[%s]\n", DescribeActiveCpuIsa().c_str());
}

// This binary run again with CF_CPU_ISA=`value`; its output.
std::string RunChild(const std::string& value) {
  return RunThisTestWithCpuIsa(value, "CpuIsaChild.DISABLED_PrintActive");
}

TEST(CpuIsa, EnvironmentSetting) {
  std::string out = RunChild("baseline");
  EXPECT_NE(out.find("ACTIVE[baseline]"), std::string::npos) << out;
  EXPECT_NE(out.find("DESCRIBE[baseline, set by CF_CPU_ISA ("), std::string::npos) << out;

  out = RunChild("bogus");
  EXPECT_NE(out.find("ACTIVE[CF_CPU_ISA=bogus: not a level; want baseline, x86-64-v3 or x86-64-v4, "
                     "of which this CPU supports " + SupportedCpuIsas(DetectedCpuFeatures()) + "]"),
            std::string::npos)
      << out;

  const CpuIsa best = BestCpuIsa(DetectedCpuFeatures());
  out = RunChild(CpuIsaName(best));
  EXPECT_NE(out.find(std::string("ACTIVE[") + CpuIsaName(best) + "]"), std::string::npos) << out;
  if (best == CpuIsa::kX86_64_V4) {
    std::printf("this CPU runs every level: an unsupported CF_CPU_ISA is checked on described CPUs only\n");
    return;
  }
  const CpuIsa above = static_cast<CpuIsa>(static_cast<int>(best) + 1);
  out = RunChild(CpuIsaName(above));
  EXPECT_NE(out.find(std::string("ACTIVE[CF_CPU_ISA=") + CpuIsaName(above) + ": this CPU cannot run it"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace cf::base
