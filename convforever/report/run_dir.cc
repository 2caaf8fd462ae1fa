#include "convforever/report/run_dir.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/report/csv.h"
#include "convforever/report/format.h"
#include "convforever/report/text_file.h"
#include "nlohmann/json.hpp"

namespace cf::report {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<nlohmann::json> ParseJsonObject(const std::string& text, const std::string& path) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  if (!json.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  return json;
}

// Reads number field `key` of `object` (absent or null: unset) into `out`.
absl::Status GetNumber(const nlohmann::json& object, const char* key, const std::string& where,
                       std::optional<double>* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return absl::OkStatus();
  if (it->is_string()) {  // the trainer writes non-finite numbers as these strings
    const std::string& text = it->get_ref<const std::string&>();
    const double inf = std::numeric_limits<double>::infinity();
    if (text == "NaN" || text == "Infinity" || text == "-Infinity") {
      *out = text == "NaN" ? std::nan("") : text == "Infinity" ? inf : -inf;
      return absl::OkStatus();
    }
  }
  if (!it->is_number()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": field \"", key, "\" is not a number: ", it->dump()));
  }
  *out = it->get<double>();
  return absl::OkStatus();
}

absl::Status GetBool(const nlohmann::json& object, const char* key, const std::string& where,
                     std::optional<bool>* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": field \"", key, "\" is not a boolean: ", it->dump()));
  }
  *out = it->get<bool>();
  return absl::OkStatus();
}

absl::Status GetEval(const nlohmann::json& summary, const char* key, const std::string& path,
                     std::optional<double>* loss, std::optional<double>* top1, std::optional<double>* top5) {
  auto it = summary.find(key);
  if (it == summary.end() || it->is_null()) return absl::OkStatus();
  const std::string where = absl::StrCat(path, ": ", key);
  if (!it->is_object()) return absl::InvalidArgumentError(absl::StrCat(where, " is not an object"));
  RETURN_IF_ERROR(GetNumber(*it, "loss", where, loss));
  RETURN_IF_ERROR(GetNumber(*it, "top1", where, top1));
  return GetNumber(*it, "top5", where, top5);
}

absl::StatusOr<LrFinder> LoadLrFinder(const std::string& dir) {
  LrFinder finder;
  const std::string csv_path = dir + "/lr_finder.csv";
  ASSIGN_OR_RETURN(CsvTable table, ReadCsv(csv_path));
  for (const char* column : {"lr", "loss", "smoothed_loss"}) {
    if (table.Column(column) < 0) {
      return absl::InvalidArgumentError(absl::StrCat(csv_path, ":1: no column \"", column, "\" in the header"));
    }
  }
  for (size_t r = 0; r < table.rows.size(); ++r) {
    ASSIGN_OR_RETURN(std::optional<double> lr, table.Number(r, "lr"));
    ASSIGN_OR_RETURN(std::optional<double> loss, table.Number(r, "loss"));
    ASSIGN_OR_RETURN(std::optional<double> smoothed, table.Number(r, "smoothed_loss"));
    if (!lr || !loss) continue;
    finder.rows.push_back({*lr, *loss, smoothed ? *smoothed : std::nan("")});
  }
  const std::string json_path = dir + "/lr_finder.json";
  if (fs::exists(json_path)) {
    ASSIGN_OR_RETURN(std::string text, ReadTextFile(json_path));
    ASSIGN_OR_RETURN(nlohmann::json json, ParseJsonObject(text, json_path));
    RETURN_IF_ERROR(GetNumber(json, "suggested_lr", json_path, &finder.suggested_lr));
    RETURN_IF_ERROR(GetBool(json, "diverged", json_path, &finder.diverged));
  }
  return finder;
}

