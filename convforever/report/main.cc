// report: one self-contained HTML page (and a PNG per plot) from training run directories or a
// sweep directory (wired as `tools/cf report`).
//
//   report RUN_DIR... | SWEEP_DIR [--out FILE.html] [--title T]
//
// The page goes to --out (default <first dir>/report.html), the PNGs to <out stem>_plots/.
// Exit status: 0 written, 1 failed (a one-line reason on stderr), 2 bad usage.
#include <iostream>
#include <string>
#include <vector>

#include "convforever/base/cli_help.h"
#include "convforever/report/report.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

DEFINE_string(out, "", "the HTML file to write (default: <first dir>/report.html)");
DEFINE_string(title, "", "page title (default: from the directory names)");

namespace {

constexpr char kUsage[] = "usage: report RUN_DIR... | SWEEP_DIR [--out FILE.html] [--title T]";

}  // namespace

int main(int argc, char** argv) {
  if (cf::base::PrintHelpIfAsked(argc, argv, kUsage, "convforever/report/main.cc")) return 0;
  gflags::SetUsageMessage(kUsage);
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  cf::report::ReportOptions options;
  for (int i = 1; i < argc; ++i) options.dirs.push_back(argv[i]);
  if (options.dirs.empty()) {
    std::cerr << kUsage << "\n";
    return 2;
  }
  options.out = FLAGS_out;
  options.title = FLAGS_title;
  auto result = cf::report::WriteReport(options);
  if (!result.ok()) {
    std::cerr << "report: " << result.status().message() << "\n";
    return 1;
  }
  for (const std::string& warning : result->warnings) std::cerr << "report: warning: " << warning << "\n";
  std::cout << result->html_path << " (" << result->plot_ids.size() << " plots; PNGs in " << result->png_dir << ")\n";
  return 0;
}
