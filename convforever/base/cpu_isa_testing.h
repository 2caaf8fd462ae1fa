// Tests of a kernel at every CPU level: TEST_P(CpuIsaTest-derived fixture, ...) runs the body with
// the level forced (ScopedCpuIsaForTesting), and reports a level this CPU cannot run as skipped,
// with the reason, instead of passing it:
//
//   class GeluAtLevel : public base::CpuIsaTest {};
//   TEST_P(GeluAtLevel, MatchesLibTorch) { ... }
//   INSTANTIATE_TEST_SUITE_P(Levels, GeluAtLevel, base::AllCpuIsasForTesting(), base::CpuIsaTestName);
#ifndef CONVFOREVER_BASE_CPU_ISA_TESTING_H_
#define CONVFOREVER_BASE_CPU_ISA_TESTING_H_

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include "convforever/base/cpu_isa.h"

namespace cf::base {

// gtest prints a level by its name.
inline void PrintTo(CpuIsa isa, std::ostream* os) { *os << CpuIsaName(isa); }

class CpuIsaTest : public ::testing::TestWithParam<CpuIsa> {
 protected:
  void SetUp() override {
    force_ = std::make_unique<ScopedCpuIsaForTesting>(GetParam());
    if (!force_->status().ok()) GTEST_SKIP() << force_->status().message();
  }
  void TearDown() override { force_.reset(); }

 private:
  std::unique_ptr<ScopedCpuIsaForTesting> force_;
};

inline auto AllCpuIsasForTesting() { return ::testing::ValuesIn(kAllCpuIsas); }

// "baseline", "x86_64_v3", "x86_64_v4" (test names take no '-').
inline std::string CpuIsaTestName(const ::testing::TestParamInfo<CpuIsa>& info) {
  std::string name = CpuIsaName(info.param);
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

// This test binary run again with CF_CPU_ISA=`value` and only the tests `gtest_filter` names
// (disabled ones included, so a child-only test can be DISABLED_ in the parent); its output,
// stdout and stderr together. What a process-wide setting read once at start needs.
inline std::string RunThisTestWithCpuIsa(const std::string& value, const std::string& gtest_filter) {
  char self[4096] = {};
  if (::readlink("/proc/self/exe", self, sizeof(self) - 1) <= 0) return "readlink /proc/self/exe failed";
  const std::string command = "CF_CPU_ISA='" + value + "' '" + self +
                              "' --gtest_also_run_disabled_tests --gtest_filter=" + gtest_filter + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  std::string out;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

}  // namespace cf::base

#endif  // CONVFOREVER_BASE_CPU_ISA_TESTING_H_
