#include "convforever/report/sweep.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/report/format.h"

namespace cf::report {
namespace {

namespace fs = std::filesystem;

struct Quantity {
  const char* id;
  const char* label;
  const char* column;
  bool error_from_top1 = false;  // y = 1 - column
};

absl::StatusOr<std::optional<double>> Value(const CsvTable& table, size_t row, const Quantity& q) {
  ASSIGN_OR_RETURN(std::optional<double> v, table.Number(row, q.column));
  if (v && q.error_from_top1) *v = 1 - *v;
  return v;
}

absl::StatusOr<ScalingPlot> OneScalingPlot(const CsvTable& table, const Quantity& x, const Quantity& y) {
  ScalingPlot out;
  out.x_name = x.label;
  out.y_name = y.label;
  Plot& plot = out.plot;
  plot.id = absl::StrCat(y.id, "_vs_", x.id);
  plot.title = absl::StrCat(y.label, " vs ", x.label);
  plot.x = {x.label, Scale::kLog10};
  plot.y = {y.label, Scale::kLog10};
  std::vector<double> xs, ys;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    if (table.Field(r, "status") != "DONE") continue;
    ASSIGN_OR_RETURN(std::optional<double> xv, Value(table, r, x));
    ASSIGN_OR_RETURN(std::optional<double> yv, Value(table, r, y));
    if (!xv || !yv) continue;
    xs.push_back(*xv);
    ys.push_back(*yv);
  }
  out.points = static_cast<int>(xs.size());
  Series runs{absl::StrCat("runs (", xs.size(), ")"), {}, SeriesStyle::kMarkers, 0};
  for (size_t i = 0; i < xs.size(); ++i) runs.points.push_back({xs[i], ys[i]});
  std::sort(runs.points.begin(), runs.points.end(), [](const Point& a, const Point& b) { return a.x < b.x; });
  plot.series.push_back(std::move(runs));
  plot.empty_message = absl::StrCat("no data: no DONE row with both ", x.column, " and ", y.column);
  auto fit = FitPowerLaw(xs, ys);
  if (!fit.ok()) {
    out.fit_status = absl::StrCat("no fit: ", fit.status().message());
    plot.notes.push_back("no fit (see the page)");
    return out;
  }
  out.fit = *fit;
  out.fit_status = fit->Formula(x.id == std::string("params") ? "N" : "C");
  Series curve{"fit: a*x^-b + c", {}, SeriesStyle::kDashedLine, 3};
  const double lo = *std::min_element(xs.begin(), xs.end()), hi = *std::max_element(xs.begin(), xs.end());
  const int n = 200;
  for (int i = 0; i <= n; ++i) {
    const double v = std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * i / n);
    curve.points.push_back({v, (*fit)(v)});
  }
  plot.series.push_back(std::move(curve));
  plot.notes.push_back("a = " + FormatSig(fit->a, 4));
  plot.notes.push_back("b = " + FormatSig(fit->b, 4));
  plot.notes.push_back("c = " + FormatSig(fit->c, 4));
  return out;
}

}  // namespace

bool IsSweepDir(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / "results.csv", ec) && fs::is_directory(fs::path(dir) / "runs", ec);
}

absl::StatusOr<SweepData> LoadSweepDir(const std::string& dir) {
  SweepData sweep;
  sweep.dir = dir;
  const std::string path = (fs::path(dir) / "results.csv").string();
  ASSIGN_OR_RETURN(sweep.results, ReadCsv(path));
  for (const char* column : {"name", "status"}) {
    if (sweep.results.Column(column) < 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":1: no column \"", column, "\" in the header"));
    }
  }
  for (size_t r = 0; r < sweep.results.rows.size(); ++r) {
    if (sweep.results.Field(r, "status") != "DONE") continue;
    const std::string& name = sweep.results.Field(r, "name");
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      sweep.notes.push_back(absl::StrCat(path, ":", sweep.results.row_lines[r], ": run name '", name,
                                         "' is not a directory name; its curves are not shown"));
      continue;
    }
    auto run = LoadRunDir((fs::path(dir) / "runs" / name).string());
    if (!run.ok()) {
      sweep.notes.push_back(absl::StrCat("row ", sweep.results.row_lines[r] - 1, " (", name, "): ", run.status().message()));
      continue;
    }
    sweep.runs.push_back(*std::move(run));
  }
  return sweep;
}

absl::StatusOr<std::vector<ScalingPlot>> ScalingPlots(const SweepData& sweep) {
  const Quantity params{"params", "parameters", "params"};
  const Quantity flops{"flops", "training FLOPs", "train_flops"};
  const Quantity loss{"loss", "held-out loss", "final_loss"};
  const Quantity error{"error", "held-out error (1 - top-1)", "final_top1", true};
  std::vector<ScalingPlot> plots;
  for (const Quantity* y : {&loss, &error}) {
    for (const Quantity* x : {&params, &flops}) {
      ASSIGN_OR_RETURN(ScalingPlot plot, OneScalingPlot(sweep.results, *x, *y));
      plots.push_back(std::move(plot));
    }
  }
  return plots;
}

}  // namespace cf::report
