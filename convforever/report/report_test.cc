// End to end through the `report` binary, on fixture directories in the real formats.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/report/test_fixtures.h"
#include "gtest/gtest.h"

namespace cf::report {
namespace {

namespace fs = std::filesystem;

constexpr char kBinary[] = "convforever/report/report";  // runfiles-relative

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs the binary with `args` (already quoted); returns its exit status, output in `output`.
int RunReport(const std::string& args, std::string* output) {
  FILE* pipe = ::popen((std::string(kBinary) + " " + args + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) output->append(buf, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

// No script, and nothing the browser would fetch: src/href attributes, CSS url() other than a
// fragment, @import.
void ExpectSelfContained(const std::string& html) {
  EXPECT_FALSE(absl::StrContains(html, "<script")) << "script element";
  EXPECT_FALSE(absl::StrContains(html, "src=")) << "src attribute";
  EXPECT_FALSE(absl::StrContains(html, "href=")) << "href attribute";
  EXPECT_FALSE(absl::StrContains(html, "@import"));
  EXPECT_EQ(Count(html, "url("), Count(html, "url(#clip-")) << "url() that is not a clip path";
}

TEST(Report, RunDirsWithHostileNamesAreEscaped) {
  const std::string parent = testing::MakeTempDir("report");
  testing::FixtureRun a;
  a.name = "<script>alert(1)<\\script> & co";  // a directory name: no '/'
  a.lr_finder = true;
  testing::FixtureRun b;
  b.name = "baseline";
  b.summary = false;
  b.final_loss = 0.7;
  const std::string dir_a = testing::WriteRunDir(parent, a);
  const std::string dir_b = testing::WriteRunDir(parent, b);
  const std::string out = parent + "/page.html";
  std::string output;
  ASSERT_EQ(RunReport(absl::StrCat(Quote(dir_a), " ", Quote(dir_b), " --out ", Quote(out), " --title ",
                             Quote("Title <i>x</i> & y")),
                &output),
            0)
      << output;
  const std::string html = Read(out);
  ExpectSelfContained(html);
  EXPECT_TRUE(absl::StrContains(html, "<td>&lt;script&gt;alert(1)&lt;\\script&gt; &amp; co</td>"));
  EXPECT_TRUE(absl::StrContains(html, "<title>Title &lt;i&gt;x&lt;/i&gt; &amp; y</title>"));
  EXPECT_FALSE(absl::StrContains(html, "<i>"));
  for (const char* id : {"train_loss", "eval_loss", "top1", "lr", "throughput", "lr_finder"}) {
    EXPECT_EQ(Count(html, absl::StrCat("<svg id=\"plot-", id, "\"")), 1) << id;
    EXPECT_TRUE(fs::exists(absl::StrCat(parent, "/page_plots/", id, ".png"))) << id;
  }
  EXPECT_TRUE(absl::StrContains(html, "suggested lr = 0.001"));
  // The run without summary.json: a warning, and the final numbers from its metrics log.
  EXPECT_TRUE(absl::StrContains(html, "no summary.json"));
  EXPECT_TRUE(absl::StrContains(output, "warning:")) << output;
}

TEST(Report, SweepDirGetsScalingPlotsFitsAndTables) {
  const std::string parent = testing::MakeTempDir("report");
  const std::string sweep = testing::WriteSweepDir(parent, "sweep", 5);
  std::string output;
  ASSERT_EQ(RunReport(Quote(sweep), &output), 0) << output;
  const std::string html = Read(sweep + "/report.html");
  ExpectSelfContained(html);
  for (const char* id : {"loss_vs_params", "loss_vs_flops", "error_vs_params", "error_vs_flops", "runs_train_loss",
                         "runs_eval_loss", "runs_top1", "runs_lr", "runs_throughput"}) {
    EXPECT_EQ(Count(html, absl::StrCat("<svg id=\"plot-", id, "\"")), 1) << id;
    EXPECT_TRUE(fs::exists(absl::StrCat(sweep, "/report_plots/", id, ".png"))) << id;
  }
  // The fixture's loss follows 3 * (N/1e5)^-0.3 + 0.4 = 3e5^0.3... : b and c come back.
  EXPECT_TRUE(absl::StrContains(html, "b = 0.3<")) << "b of the loss fit";
  EXPECT_TRUE(absl::StrContains(html, "c = 0.4<")) << "c of the loss fit";
  EXPECT_TRUE(absl::StrContains(html, "failed_run"));  // the results table has every row
  EXPECT_EQ(Count(html, "<td>depth_"), 5 * 2);          // results table and runs table
}

TEST(Report, SweepWithTwoDoneRowsSaysWhyThereIsNoFit) {
  const std::string sweep = testing::WriteSweepDir(testing::MakeTempDir("report"), "small", 2);
  std::string output;
  ASSERT_EQ(RunReport(Quote(sweep), &output), 0) << output;
  const std::string html = Read(sweep + "/report.html");
  EXPECT_EQ(Count(html, "no fit: power-law fit needs at least 3 distinct x values; got 2"), 4);
}

TEST(Report, BadInputFailsNamingTheFile) {
  const std::string parent = testing::MakeTempDir("report");
  std::string output;
  fs::create_directories(parent + "/not_a_run");
  EXPECT_EQ(RunReport(Quote(parent + "/not_a_run"), &output), 1);
  EXPECT_TRUE(absl::StrContains(output, parent + "/not_a_run/metrics.jsonl")) << output;

  const std::string run = testing::WriteRunDir(parent, {});
  testing::WriteFile(run + "/metrics.jsonl", "{\"kind\":\"config\",\"config\":{}}\n{oops\n{\"kind\":\"x\"}\n");
  output.clear();
  EXPECT_EQ(RunReport(Quote(run), &output), 1);
  EXPECT_TRUE(absl::StrContains(output, run + "/metrics.jsonl:2: not valid JSON")) << output;

  const std::string sweep = testing::WriteSweepDir(parent, "sweep", 3);
  testing::WriteFile(sweep + "/results.csv", "row,name,status,params,final_loss\n0,a,DONE,many,1.0\n");
  output.clear();
  EXPECT_EQ(RunReport(Quote(sweep), &output), 1);
  EXPECT_TRUE(absl::StrContains(output, sweep + "/results.csv:2: column params: 'many'")) << output;

  output.clear();
  EXPECT_EQ(RunReport(Quote(sweep) + " " + Quote(run), &output), 1);
  EXPECT_TRUE(absl::StrContains(output, "pass it alone")) << output;

  output.clear();
  EXPECT_EQ(RunReport("", &output), 2);
  EXPECT_TRUE(absl::StrContains(output, "usage: report")) << output;
}

}  // namespace
}  // namespace cf::report
