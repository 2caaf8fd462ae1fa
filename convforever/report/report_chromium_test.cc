// Opens reports built by the `report` binary in headless Chromium (Debian's `chromium`) and checks,
// with the browser itself, what a reader's browser would do with the page:
//   * no console message (a script error, a blocked load: Chromium logs them as ":CONSOLE" lines
//     with --enable-logging=stderr);
//   * no network request made by the page (--log-net-log: no URL_REQUEST_START_JOB to http(s)/ws(s)
//     with a page initiator; the browser's own background requests have initiator "not an origin");
//   * every expected plot in the DOM Chromium built (--dump-dom: the <svg id="plot-..."> elements);
//   * a screenshot that is a real PNG of the requested size with content, kept in
//     $TEST_UNDECLARED_OUTPUTS_DIR.
// Each check is first shown to fail on a page made to break it (negative controls).
// Skipped without chromium; a failure under CI=true.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convforever/report/test_fixtures.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"

namespace cf::report {
namespace {

namespace fs = std::filesystem;

constexpr char kReport[] = "convforever/report/report";  // runfiles-relative

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs `command` through the shell; stdout into `out` (may be null), returns the exit status.
int Shell(const std::string& command, std::string* out = nullptr) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) {
    if (out != nullptr) out->append(buf, n);
  }
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string FindChromium() {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    for (const char* name : {"chromium", "chromium-browser"}) {
      const std::string candidate = absl::StrCat(dir, "/", name);
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "";
}

struct Browse {
  int status = -1;
  std::string dom;     // --dump-dom output
  std::string log;     // stderr
  std::string netlog;  // path of the net log
};

class Chromium {
 public:
  explicit Chromium(std::string binary) : binary_(std::move(binary)), work_(testing::MakeTempDir("chromium")) {}

  // Loads `html` (a file) and dumps the DOM, with the console on stderr and a net log.
  Browse DumpDom(const std::string& html) {
    Browse b;
    const std::string tag = std::to_string(runs_++);
    b.netlog = absl::StrCat(work_, "/netlog", tag, ".json");
    const std::string err = absl::StrCat(work_, "/stderr", tag, ".txt");
    b.status = Shell(absl::StrCat(Command(tag), " --log-net-log=", Quote(b.netlog), " --dump-dom ",
                                  Quote("file://" + fs::absolute(html).string()), " 2>", Quote(err)),
                     &b.dom);
    b.log = Read(err);
    return b;
  }

  int Screenshot(const std::string& html, const std::string& png, std::string* log) {
    const std::string tag = std::to_string(runs_++);
    const std::string err = absl::StrCat(work_, "/stderr", tag, ".txt");
    const int status = Shell(absl::StrCat(Command(tag), " --screenshot=", Quote(png), " --window-size=1280,4000 ",
                                          Quote("file://" + fs::absolute(html).string()), " 2>", Quote(err)));
    *log = Read(err);
    return status;
  }

  const std::string& work() const { return work_; }

 private:
  std::string Command(const std::string& tag) const {
    // A fresh profile each time; --no-sandbox because tests run as root; background services off
    // (their requests would be the browser's, not the page's, but there is no need for them).
    const std::string profile = absl::StrCat(work_, "/profile", tag);
    return absl::StrCat("HOME=", Quote(work_), " timeout 180 ", Quote(binary_),
                        " --headless --no-sandbox --disable-gpu --no-first-run --no-default-browser-check"
                        " --disable-background-networking --disable-component-update --disable-sync"
                        " --disable-extensions --disable-default-apps --enable-logging=stderr --v=0"
                        " --user-data-dir=",
                        Quote(profile));
  }

  std::string binary_;
  std::string work_;
  int runs_ = 0;
};

// The console lines Chromium printed (script errors, blocked loads, console.* calls).
std::vector<std::string> ConsoleLines(const std::string& log) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, ":CONSOLE")) lines.emplace_back(line);
  }
  return lines;
}

