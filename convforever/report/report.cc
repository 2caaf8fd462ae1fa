#include "convforever/report/report.h"

#include <algorithm>
#include <filesystem>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "convforever/report/format.h"
#include "convforever/report/page.h"
#include "convforever/report/png_render.h"
#include "convforever/report/run_plots.h"
#include "convforever/report/svg_render.h"
#include "convforever/report/sweep.h"

namespace cf::report {
namespace {

namespace fs = std::filesystem;

void RunsTable(const std::vector<const RunData*>& runs, HtmlPage* page) {
  std::vector<std::string> header = {"run"};
  std::vector<bool> numeric = {false};
  std::vector<std::vector<std::string>> rows;
  for (const RunData* run : runs) {
    const auto facts = RunKeyFacts(*run);
    if (header.size() == 1) {
      for (const auto& [label, value] : facts) {
        header.push_back(label);
        numeric.push_back(label != "model" && label != "status" && label != "batch");
      }
    }
    std::vector<std::string> row = {run->name};
    for (const auto& [label, value] : facts) row.push_back(value.empty() ? "-" : value);
    rows.push_back(std::move(row));
  }
  page->Table(header, rows, numeric);
}

// Notes about what reading a run skipped or replaced.
void RunWarnings(const RunData& run, std::vector<std::string>* warnings) {
  if (run.metrics.torn_lines > 0) {
    warnings->push_back(absl::StrCat(run.dir, "/metrics.jsonl: skipped a torn last line (the writer stopped mid-line)"));
  }
  if (run.metrics.nonfinite_values > 0) {
    warnings->push_back(absl::StrCat(run.dir, "/metrics.jsonl: ", run.metrics.nonfinite_values,
                                     " non-finite values (not plotted), the first: ", run.metrics.first_nonfinite));
  }
  if (run.metrics.replaced_values > 0) {
    warnings->push_back(absl::StrCat(run.dir, "/metrics.jsonl: ", run.metrics.replaced_values,
                                     " values logged again for the same step (a resumed run); the last is shown"));
  }
}

struct PlotSink {
  const ReportOptions& options;
  std::string png_dir;
  HtmlPage* page;
  ReportResult* result;

