#include "convforever/train/summary.h"

#include <algorithm>
#include <numeric>

#include "convforever/train/metrics.h"

namespace cf::train {
namespace {

nlohmann::json EvalJson(const EvalResult& eval) {
  return {{"loss", JsonNumberOrString(eval.loss)},
          {"top1", JsonNumberOrString(eval.top1)},
          {"top5", JsonNumberOrString(eval.top5)},
          {"samples", eval.samples}};
}

}  // namespace

nlohmann::json RunSummaryJson(const TrainerOptions& o, const TrainResult& r) {
  const double flops_per_mac = o.gradient_checkpointing ? 8.0 : 6.0;
  const double train_flops = flops_per_mac * r.gmacs_per_image * 1e9 * static_cast<double>(r.samples_seen);
  nlohmann::json j = {
      {"format", kRunSummaryFormat},
      {"completed", !r.stopped_by_signal && r.steps >= r.total_steps},
      {"stopped_by_signal", r.stopped_by_signal},
      {"model", o.model},
      {"depth", o.depth},
      {"params", r.params},
      {"image_size", o.image_size},
      {"gmacs_per_image", r.gmacs_per_image},
      {"micro_batch_size", o.micro_batch_size},
      {"gradient_accumulation_steps", o.gradient_accumulation_steps},
      {"world_size", r.world_size},
      {"steps", r.steps},
      {"total_steps", r.total_steps},
      {"samples_seen", r.samples_seen},
      {"train_flops", train_flops},
      {"wall_seconds", r.train_seconds},
      {"images_per_sec", r.train_seconds > 0 ? r.samples_seen / r.train_seconds : 0.0},
      {"final_eval", EvalJson(r.final_eval)},
      {"best_top1", JsonNumberOrString(r.best_top1)},
      {"final_train_loss", nullptr},
  };
  if (o.time_budget_s > 0 || r.budget_plan) {
    // The plan the run followed; none when the cap ended the run before the plan was made.
    j["time_budget"] = r.budget_plan ? BudgetPlanJson(*r.budget_plan) : nlohmann::json::object();
    j["time_budget"]["budget_seconds"] = r.budget_plan ? r.budget_plan->budget_seconds : o.time_budget_s;
    j["time_budget"]["planned"] = r.budget_plan.has_value();
  }
  if (r.final_eval_ema.samples > 0) j["final_eval_ema"] = EvalJson(r.final_eval_ema);
  if (!r.comm_bytes.empty()) {
    nlohmann::json by_kind = nlohmann::json::object();
    int64_t sent = 0, received = 0, ring_sent = 0, ring_received = 0;
    for (const TrainResult::CommBytes& c : r.comm_bytes) {
      by_kind[c.kind] = {{"payload_sent_bytes", c.payload_sent},
                         {"payload_received_bytes", c.payload_received},
                         {"ring_sent_bytes", c.ring_sent},
                         {"ring_received_bytes", c.ring_received},
                         {"collectives", c.collectives}};
      sent += c.payload_sent;
      received += c.payload_received;
      ring_sent += c.ring_sent;
      ring_received += c.ring_received;
    }
    j["communication"] = {{"sync", o.sync},
                          {"payload_sent_bytes", sent},
                          {"payload_received_bytes", received},
                          {"ring_sent_bytes", ring_sent},
                          {"ring_received_bytes", ring_received},
                          {"by_kind", by_kind}};
  }
  if (!r.step_losses.empty()) {
    const size_t n = std::min<size_t>(50, r.step_losses.size());
    const double sum = std::accumulate(r.step_losses.end() - n, r.step_losses.end(), 0.0);
    j["final_train_loss"] = JsonNumberOrString(sum / n);
  }
  return j;
}

}  // namespace cf::train
