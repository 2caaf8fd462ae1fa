// The estimator's output: one row per model configuration (e.g. per --depths entry), as an
// aligned text table for people and as JSON for tools (the sweep runner's --dry_run).
//
// JSON: {"format":"convforever.estimate/1","target":{"gpu":str,"gpus":int,"precision":str,
// "peak_tflops":f (0 for local),"utilization":f,"usd_per_hour":f,"memory_gb":f (0: unknown)},
// "throughput":str (how throughput was obtained),"train_samples":int,"eval_images":int,
// "micro_batch_size":int,"gradient_accumulation_steps":int,"image_size":int,
// "rows":[{"model":str,"depth":int,"params":int,"gmacs_per_image":f,"train_pflops":f,
// "eval_pflops":f,"train_hours":f,"eval_hours":f,"startup_seconds":f,"padding":f,
// "wall_hours":f,"gpu_hours":f,"usd":f,"memory":{"weights_gb":f,"gradients_gb":f,
// "optimizer_gb":f,"master_gb":f,"ema_gb":f,"activations_gb":f,"total_gb":f,"method":str},
// "fits":bool|null}],"notes":[str]}. Hours are wall-clock; gpu_hours = wall_hours x gpus.
// Thread-safe: pure functions.
#ifndef CONVFOREVER_PLAN_REPORT_H_
#define CONVFOREVER_PLAN_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "convforever/plan/estimate.h"
#include "convforever/plan/memory.h"

namespace cf::plan {

struct EstimateRow {
  std::string model;
  int depth = 0;                  // 0 when the model has no depth setting
  int64_t params = 0;
  double gmacs_per_image = 0;     // forward, one image at the training size
  CostResult cost;
  MemoryResult memory;
  std::string memory_method;      // "analytic" or "measured"
  bool memory_known = false;
  bool fits = false;              // meaningful when memory_known and the GPU's memory is known
};

struct EstimateReport {
  std::string gpu;                // table name or "local"
  int gpus = 1;
  std::string precision;
  double peak_tflops = 0;
  double utilization = 0;
  double usd_per_hour = 0;
  double memory_gb = 0;           // per GPU; 0 = unknown (local CPU)
  std::string throughput;         // e.g. "datasheet 165.2 TFLOPS x utilisation 0.30 (assumed)"
  int64_t train_samples = 0;
  int64_t eval_images = 0;
  int64_t micro_batch = 0;
  int64_t accumulation = 1;
  int64_t image_size = 0;
  std::vector<EstimateRow> rows;
  std::vector<std::string> notes;
};

std::string FormatTable(const EstimateReport& report);
std::string FormatJson(const EstimateReport& report);

}  // namespace cf::plan

#endif  // CONVFOREVER_PLAN_REPORT_H_