// URLs the page asked for over the network (see the file comment); an error string when the net
// log cannot be read.
std::vector<std::string> PageNetworkRequests(const std::string& netlog_path, std::string* error) {
  std::vector<std::string> urls;
  const std::string text = Read(netlog_path);
  nlohmann::json log = nlohmann::json::parse(text, nullptr, false);
  if (log.is_discarded() || !log.contains("constants") || !log.contains("events")) {
    *error = absl::StrCat("cannot read the net log ", netlog_path, " (", text.size(), " bytes)");
    return urls;
  }
  const auto& types = log["constants"]["logEventTypes"];
  if (!types.contains("URL_REQUEST_START_JOB")) {
    *error = "the net log has no URL_REQUEST_START_JOB event type";
    return urls;
  }
  const int start_job = types["URL_REQUEST_START_JOB"].get<int>();
  for (const auto& event : log["events"]) {
    if (event.value("type", -1) != start_job || !event.contains("params")) continue;
    const auto& params = event["params"];
    const std::string url = params.value("url", "");
    const std::string initiator = params.value("initiator", "");
    const bool network = absl::StartsWith(url, "http:") || absl::StartsWith(url, "https:") ||
                         absl::StartsWith(url, "ws:") || absl::StartsWith(url, "wss:");
    if (network && initiator != "not an origin") urls.push_back(url + " (initiator " + initiator + ")");
  }
  return urls;
}

// The ids of the plot <svg> elements in a DOM dump.
std::multiset<std::string> PlotIds(const std::string& dom) {
  std::multiset<std::string> ids;
  static const std::regex kSvg("<svg[^>]*\\bid=\"plot-([a-z0-9_]+)\"");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), kSvg); it != std::sregex_iterator(); ++it) {
    ids.insert((*it)[1].str());
  }
  return ids;
}

std::string OutputsDir() {
  const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  return dir != nullptr ? dir : testing::MakeTempDir("outputs");
}

class ReportInChromium : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = FindChromium();
    if (binary_.empty()) {
      const char* ci = std::getenv("CI");
      ASSERT_FALSE(ci != nullptr && std::string(ci) == "true")
          << "no chromium on PATH (Debian package `chromium`; tools/cf setup)";
      GTEST_SKIP() << "no chromium on PATH (apt-get install chromium); needs a real browser";
    }
  }

  // Builds a report with the binary; returns the HTML path.
  std::string BuildReport(const std::string& args, const std::string& out) {
    std::string output;
    const int status = Shell(absl::StrCat(kReport, " ", args, " --out ", Quote(out), " 2>&1"), &output);
    EXPECT_EQ(status, 0) << output;
    return out;
  }

  // All four checks on one report page.
  void CheckPage(const std::string& html, const std::set<std::string>& expected_plots, const std::string& shot_name) {
    Chromium chromium(binary_);
    const Browse b = chromium.DumpDom(html);
    ASSERT_EQ(b.status, 0) << b.log;
    ASSERT_TRUE(absl::StrContains(b.dom, "</html>")) << "no DOM dumped:\n" << b.log;
    EXPECT_TRUE(ConsoleLines(b.log).empty()) << absl::StrJoin(ConsoleLines(b.log), "\n");
    std::string error;
    const auto requests = PageNetworkRequests(b.netlog, &error);
    EXPECT_TRUE(error.empty()) << error;
    EXPECT_TRUE(requests.empty()) << absl::StrJoin(requests, "\n");
    const std::multiset<std::string> ids = PlotIds(b.dom);
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), expected_plots);
    EXPECT_EQ(ids.size(), expected_plots.size()) << "a plot id appears twice";

    const std::string png = OutputsDir() + "/" + shot_name;
    std::string log;
    ASSERT_EQ(chromium.Screenshot(html, png, &log), 0) << log;
    const std::string bytes = Read(png);
    ASSERT_GT(bytes.size(), 20000u) << png << ": a trivial image";
    EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    const cv::Mat image = cv::imread(png, cv::IMREAD_GRAYSCALE);
    ASSERT_FALSE(image.empty()) << png << " does not decode";
    EXPECT_EQ(image.cols, 1280);
    EXPECT_EQ(image.rows, 4000);
    cv::Scalar mean, stddev;
    cv::meanStdDev(image, mean, stddev);
    EXPECT_GT(stddev[0], 10) << "the screenshot is (nearly) one color";
  }

  std::string binary_;
};