// A config flag's value; numbers shortened (the trainer writes doubles with 17 digits:
// "0.0030000000000000001").
std::string ConfigValue(const RunData& run, const std::string& key) {
  auto it = run.metrics.config.find(key);
  if (it == run.metrics.config.end()) return "";
  double value;
  if (absl::SimpleAtod(it->second, &value) && std::isfinite(value)) {
    const bool integral = value == std::floor(value) && std::fabs(value) < 1e15;
    return FormatSig(value, integral ? 15 : 6);  // 1000000 steps stay "1000000"
  }
  return it->second;
}

std::string Opt(const std::optional<double>& v, std::string (*format)(double)) {
  return v ? format(*v) : "";
}

std::string Sig(double v) { return FormatSig(v, 4); }
std::string Si(double v) { return FormatSi(v, 3); }
std::string Int(double v) { return FormatSig(v, 15); }

// The last value of a scalar in the metrics log.
std::optional<double> Last(const MetricsLog& log, const std::string& name) {
  const auto& series = log.Series(name);
  if (series.empty()) return std::nullopt;
  return series.back().value;
}

std::optional<double> Max(const MetricsLog& log, const std::string& name) {
  const auto& series = log.Series(name);
  if (series.empty()) return std::nullopt;
  double best = series.front().value;
  for (const StepValue& p : series) best = std::max(best, p.value);
  return best;
}

}  // namespace

absl::StatusOr<RunSummary> ParseRunSummary(const std::string& text, const std::string& path) {
  ASSIGN_OR_RETURN(nlohmann::json json, ParseJsonObject(text, path));
  RunSummary s;
  RETURN_IF_ERROR(GetBool(json, "completed", path, &s.completed));
  RETURN_IF_ERROR(GetBool(json, "stopped_by_signal", path, &s.stopped_by_signal));
  if (auto it = json.find("model"); it != json.end() && !it->is_null()) {
    if (!it->is_string()) return absl::InvalidArgumentError(absl::StrCat(path, ": field \"model\" is not a string"));
    s.model = it->get<std::string>();
  }
  const std::pair<const char*, std::optional<double>*> numbers[] = {
      {"depth", &s.depth},
      {"params", &s.params},
      {"image_size", &s.image_size},
      {"gmacs_per_image", &s.gmacs_per_image},
      {"micro_batch_size", &s.micro_batch_size},
      {"gradient_accumulation_steps", &s.gradient_accumulation_steps},
      {"world_size", &s.world_size},
      {"steps", &s.steps},
      {"total_steps", &s.total_steps},
      {"samples_seen", &s.samples_seen},
      {"train_flops", &s.train_flops},
      {"wall_seconds", &s.wall_seconds},
      {"images_per_sec", &s.images_per_sec},
      {"best_top1", &s.best_top1},
      {"final_train_loss", &s.final_train_loss},
  };
  for (const auto& [key, out] : numbers) RETURN_IF_ERROR(GetNumber(json, key, path, out));
  RETURN_IF_ERROR(GetEval(json, "final_eval", path, &s.eval_loss, &s.eval_top1, &s.eval_top5));
  RETURN_IF_ERROR(GetEval(json, "final_eval_ema", path, &s.ema_loss, &s.ema_top1, &s.ema_top5));
  return s;
}

absl::StatusOr<RunData> LoadRunDir(const std::string& dir) {
  RunData run;
  run.dir = dir;
  std::string trimmed = dir;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  run.name = fs::path(trimmed).filename().string();
  if (run.name.empty() || run.name == ".") run.name = fs::absolute(trimmed).lexically_normal().filename().string();
  if (!fs::is_directory(dir)) return absl::NotFoundError(absl::StrCat(dir, ": not a directory"));
  const std::string metrics_path = trimmed + "/metrics.jsonl";
  const bool lr_finder_only = !fs::exists(metrics_path) && fs::exists(trimmed + "/lr_finder.csv");
  if (!lr_finder_only) {  // a `train --lr_finder` directory has the curve and nothing else
    auto metrics = ReadMetricsLog(metrics_path);
    if (!metrics.ok()) {
      if (absl::IsNotFound(metrics.status())) {
        return absl::NotFoundError(absl::StrCat(dir, " is not a run directory: ", metrics_path,
                                                " does not exist (nor lr_finder.csv)"));
      }
      return metrics.status();
    }
    run.metrics = *std::move(metrics);
  }
  const std::string summary_path = trimmed + "/summary.json";
  if (fs::exists(summary_path)) {
    ASSIGN_OR_RETURN(std::string text, ReadTextFile(summary_path));
    ASSIGN_OR_RETURN(run.summary, ParseRunSummary(text, summary_path));
  }
  if (fs::exists(trimmed + "/lr_finder.csv")) {
    ASSIGN_OR_RETURN(run.lr_finder, LoadLrFinder(trimmed));
  }
  return run;
}

