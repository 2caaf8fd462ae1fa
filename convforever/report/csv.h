// A small CSV reader (RFC 4180: comma-separated, optional double quotes, "" inside quotes, quoted
// fields may span lines) for results.csv and lr_finder.csv. The first record is the header; every
// other record must have as many fields. Errors name the file and the line a record starts on.
// Pure; thread-safe.
#ifndef CONVFOREVER_REPORT_CSV_H_
#define CONVFOREVER_REPORT_CSV_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cf::report {

struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> row_lines;  // the line each row starts on (1-based), for messages

  // Column index of `name`, or -1.
  int Column(absl::string_view name) const;
  // Field `name` of row `row`; empty when the column does not exist.
  const std::string& Field(size_t row, absl::string_view name) const;
  // The field as a number: nullopt when empty or absent; INVALID_ARGUMENT naming file, line and
  // column when it is not a number.
  absl::StatusOr<std::optional<double>> Number(size_t row, absl::string_view name) const;
};

absl::StatusOr<CsvTable> ParseCsv(absl::string_view text, const std::string& path);
absl::StatusOr<CsvTable> ReadCsv(const std::string& path);

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_CSV_H_
