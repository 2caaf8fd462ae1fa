#include "convforever/base/cli_help.h"

#include <string>

#include "gflags/gflags.h"
#include "gtest/gtest.h"

DEFINE_int32(help_test_steps, 7, "how many steps");
DEFINE_string(help_test_name, "x", "a name");
DEFINE_bool(help_test_loose, false, "a flag no group names");

namespace cf::base {
namespace {

constexpr char kThisFile[] = "convforever/base/cli_help_test.cc";

TEST(CliHelp, OwnFlagsInTheirGroupsThenTheRestAndNothingElse) {
  const std::string text =
      FormatHelp("usage: thing [flags]", kThisFile, {{"Run", {"help_test_steps", "help_test_name"}}});
  EXPECT_EQ(text.rfind("usage: thing [flags]\n", 0), 0u) << text;
  const size_t run = text.find("\nRun:\n");
  const size_t steps = text.find("--help_test_steps (int32, default 7)\n      how many steps");
  const size_t name = text.find("--help_test_name (string, default \"x\")");
  const size_t other = text.find("\nOther flags:\n");
  const size_t loose = text.find("--help_test_loose (bool, default false)");
  ASSERT_NE(run, std::string::npos) << text;
  ASSERT_NE(steps, std::string::npos) << text;
  ASSERT_NE(name, std::string::npos) << text;
  ASSERT_NE(other, std::string::npos) << text;
  ASSERT_NE(loose, std::string::npos) << text;
  EXPECT_LT(run, steps);
  EXPECT_LT(steps, name);  // the group's order, not the alphabet's
  EXPECT_LT(name, other);
  EXPECT_LT(other, loose);
  // gflags' and glog's own flags, and other files' flags, are not this program's.
  EXPECT_EQ(text.find("--flagfile ("), std::string::npos) << text;
  EXPECT_EQ(text.find("--helpxml"), std::string::npos) << text;
}

TEST(CliHelp, AGroupNamingAFlagThatDoesNotExistSaysSo) {
  const std::string text = FormatHelp("u", kThisFile, {{"Run", {"no_such_flag"}}});
  EXPECT_NE(text.find("--no_such_flag (unknown flag)"), std::string::npos) << text;
}

TEST(CliHelp, AskedOnlyByAHelpArgumentBeforeDashDash) {
  char prog[] = "thing", help[] = "--help", h[] = "-h", other[] = "--x=1", dashdash[] = "--";
  char* with_help[] = {prog, other, help};
  char* with_h[] = {prog, h};
  char* without[] = {prog, other};
  char* after_dashdash[] = {prog, dashdash, help};
  testing::internal::CaptureStdout();
  EXPECT_TRUE(PrintHelpIfAsked(3, with_help, "u", kThisFile));
  EXPECT_TRUE(PrintHelpIfAsked(2, with_h, "u", kThisFile));
  const std::string printed = testing::internal::GetCapturedStdout();
  EXPECT_NE(printed.find("--help_test_steps"), std::string::npos);
  EXPECT_FALSE(PrintHelpIfAsked(2, without, "u", kThisFile));
  EXPECT_FALSE(PrintHelpIfAsked(3, after_dashdash, "u", kThisFile));
}

}  // namespace
}  // namespace cf::base
