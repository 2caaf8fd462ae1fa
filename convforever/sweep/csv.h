// CSV tables as the sweep runner reads and writes them (RFC 4180).
//
// ParseCsv() reads a header line and data rows: fields separated by commas, a field may be quoted
// with '"' (then it may hold commas, CR/LF and doubled quotes ""), lines end in LF or CRLF, a UTF-8
// byte order mark at the start is dropped, and empty lines (outside quotes) are skipped. Every
// row must have as many fields as the header; an error names the source and the line where the
// offending row starts. Header names are trimmed of surrounding spaces and must be unique and
// non-empty. FormatCsvLine() is the inverse for one line: it quotes a field only when needed.
// Pure functions; no I/O except ReadCsvFile().
#ifndef CONVFOREVER_SWEEP_CSV_H_
#define CONVFOREVER_SWEEP_CSV_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cf::sweep {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // each of header.size() fields
  std::vector<int> row_lines;                  // 1-based line where each row starts

  // Index of a header column, or -1.
  int ColumnIndex(absl::string_view name) const;
};

// `source` names the input in error messages ("sweep.csv:7: ...").
absl::StatusOr<CsvTable> ParseCsv(absl::string_view text, absl::string_view source);
absl::StatusOr<CsvTable> ReadCsvFile(const std::string& path);

// One CSV line (no line ending), fields quoted only when they hold ',', '"', CR, LF or start or
// end with a space.
std::string FormatCsvLine(const std::vector<std::string>& fields);

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_CSV_H_
