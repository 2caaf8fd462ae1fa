#include "convforever/plan/report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace cf::plan {
namespace {

std::string Params(int64_t p) {
  if (p >= 1000000000) return absl::StrFormat("%.2fB", p / 1e9);
  if (p >= 1000000) return absl::StrFormat("%.1fM", p / 1e6);
  return absl::StrFormat("%.1fK", p / 1e3);
}

std::string Hours(double seconds) {
  const double h = seconds / 3600.0;
  if (seconds < 60) return absl::StrFormat("%.1f s", seconds);
  if (h < 0.1) return absl::StrFormat("%.1f min", seconds / 60.0);
  return absl::StrFormat("%.1f h", h);
}

double Gb(double bytes) { return bytes / 1e9; }

}  // namespace

std::string FormatTable(const EstimateReport& r) {
  const std::vector<std::string> header = {"model", "depth", "params", "GMACs/img", "train PFLOPs",
                                           "wall time", "GPU-hours", "padding", "USD", "peak mem GB",
                                           "fits"};
  std::vector<std::vector<std::string>> cells = {header};
  for (const EstimateRow& row : r.rows) {
    std::string fits = "?";
    if (row.memory_known && r.memory_gb > 0) fits = row.fits ? "yes" : "NO";
    cells.push_back({row.model, row.depth > 0 ? absl::StrCat(row.depth) : "-", Params(row.params),
                     absl::StrFormat("%.3g", row.gmacs_per_image),
                     absl::StrFormat("%.3g", row.cost.train_flops / 1e15), Hours(row.cost.wall_seconds),
                     absl::StrFormat(row.cost.gpu_hours < 10 ? "%.3g" : "%.1f", row.cost.gpu_hours),
                     absl::StrFormat("+%.1f%%", 100 * row.cost.padding),
                     absl::StrFormat("%.2f", row.cost.usd),
                     row.memory_known ? absl::StrFormat("%.2f", Gb(row.memory.total)) : "?", fits});
  }
  std::vector<size_t> width(header.size(), 0);
  for (const auto& line : cells) {
    for (size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
  }
  std::string out = absl::StrFormat(
      "target: %d x %s, %s, micro-batch %d x accumulation %d, %d px; %d training images, %d eval "
      "images%s\n",
      r.gpus, r.gpu, r.precision, r.micro_batch, r.accumulation, r.image_size, r.train_samples,
      r.eval_images,
      r.memory_gb > 0 ? absl::StrFormat("; %.0f GB per GPU (fits = <= %.0f%%)", r.memory_gb,
                                        100 * kUsableMemoryFraction)
                      : "");
  absl::StrAppend(&out, "throughput: ", r.throughput, "\n");
  if (r.usd_per_hour > 0) absl::StrAppendFormat(&out, "price: $%.2f per GPU-hour\n", r.usd_per_hour);
  for (size_t l = 0; l < cells.size(); ++l) {
    std::string line;
    for (size_t i = 0; i < cells[l].size(); ++i) {
      // Text columns left-aligned, numbers right-aligned.
      const bool left = i == 0;
      absl::StrAppend(&line, i ? "  " : "",
                      left ? absl::StrFormat("%-*s", width[i], cells[l][i])
                           : absl::StrFormat("%*s", width[i], cells[l][i]));
    }
    absl::StrAppend(&out, line, "\n");
  }
  for (const std::string& note : r.notes) absl::StrAppend(&out, "note: ", note, "\n");
  return out;
}

std::string FormatJson(const EstimateReport& r) {
  nlohmann::json j;
  j["format"] = "convforever.estimate/1";
  j["target"] = {{"gpu", r.gpu},
                 {"gpus", r.gpus},
                 {"precision", r.precision},
                 {"peak_tflops", r.peak_tflops},
                 {"utilization", r.utilization},
                 {"usd_per_hour", r.usd_per_hour},
                 {"memory_gb", r.memory_gb}};
  j["throughput"] = r.throughput;
  j["train_samples"] = r.train_samples;
  j["eval_images"] = r.eval_images;
  j["micro_batch_size"] = r.micro_batch;
  j["gradient_accumulation_steps"] = r.accumulation;
  j["image_size"] = r.image_size;
  j["rows"] = nlohmann::json::array();
  for (const EstimateRow& row : r.rows) {
    const MemoryResult& m = row.memory;
    nlohmann::json memory = {{"weights_gb", Gb(m.weights)},   {"gradients_gb", Gb(m.gradients)},
                             {"optimizer_gb", Gb(m.optimizer_state)}, {"master_gb", Gb(m.master)},
                             {"ema_gb", Gb(m.ema)},           {"activations_gb", Gb(m.activations)},
                             {"total_gb", Gb(m.total)},       {"method", row.memory_method}};
    nlohmann::json fits = nullptr;
    if (row.memory_known && r.memory_gb > 0) fits = row.fits;
    j["rows"].push_back({{"model", row.model},
                         {"depth", row.depth},
                         {"params", row.params},
                         {"gmacs_per_image", row.gmacs_per_image},
                         {"train_pflops", row.cost.train_flops / 1e15},
                         {"eval_pflops", row.cost.eval_flops / 1e15},
                         {"train_hours", row.cost.train_seconds / 3600},
                         {"eval_hours", row.cost.eval_seconds / 3600},
                         {"startup_seconds", row.cost.startup_seconds},
                         {"padding", row.cost.padding},
                         {"wall_hours", row.cost.wall_seconds / 3600},
                         {"gpu_hours", row.cost.gpu_hours},
                         {"usd", row.cost.usd},
                         {"memory", row.memory_known ? memory : nlohmann::json(nullptr)},
                         {"fits", fits}});
  }
  j["notes"] = r.notes;
  return j.dump(2) + "\n";
}

}  // namespace cf::plan
