// The per-run plots, one series per run and metric when several runs are shown together:
//   train_loss  train/loss and train/step_loss vs step
//   eval_loss   eval/loss and eval_ema/loss vs step (held-out)
//   top1        eval/top1 and eval_ema/top1 vs step
//   lr          train/lr vs step
//   throughput  train/images_per_sec vs step
//   lr_finder   loss and smoothed loss vs learning rate (log x), a marker at the suggested lr;
//               only when a run has lr_finder.csv
// Pure; thread-safe.
#ifndef CONVFOREVER_REPORT_RUN_PLOTS_H_
#define CONVFOREVER_REPORT_RUN_PLOTS_H_

#include <string>
#include <vector>

#include "convforever/report/plot.h"
#include "convforever/report/run_dir.h"

namespace cf::report {

// `id_prefix` is prepended to every plot id (a sweep page uses "runs_").
std::vector<Plot> RunPlots(const std::vector<const RunData*>& runs, const std::string& id_prefix = "");

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_RUN_PLOTS_H_
