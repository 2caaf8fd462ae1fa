#include "convforever/report/test_fixtures.h"

#include <stdlib.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace cf::report::testing {

namespace fs = std::filesystem;

std::string MakeTempDir(const std::string& prefix) {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(root ? root : "/tmp") + "/" + prefix + "_XXXXXX";
  CHECK(mkdtemp(tmpl.data()) != nullptr) << tmpl;
  return tmpl;
}

void WriteFile(const std::string& path, const std::string& contents) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << contents;
  CHECK(out.good()) << path;
}

std::string WriteRunDir(const std::string& parent, const FixtureRun& run) {
  const std::string dir = (fs::path(parent) / run.name).string();
  fs::create_directories(dir);
  std::string jsonl;
  nlohmann::ordered_json config = {{"kind", "config"},
                                   {"wall_time", 1.7e9},
                                   {"config",
                                    {{"model", run.model},
                                     {"depth", std::to_string(run.depth)},
                                     {"lr", absl::StrCat(run.lr)},
                                     {"micro_batch_size", "128"},
                                     {"gradient_accumulation_steps", "1"},
                                     {"max_steps", std::to_string(run.steps)},
                                     {"run_dir", dir}}}};
  jsonl += config.dump() + "\n";
  const int warmup = std::max(1, run.steps / 10);
  for (int step = run.log_every; step <= run.steps; step += run.log_every) {
    const double t = static_cast<double>(step) / run.steps;
    const double loss = run.final_loss + 2.0 * std::exp(-4 * t);
    const double lr = step < warmup ? run.lr * step / warmup
                                    : run.lr * 0.5 * (1 + std::cos(M_PI * (step - warmup) / (run.steps - warmup)));
    nlohmann::ordered_json m = {{"kind", "metrics"},
                                {"step", step},
                                {"wall_time", 1.7e9 + step},
                                {"train/loss", loss},
                                {"train/step_loss", loss + 0.05 * std::sin(step)},
                                {"train/lr", lr},
                                {"train/grad_norm", 1.0},
                                {"train/epoch", t},
                                {"train/images_per_sec", 1000 + 50 * std::sin(step / 7.0)},
                                {"data/images_per_sec", 5000}};
    jsonl += m.dump() + "\n";
    if (step % run.eval_every == 0) {
      nlohmann::ordered_json e = {{"kind", "metrics"},
                                  {"step", step},
                                  {"wall_time", 1.7e9 + step + 0.5},
                                  {"eval/loss", loss + 0.1},
                                  {"eval/top1", 0.9 - 0.5 * std::exp(-4 * t)},
                                  {"eval/top5", 0.99}};
      if (run.ema) {
        e["eval_ema/loss"] = loss + 0.08;
        e["eval_ema/top1"] = 0.91 - 0.5 * std::exp(-4 * t);
        e["eval_ema/top5"] = 0.99;
      }
      jsonl += e.dump() + "\n";
    }
    if (step % 50 == 0) jsonl += R"({"kind":"system","wall_time":1.7e9,"cpu/utilization":50})" "\n";
  }
  WriteFile(dir + "/metrics.jsonl", jsonl);
  if (run.summary) {
    const double final_loss = run.final_loss + 2.0 * std::exp(-4.0);
    nlohmann::ordered_json s = {
        {"format", "convforever.summary/1"}, {"completed", true},     {"stopped_by_signal", false},
        {"model", run.model},                {"depth", run.depth},    {"params", 1.5e6},
        {"image_size", 28},                  {"gmacs_per_image", 0.1}, {"micro_batch_size", 128},
        {"gradient_accumulation_steps", 1}, {"world_size", 1},        {"steps", run.steps},
        {"total_steps", run.steps},          {"samples_seen", run.steps * 128},
        {"train_flops", 6 * 0.1e9 * run.steps * 128},
        {"wall_seconds", 12.5},              {"images_per_sec", 1000.0},
        {"final_eval", {{"loss", final_loss + 0.1}, {"top1", 0.89}, {"top5", 0.99}, {"samples", 10000}}},
        {"best_top1", 0.895},                {"final_train_loss", final_loss}};
    if (run.ema) s["final_eval_ema"] = {{"loss", final_loss + 0.08}, {"top1", 0.9}, {"top5", 0.99}, {"samples", 10000}};
    WriteFile(dir + "/summary.json", s.dump(2) + "\n");
  }
  if (run.lr_finder) {
    std::string csv = "step,lr,loss,smoothed_loss\n";
    double smoothed = 2.3;
    for (int i = 0; i < 100; ++i) {
      const double lr = 1e-7 * std::pow(10.0, 7.0 * i / 99);
      const double x = std::log10(lr);
      const double loss = 2.3 - 1.5 / (1 + std::exp(-(x + 4) * 2)) + (x > -1.5 ? std::exp(3 * (x + 1.5)) - 1 : 0) +
                          0.05 * std::sin(i);
      smoothed = i == 0 ? loss : 0.9 * smoothed + 0.1 * loss;
      csv += absl::StrCat(i, ",", lr, ",", loss, ",", smoothed, "\n");
    }
    WriteFile(dir + "/lr_finder.csv", csv);
    WriteFile(dir + "/lr_finder.json",
              R"({"suggested_lr":0.001,"min_lr":1e-07,"max_lr":1.0,"steps":100,"diverged":false})" "\n");
  }
  return dir;
}

std::string WriteSweepDir(const std::string& parent, const std::string& name, int rows) {
  const std::string dir = (fs::path(parent) / name).string();
  fs::create_directories(dir + "/runs");
  std::string csv =
      "row,name,status,depth,learning_rate,params,gmacs_per_image,train_flops,final_top1,final_top5,final_loss,"
      "best_top1,steps,wall_seconds,images_per_sec,gpu_hours\n";
  for (int r = 0; r < rows; ++r) {
    const double params = 1e5 * std::pow(4.0, r);
    const double flops = 6 * params * 2 * 1e6;
    const double loss = 3.0 * std::pow(params / 1e5, -0.3) + 0.4;
    const double error = 0.6 * std::pow(params / 1e5, -0.25) + 0.05;
    FixtureRun run;
    run.name = absl::StrCat("depth_", 2 * (r + 1));
    run.depth = 2 * (r + 1);
    run.model = "convforever";
    run.final_loss = loss;
    run.steps = 100;
    run.ema = false;
    WriteRunDir(dir + "/runs", run);
    csv += absl::StrCat(r, ",", run.name, ",DONE,", run.depth, ",0.001,", params, ",", params * 2e-9 * 1e3, ",", flops,
                        ",", 1 - error, ",0.99,", loss, ",", 1 - error, ",100,60,1000,0.0167\n");
  }
  csv += absl::StrCat(rows, ",failed_run,FAILED,", 2 * (rows + 1), ",0.001,,,,,,,,,,,\n");
  WriteFile(dir + "/results.csv", csv);
  return dir;
}

}  // namespace cf::report::testing
