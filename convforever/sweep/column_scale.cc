#include "convforever/sweep/column_scale.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cf::sweep {

absl::StatusOr<std::vector<ColumnScale>> ParseColumnScales(absl::string_view spec) {
  std::vector<ColumnScale> scales;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    const std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(part, '=');
    ColumnScale s;
    s.column = std::string(absl::StripAsciiWhitespace(kv.first));
    const absl::string_view factor = absl::StripAsciiWhitespace(kv.second);
    if (s.column.empty() || !absl::SimpleAtod(factor, &s.factor) || !std::isfinite(s.factor) ||
        s.factor <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--scale_column: expected COLUMN=FACTOR with a positive FACTOR (e.g. "
          "approx_num_layers=0.1), got '", part, "'"));
    }
    scales.push_back(std::move(s));
  }
  return scales;
}

absl::Status ApplyColumnScale(const ColumnScale& scale, CsvTable* table, absl::string_view source) {
  const int c = table->ColumnIndex(scale.column);
  if (c < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--scale_column: ", source, " has no column '",
                                                   scale.column, "'"));
  }
  bool all_ints = true;
  for (size_t r = 0; r < table->rows.size(); ++r) {
    const absl::string_view cell = absl::StripAsciiWhitespace(table->rows[r][c]);
    if (cell.empty()) continue;
    int64_t i = 0;
    double d = 0;
    if (absl::SimpleAtoi(cell, &i)) continue;
    all_ints = false;
    if (!absl::SimpleAtod(cell, &d)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--scale_column: ", source, ":", table->row_lines[r], ": column '", scale.column,
          "' holds '", cell, "', not a number"));
    }
  }
  for (std::vector<std::string>& row : table->rows) {
    const absl::string_view cell = absl::StripAsciiWhitespace(row[c]);
    if (cell.empty()) continue;
    double v = 0;
    (void)absl::SimpleAtod(cell, &v);  // checked above
    if (all_ints) {
      row[c] = absl::StrCat(std::max<int64_t>(1, std::llround(v * scale.factor)));
    } else {
      row[c] = absl::StrCat(v * scale.factor);
    }
  }
  return absl::OkStatus();
}

}  // namespace cf::sweep
