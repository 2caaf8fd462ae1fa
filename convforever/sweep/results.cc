#include "convforever/sweep/results.h"

#include <algorithm>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/base/atomic_file.h"
#include "convforever/sweep/csv.h"

namespace cf::sweep {
namespace {

// A number from JSON as text: integers as integers, floats with 6 significant digits, strings
// (the summary's "NaN"/"Infinity") as they are; missing or null -> "".
std::string Number(const nlohmann::json& j) {
  if (j.is_number_integer() || j.is_number_unsigned()) return j.dump();
  if (j.is_number_float()) return absl::StrFormat("%.6g", j.get<double>());
  if (j.is_string()) return j.get<std::string>();
  return "";
}

const nlohmann::json& Field(const nlohmann::json& summary, const char* key, const char* sub = nullptr) {
  static const nlohmann::json kNull;
  const auto it = summary.find(key);
  if (it == summary.end()) return kNull;
  if (sub == nullptr) return *it;
  if (!it->is_object()) return kNull;
  const auto s = it->find(sub);
  return s == it->end() ? kNull : *s;
}

// Figure name -> text for one row (empty map without a summary).
std::map<std::string, std::string> Figures(const ResultRow& r) {
  std::map<std::string, std::string> f;
  if (!r.summary.has_value()) return f;
  const nlohmann::json& s = *r.summary;
  f["params"] = Number(Field(s, "params"));
  f["gmacs_per_image"] = Number(Field(s, "gmacs_per_image"));
  f["train_flops"] = Number(Field(s, "train_flops"));
  f["final_top1"] = Number(Field(s, "final_eval", "top1"));
  f["final_top5"] = Number(Field(s, "final_eval", "top5"));
  f["final_loss"] = Number(Field(s, "final_eval", "loss"));
  f["best_top1"] = Number(Field(s, "best_top1"));
  f["steps"] = Number(Field(s, "steps"));
  f["wall_seconds"] = Number(Field(s, "wall_seconds"));
  f["images_per_sec"] = Number(Field(s, "images_per_sec"));
  const nlohmann::json& wall = Field(s, "wall_seconds");
  if (wall.is_number()) {
    const nlohmann::json& ws = Field(s, "world_size");
    const double ranks = ws.is_number() && ws.get<double>() > 0 ? ws.get<double>() : r.ranks;
    f["gpu_hours"] = absl::StrFormat("%.6g", wall.get<double>() * ranks / 3600.0);
  }
  return f;
}

}  // namespace

const std::vector<std::string>& ResultFigureColumns() {
  static const auto* columns = new std::vector<std::string>{
      "params",    "gmacs_per_image", "train_flops", "final_top1",   "final_top5",
      "final_loss", "best_top1",      "steps",       "wall_seconds", "images_per_sec",
      "gpu_hours"};
  return *columns;
}

std::string FormatResultsCsv(const std::vector<std::string>& input_header,
                             const std::vector<ResultRow>& rows) {
  std::vector<std::string> header = {"row", "name", "status"};
  header.insert(header.end(), input_header.begin(), input_header.end());
  header.insert(header.end(), ResultFigureColumns().begin(), ResultFigureColumns().end());
  std::string out = FormatCsvLine(header) + "\n";
  for (const ResultRow& r : rows) {
    std::vector<std::string> line = {absl::StrCat(r.row), r.name, StatusName(r.status)};
    line.insert(line.end(), r.input_values.begin(), r.input_values.end());
    const std::map<std::string, std::string> figures = Figures(r);
    for (const std::string& column : ResultFigureColumns()) {
      const auto it = figures.find(column);
      line.push_back(it == figures.end() ? "" : it->second);
    }
    out += FormatCsvLine(line) + "\n";
  }
  return out;
}

absl::Status WriteResultsCsv(const std::string& path, const std::vector<std::string>& input_header,
                             const std::vector<ResultRow>& rows) {
  return base::WriteFileAtomically(path, FormatResultsCsv(input_header, rows));
}

std::string FormatResultsTable(const std::vector<ResultRow>& rows) {
  size_t name_width = 4;
  for (const ResultRow& r : rows) name_width = std::max(name_width, r.name.size());
  auto line = [&](const std::string& row, const std::string& name, const std::string& status,
                  const std::string& top1, const std::string& best, const std::string& steps,
                  const std::string& wall, const std::string& gpuh) {
    return absl::StrFormat("%4s  %-*s  %-7s  %7s  %7s  %7s  %9s  %9s\n", row, name_width, name,
                           status, top1, best, steps, wall, gpuh);
  };
  auto percent = [](const std::string& fraction) {
    double v = 0;
    if (fraction.empty() || !absl::SimpleAtod(fraction, &v)) return fraction;
    return absl::StrFormat("%.2f%%", 100 * v);
  };
  std::string out = line("row", "name", "status", "top-1", "best", "steps", "wall s", "GPU-h");
  for (const ResultRow& r : rows) {
    std::map<std::string, std::string> f = Figures(r);
    std::string wall = f["wall_seconds"];
    double w = 0;
    if (absl::SimpleAtod(wall, &w)) wall = absl::StrFormat("%.1f", w);
    out += line(absl::StrCat(r.row), r.name, StatusName(r.status), percent(f["final_top1"]),
                percent(f["best_top1"]), f["steps"], wall, f["gpu_hours"]);
  }
  return out;
}

}  // namespace cf::sweep