  absl::Status Add(const Plot& plot) {
    page->RawSvg(RenderSvg(plot, options.svg_size));
    result->plot_ids.push_back(plot.id);
    if (!options.write_pngs) return absl::OkStatus();
    return WritePlotPng(plot, (fs::path(png_dir) / (plot.id + ".png")).string(), options.png_size);
  }
};

absl::Status SweepPage(const std::string& dir, PlotSink* sink, std::vector<std::string>* warnings) {
  HtmlPage& page = *sink->page;
  ASSIGN_OR_RETURN(SweepData sweep, LoadSweepDir(dir));
  ASSIGN_OR_RETURN(std::vector<ScalingPlot> scaling, ScalingPlots(sweep));
  for (const std::string& note : sweep.notes) warnings->push_back(note);

  page.Heading(2, "Scaling", "scaling");
  page.Paragraph(
      "Held-out loss and error (1 - top-1) of the DONE rows against parameters and training FLOPs, log-log. "
      "Fit: L = a * C^-b + c, least squares of log(L - c) on log C for c on a grid in [0, min L), refined by "
      "Levenberg-Marquardt steps; needs at least 3 distinct x values.",
      "meta");
  std::vector<std::vector<std::string>> fit_rows;
  for (const ScalingPlot& s : scaling) {
    RETURN_IF_ERROR(sink->Add(s.plot));
    if (s.fit) {
      fit_rows.push_back({s.plot.title, std::to_string(s.points), FormatSig(s.fit->a, 5), FormatSig(s.fit->b, 5),
                          FormatSig(s.fit->c, 5), FormatSig(s.fit->rms_log_residual, 3), s.fit_status});
    } else {
      fit_rows.push_back({s.plot.title, std::to_string(s.points), "-", "-", "-", "-", s.fit_status});
    }
  }
  page.Heading(3, "Fits");
  page.Table({"plot", "points", "a", "b", "c", "rms log residual", "fit"}, fit_rows,
             {false, true, true, true, true, true, false});

  page.Heading(2, "Results (results.csv)", "results");
  std::vector<bool> numeric;
  for (const std::string& column : sweep.results.header) {
    numeric.push_back(column != "name" && column != "status");
  }
  page.Table(sweep.results.header, sweep.results.rows, numeric);

  page.Heading(2, "Runs (DONE rows)", "runs");
  std::vector<const RunData*> runs;
  for (const RunData& run : sweep.runs) {
    runs.push_back(&run);
    RunWarnings(run, warnings);
  }
  if (runs.empty()) {
    page.Paragraph("No DONE row has a readable run directory: no curves.", "warn");
    return absl::OkStatus();
  }
  RunsTable(runs, &page);
  for (const Plot& plot : RunPlots(runs, "runs_")) RETURN_IF_ERROR(sink->Add(plot));
  return absl::OkStatus();
}

absl::Status RunsPage(const std::vector<std::string>& dirs, PlotSink* sink, std::vector<std::string>* warnings) {
  std::vector<RunData> loaded;
  for (const std::string& dir : dirs) {
    ASSIGN_OR_RETURN(RunData run, LoadRunDir(dir));
    loaded.push_back(std::move(run));
  }
  std::vector<const RunData*> runs;
  for (const RunData& run : loaded) {
    runs.push_back(&run);
    RunWarnings(run, warnings);
    const bool lr_finder_only = run.lr_finder && run.metrics.config_records == 0 && run.metrics.metrics_records == 0;
    if (!run.summary && !lr_finder_only) {
      warnings->push_back(absl::StrCat(run.dir, ": no summary.json (run unfinished or killed); final numbers are the "
                                       "last ones in metrics.jsonl"));
    }
  }
  sink->page->Heading(2, "Runs", "runs");
  RunsTable(runs, sink->page);
  sink->page->Heading(2, "Curves", "curves");
  for (const Plot& plot : RunPlots(runs)) RETURN_IF_ERROR(sink->Add(plot));
  return absl::OkStatus();
}

std::string DefaultTitle(const ReportOptions& options, bool sweep) {
  std::vector<std::string> names;
  for (const std::string& dir : options.dirs) {
    std::string trimmed = dir;
    while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
    names.push_back(fs::path(trimmed).filename().string());
  }
  return absl::StrCat(sweep ? "ConvForever sweep: " : "ConvForever runs: ", absl::StrJoin(names, ", "));
}

}  // namespace

absl::StatusOr<ReportResult> WriteReport(const ReportOptions& options) {
  if (options.dirs.empty()) return absl::InvalidArgumentError("no run or sweep directory given");
  ReportResult result;
  result.sweep = IsSweepDir(options.dirs[0]);
  for (size_t i = 0; i < options.dirs.size(); ++i) {
    if (IsSweepDir(options.dirs[i]) && options.dirs.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat(options.dirs[i],
                                                     " is a sweep directory (results.csv + runs/): pass it alone"));
    }
  }
  result.html_path = options.out.empty() ? (fs::path(options.dirs[0]) / "report.html").string() : options.out;
  fs::path stem = fs::path(result.html_path);
  stem.replace_extension();
  result.png_dir = stem.string() + "_plots";
  if (options.write_pngs) {
    std::error_code ec;
    fs::create_directories(result.png_dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", result.png_dir, ": ", ec.message()));
  }
  const std::string title = options.title.empty() ? DefaultTitle(options, result.sweep) : options.title;
  HtmlPage page(title);
  page.Heading(1, title);
  page.Paragraph(absl::StrCat(result.sweep ? "Sweep directory: " : "Run directories: ",
                              absl::StrJoin(options.dirs, ", "),
                              options.write_pngs ? absl::StrCat(". The plots as PNG files: ", result.png_dir) : ""),
                 "meta");
  PlotSink sink{options, result.png_dir, &page, &result};
  // The warnings go above the body, and are only known once it is built.
  HtmlPage body("");
  sink.page = &body;
  std::vector<std::string> warnings;
  if (result.sweep) {
    RETURN_IF_ERROR(SweepPage(options.dirs[0], &sink, &warnings));
  } else {
    RETURN_IF_ERROR(RunsPage(options.dirs, &sink, &warnings));
  }
  if (!warnings.empty()) page.List(warnings, "warn");
  result.warnings = warnings;
  page.Append(body);
  RETURN_IF_ERROR(base::WriteFileAtomically(result.html_path, page.Finish()));
  return result;
}

}  // namespace cf::report

namespace cf::report {

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> WriteRunPngs(
    const std::string& run_dir, const std::string& out_dir, PlotSize size) {
  ASSIGN_OR_RETURN(RunData run, LoadRunDir(run_dir));
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  std::vector<std::pair<std::string, std::string>> written;
  for (const Plot& plot : RunPlots({&run})) {
    const bool has_data = std::any_of(plot.series.begin(), plot.series.end(),
                                      [](const Series& s) { return !s.points.empty(); });
    if (!has_data) continue;
    const std::string file = plot.id + ".png";
    RETURN_IF_ERROR(WritePlotPng(plot, (fs::path(out_dir) / file).string(), size));
    written.emplace_back(plot.title, file);
  }
  return written;
}

}  // namespace cf::report
