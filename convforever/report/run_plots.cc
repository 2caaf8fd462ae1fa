#include "convforever/report/run_plots.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "convforever/report/format.h"

namespace cf::report {
namespace {

struct MetricSpec {
  const char* name;  // scalar in metrics.jsonl
  double scale = 1;  // top-1 fractions are shown as percent
};

Plot StepPlot(const std::vector<const RunData*>& runs, const std::string& id, const std::string& title,
              const std::string& y_label, const std::vector<MetricSpec>& metrics) {
  Plot plot;
  plot.id = id;
  plot.title = title;
  plot.x.label = "step";
  plot.y.label = y_label;
  std::string names;
  for (const MetricSpec& m : metrics) absl::StrAppend(&names, names.empty() ? "" : ", ", m.name);
  plot.empty_message = absl::StrCat("no data: no ", names, " records");
  const bool several = runs.size() > 1;
  for (size_t r = 0; r < runs.size(); ++r) {
    for (size_t m = 0; m < metrics.size(); ++m) {
      const std::vector<StepValue>& values = runs[r]->metrics.Series(metrics[m].name);
      if (values.empty()) continue;
      Series series;
      // The metric first: legend entries are cut to a fixed length, and run names can be long.
      series.name = several ? absl::StrCat(metrics[m].name, " (", runs[r]->name, ")") : metrics[m].name;
      // Several runs: a color per run, the metric told by the line style; one run: a color per metric.
      series.color = static_cast<int>(several ? r : m);
      series.style = several && m > 0 ? SeriesStyle::kDashedLine : SeriesStyle::kLine;
      series.points.reserve(values.size());
      for (const StepValue& v : values) series.points.push_back({static_cast<double>(v.step), v.value * metrics[m].scale});
      plot.series.push_back(std::move(series));
    }
  }
  return plot;
}

Plot LrFinderPlot(const std::vector<const RunData*>& runs, const std::string& id) {
  Plot plot;
  plot.id = id;
  plot.title = "LR finder: loss vs learning rate";
  plot.x = {"learning rate", Scale::kLog10};
  plot.y.label = "loss";
  const bool several = runs.size() > 1;
  int color = 0;
  for (const RunData* run : runs) {
    if (!run->lr_finder) continue;
    const LrFinder& finder = *run->lr_finder;
    const std::string of_run = several ? " (" + run->name + ")" : "";
    Series loss{"loss" + of_run, {}, SeriesStyle::kLine, color};
    Series smoothed{"smoothed loss" + of_run, {}, SeriesStyle::kLine, several ? color : color + 1};
    if (several) smoothed.style = SeriesStyle::kDashedLine;
    for (const LrFinderRow& row : finder.rows) {
      loss.points.push_back({row.lr, row.loss});
      smoothed.points.push_back({row.lr, row.smoothed_loss});
    }
    // The loss explodes past the useful range: show up to 1.5x the starting loss.
    if (!finder.rows.empty()) {
      const double start = std::isfinite(finder.rows.front().smoothed_loss) ? finder.rows.front().smoothed_loss
                                                                           : finder.rows.front().loss;
      if (start > 0) plot.y_max = std::isfinite(plot.y_max) ? std::max(plot.y_max, 1.5 * start) : 1.5 * start;
    }
    plot.series.push_back(std::move(loss));
    plot.series.push_back(std::move(smoothed));
    if (finder.suggested_lr) {
      // The value first, as for the series.
      plot.vertical_lines.push_back({*finder.suggested_lr, "suggested " + FormatSig(*finder.suggested_lr, 3) + of_run});
      plot.notes.push_back("suggested lr = " + FormatSig(*finder.suggested_lr, 4) + of_run);
    }
    if (finder.diverged.value_or(false)) plot.notes.push_back("diverged" + of_run);
    color += several ? 1 : 2;
  }
  plot.empty_message = "no data: lr_finder.csv has no rows";
  return plot;
}

}  // namespace

std::vector<Plot> RunPlots(const std::vector<const RunData*>& runs, const std::string& id_prefix) {
  std::vector<Plot> plots;
  plots.push_back(StepPlot(runs, id_prefix + "train_loss", "Training loss", "loss",
                           {{"train/loss"}, {"train/step_loss"}}));
  plots.push_back(StepPlot(runs, id_prefix + "eval_loss", "Held-out loss", "loss", {{"eval/loss"}, {"eval_ema/loss"}}));
  plots.push_back(StepPlot(runs, id_prefix + "top1", "Held-out top-1 accuracy", "top-1 (%)",
                           {{"eval/top1", 100}, {"eval_ema/top1", 100}}));
  plots.push_back(StepPlot(runs, id_prefix + "lr", "Learning rate", "learning rate", {{"train/lr"}}));
  plots.push_back(StepPlot(runs, id_prefix + "throughput", "Throughput", "images/s", {{"train/images_per_sec"}}));
  bool any_finder = false;
  for (const RunData* run : runs) any_finder |= run->lr_finder.has_value();
  if (any_finder) plots.push_back(LrFinderPlot(runs, id_prefix + "lr_finder"));
  return plots;
}

}  // namespace cf::report
