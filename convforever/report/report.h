// The report: one self-contained HTML page (inline SVG and CSS, no script, no external reference)
// and a PNG per plot, from run directories or from one sweep directory.
//
// Runs: a header table of each run's key config and final numbers, then the per-run plots
// (run_plots.h) with one series per run. Sweep (results.csv + runs/): the scaling plots with their
// power-law fits (sweep.h), a table of the fits, the results.csv table, and the DONE runs' header
// table and curves. PNGs go to `<out without .html>_plots/<plot id>.png`. Thread-compatible.
#ifndef CONVFOREVER_REPORT_REPORT_H_
#define CONVFOREVER_REPORT_REPORT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/report/plot.h"

namespace cf::report {

struct ReportOptions {
  std::vector<std::string> dirs;  // run dirs, or a single sweep dir
  std::string out;                // default: <first dir>/report.html
  std::string title;              // default: from the dirs
  PlotSize svg_size{960, 460};
  PlotSize png_size{1200, 600};
  bool write_pngs = true;
};

struct ReportResult {
  std::string html_path;
  std::string png_dir;
  std::vector<std::string> plot_ids;  // every plot on the page (SVG id "plot-<id>"), in order
  std::vector<std::string> warnings;  // also shown on the page
  bool sweep = false;
};

// INVALID_ARGUMENT for bad options (no dir, a sweep dir among others); the loaders' errors (a run
// dir without metrics.jsonl, malformed files) as they are; INTERNAL naming the file that could not
// be written.
absl::StatusOr<ReportResult> WriteReport(const ReportOptions& options);

// One run's curves as PNGs for a model card: `<out_dir>/<plot id>.png` for each per-run plot
// (run_plots.h) that has data. Returns (plot title, file name) in page order. The loader's errors
// as they are; an error names the PNG that could not be written.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> WriteRunPngs(
    const std::string& run_dir, const std::string& out_dir, PlotSize size = {1200, 600});

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_REPORT_H_
