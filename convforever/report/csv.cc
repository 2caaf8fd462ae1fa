#include "convforever/report/csv.h"

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "convforever/base/status_macros.h"
#include "convforever/report/text_file.h"

namespace cf::report {

int CsvTable::Column(absl::string_view name) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int>(i);
  }
  return -1;
}

const std::string& CsvTable::Field(size_t row, absl::string_view name) const {
  static const std::string* const kEmpty = new std::string();
  const int col = Column(name);
  if (col < 0 || row >= rows.size()) return *kEmpty;
  return rows[row][col];
}

absl::StatusOr<std::optional<double>> CsvTable::Number(size_t row, absl::string_view name) const {
  absl::string_view field = absl::StripAsciiWhitespace(Field(row, name));
  if (field.empty()) return std::optional<double>();
  double value;
  if (!absl::SimpleAtod(field, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", row_lines[row], ": column ", name, ": '", field,
                                                   "' is not a number"));
  }
  return std::optional<double>(value);
}

absl::StatusOr<CsvTable> ParseCsv(absl::string_view text, const std::string& path) {
  CsvTable table;
  table.path = path;
  std::vector<std::vector<std::string>> records;
  std::vector<int> lines;
  std::vector<std::string> record;
  std::string field;
  bool in_quotes = false, field_quoted = false, record_open = false;
  int line = 1, record_line = 1;
  auto end_field = [&] {
    record.push_back(std::move(field));
    field.clear();
    field_quoted = false;
  };
  auto end_record = [&] {
    end_field();
    // A blank line is no record.
    if (!(record.size() == 1 && record[0].empty())) {
      records.push_back(std::move(record));
      lines.push_back(record_line);
    }
    record.clear();
    record_open = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (!record_open) {
      record_open = true;
      record_line = line;
    }
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"') {
      if (!field.empty() || field_quoted) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", line, ": a quote inside an unquoted field (field ", record.size() + 1, ")"));
      }
      in_quotes = field_quoted = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n') {
      if (!field.empty() && field.back() == '\r' && !field_quoted) field.pop_back();
      end_record();
      ++line;
    } else if (c == '\r' && field_quoted) {
      // the \r of a \r\n after a closing quote
    } else {
      if (field_quoted) {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": text after a closing quote (field ",
                                                       record.size() + 1, ")"));
      }
      field.push_back(c);
    }
  }
  if (in_quotes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", record_line, ": a quoted field never ends"));
  }
  if (record_open) end_record();
  if (records.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": empty (no header line)"));
  table.header = std::move(records[0]);
  for (std::string& name : table.header) name = std::string(absl::StripAsciiWhitespace(name));
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].size() != table.header.size()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", lines[r], ": ", records[r].size(),
                                                     " fields, the header has ", table.header.size()));
    }
    table.rows.push_back(std::move(records[r]));
    table.row_lines.push_back(lines[r]);
  }
  return table;
}

absl::StatusOr<CsvTable> ReadCsv(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  return ParseCsv(text, path);
}

}  // namespace cf::report
