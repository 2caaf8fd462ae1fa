#include "convforever/report/metrics_log.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/report/text_file.h"
#include "nlohmann/json.hpp"

namespace cf::report {

const std::vector<StepValue>& MetricsLog::Series(const std::string& name) const {
  static const std::vector<StepValue>* const kEmpty = new std::vector<StepValue>();
  auto it = scalars.find(name);
  return it == scalars.end() ? *kEmpty : it->second;
}

namespace {

absl::Status LineError(const std::string& path, int line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": ", what));
}

}  // namespace

absl::StatusOr<MetricsLog> ParseMetricsLog(absl::string_view text, const std::string& path) {
  MetricsLog log;
  std::map<std::string, std::map<int64_t, double>> by_step;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    const bool terminated = end != absl::string_view::npos;
    if (!terminated) end = text.size();
    absl::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == absl::string_view::npos) continue;
    nlohmann::json record = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded()) {
      // Only the very last line can be torn: it has no newline, or nothing but blanks follow it.
      const bool last = !terminated || text.substr(pos).find_first_not_of(" \t\r\n") == absl::string_view::npos;
      if (last) {
        ++log.torn_lines;
        break;
      }
      return LineError(path, line_no, "not valid JSON (only a torn last line is tolerated)");
    }
    if (!record.is_object()) return LineError(path, line_no, "not a JSON object");
    auto kind_it = record.find("kind");
    if (kind_it == record.end() || !kind_it->is_string()) {
      return LineError(path, line_no, "no string \"kind\" field");
    }
    const std::string kind = kind_it->get<std::string>();
    if (kind == "config") {
      auto config = record.find("config");
      if (config == record.end() || !config->is_object()) {
        return LineError(path, line_no, "config record without a \"config\" object");
      }
      for (auto& [key, value] : config->items()) {
        log.config[key] = value.is_string() ? value.get<std::string>() : value.dump();
      }
      ++log.config_records;
    } else if (kind == "metrics") {
      auto step_it = record.find("step");
      if (step_it == record.end() || !step_it->is_number_integer()) {
        return LineError(path, line_no, "metrics record without an integer \"step\"");
      }
      const int64_t step = step_it->get<int64_t>();
      if (step < 0) return LineError(path, line_no, absl::StrCat("negative step ", step));
      log.last_step = std::max(log.last_step, step);
      ++log.metrics_records;
      for (auto& [key, value] : record.items()) {
        if (key == "kind" || key == "step" || key == "wall_time") continue;
        const bool nonfinite_text =
            value.is_string() && (value == "NaN" || value == "Infinity" || value == "-Infinity");
        if (value.is_null() || nonfinite_text || (value.is_number() && !std::isfinite(value.get<double>()))) {
          if (log.nonfinite_values++ == 0) log.first_nonfinite = absl::StrCat(key, " at step ", step);
          continue;
        }
        if (!value.is_number()) continue;  // other text fields are not scalars
        const double v = value.get<double>();
        auto [it, inserted] = by_step[key].insert_or_assign(step, v);
        if (!inserted) ++log.replaced_values;
      }
    }
    // "system" and kinds added later are not plotted.
  }
  for (auto& [name, points] : by_step) {
    std::vector<StepValue>& series = log.scalars[name];
    series.reserve(points.size());
    for (const auto& [step, value] : points) series.push_back({step, value});
  }
  return log;
}

absl::StatusOr<MetricsLog> ReadMetricsLog(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  return ParseMetricsLog(text, path);
}

}  // namespace cf::report