TEST_F(ReportInChromium, ConsoleCheckCatchesAScriptError) {
  Chromium chromium(binary_);
  const std::string page = chromium.work() + "/bad_script.html";
  testing::WriteFile(page, "<!DOCTYPE html><html><body><p>x</p><script>notDefinedAnywhere();</script></body></html>\n");
  const Browse b = chromium.DumpDom(page);
  ASSERT_EQ(b.status, 0) << b.log;
  const auto lines = ConsoleLines(b.log);
  ASSERT_FALSE(lines.empty()) << "the console check saw nothing:\n" << b.log;
  EXPECT_TRUE(absl::StrContains(lines[0], "notDefinedAnywhere")) << lines[0];
}

TEST_F(ReportInChromium, NetworkCheckCatchesAnImageFromTheNetwork) {
  Chromium chromium(binary_);
  const std::string page = chromium.work() + "/remote_image.html";
  testing::WriteFile(page, "<!DOCTYPE html><html><body><img src=\"http://127.0.0.1:9/x.png\"></body></html>\n");
  const Browse b = chromium.DumpDom(page);
  ASSERT_EQ(b.status, 0) << b.log;
  std::string error;
  const auto requests = PageNetworkRequests(b.netlog, &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(requests.size(), 1u) << absl::StrJoin(requests, "\n");
  EXPECT_TRUE(absl::StartsWith(requests[0], "http://127.0.0.1:9/x.png")) << requests[0];
}

TEST_F(ReportInChromium, PlotCountCatchesAMissingPlot) {
  Chromium chromium(binary_);
  const std::string page = chromium.work() + "/one_plot.html";
  testing::WriteFile(page, "<!DOCTYPE html><html><body><svg id=\"plot-train_loss\"></svg><svg id=\"other\"></svg>"
                           "</body></html>\n");
  const Browse b = chromium.DumpDom(page);
  ASSERT_EQ(b.status, 0) << b.log;
  EXPECT_EQ(PlotIds(b.dom), (std::multiset<std::string>{"train_loss"}));
}

TEST_F(ReportInChromium, RunsReport) {
  const std::string parent = testing::MakeTempDir("runs");
  testing::FixtureRun a;
  a.name = "<script>alert('x')<\\script> & <b>bold";  // a directory name: no '/'
  a.lr_finder = true;
  testing::FixtureRun b;
  b.name = "baseline";
  b.summary = false;
  b.final_loss = 0.8;
  const std::string dir_a = testing::WriteRunDir(parent, a), dir_b = testing::WriteRunDir(parent, b);
  const std::string html = BuildReport(Quote(dir_a) + " " + Quote(dir_b), parent + "/runs.html");
  CheckPage(html, {"train_loss", "eval_loss", "top1", "lr", "throughput", "lr_finder"}, "runs_report.png");
  // The hostile run name is text in the DOM Chromium built, not elements.
  Chromium chromium(binary_);
  const Browse page = chromium.DumpDom(html);
  EXPECT_FALSE(absl::StrContains(page.dom, "<script")) << "a script element";
  EXPECT_FALSE(absl::StrContains(page.dom, "<b>")) << "a b element";
  EXPECT_TRUE(absl::StrContains(page.dom, "<td>&lt;script&gt;alert('x')&lt;\\script&gt; &amp; &lt;b&gt;bold</td>"));
}

TEST_F(ReportInChromium, SweepReport) {
  const std::string sweep = testing::WriteSweepDir(testing::MakeTempDir("sweep"), "sweep", 5);
  const std::string html = BuildReport(Quote(sweep), sweep + "/report.html");
  CheckPage(html,
            {"loss_vs_params", "loss_vs_flops", "error_vs_params", "error_vs_flops", "runs_train_loss",
             "runs_eval_loss", "runs_top1", "runs_lr", "runs_throughput"},
            "sweep_report.png");
}

}  // namespace
}  // namespace cf::report