std::vector<std::pair<std::string, std::string>> RunKeyFacts(const RunData& run) {
  const RunSummary empty;
  const RunSummary& s = run.summary ? *run.summary : empty;
  const MetricsLog& m = run.metrics;
  std::vector<std::pair<std::string, std::string>> facts;
  facts.emplace_back("model", s.model ? *s.model : ConfigValue(run, "model"));
  facts.emplace_back("depth", s.depth ? Int(*s.depth) : ConfigValue(run, "depth"));
  facts.emplace_back("lr", ConfigValue(run, "lr"));
  std::string batch = s.micro_batch_size ? Int(*s.micro_batch_size) : ConfigValue(run, "micro_batch_size");
  const std::string accumulation = s.gradient_accumulation_steps ? Int(*s.gradient_accumulation_steps)
                                                                 : ConfigValue(run, "gradient_accumulation_steps");
  if (!batch.empty() && !accumulation.empty() && accumulation != "1") batch += " x" + accumulation;
  if (s.world_size && *s.world_size > 1) batch += " x" + Int(*s.world_size) + " ranks";
  facts.emplace_back("batch", batch);
  std::string steps = s.steps ? Int(*s.steps) : (m.last_step >= 0 ? std::to_string(m.last_step) : "");
  std::string total = s.total_steps ? Int(*s.total_steps) : ConfigValue(run, "max_steps");
  if (total == "0") total.clear();
  if (!steps.empty() && !total.empty()) steps += " / " + total;
  facts.emplace_back("steps", steps);
  std::string status;
  if (!run.summary && run.lr_finder && run.metrics.metrics_records == 0) {
    status = "LR finder";
  } else if (!run.summary) {
    status = "no summary.json";
  } else if (s.completed.value_or(false)) {
    status = "completed";
  } else if (s.stopped_by_signal.value_or(false)) {
    status = "stopped by signal";
  } else {
    status = "incomplete";
  }
  facts.emplace_back("status", status);
  auto pct = [](const std::optional<double>& v) { return v ? FormatPercent(*v) : std::string(); };
  facts.emplace_back("eval loss", Opt(s.eval_loss ? s.eval_loss : Last(m, "eval/loss"), Sig));
  facts.emplace_back("top-1", pct(s.eval_top1 ? s.eval_top1 : Last(m, "eval/top1")));
  facts.emplace_back("top-5", pct(s.eval_top5 ? s.eval_top5 : Last(m, "eval/top5")));
  facts.emplace_back("best top-1", pct(s.best_top1 ? s.best_top1 : Max(m, "eval/top1")));
  facts.emplace_back("EMA top-1", pct(s.ema_top1 ? s.ema_top1 : Last(m, "eval_ema/top1")));
  facts.emplace_back("train loss", Opt(s.final_train_loss ? s.final_train_loss : Last(m, "train/loss"), Sig));
  facts.emplace_back("params", Opt(s.params, Si));
  facts.emplace_back("train FLOPs", Opt(s.train_flops, Si));
  facts.emplace_back("wall s", Opt(s.wall_seconds, Sig));
  facts.emplace_back("images/s", Opt(s.images_per_sec ? s.images_per_sec : Last(m, "train/images_per_sec"), Sig));
  return facts;
}

}  // namespace cf::report
