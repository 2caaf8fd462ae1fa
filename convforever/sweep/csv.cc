#include "convforever/sweep/csv.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cf::sweep {
namespace {

struct RawRecord {
  std::vector<std::string> fields;
  int line = 0;
};

// Splits `text` into records; a record that is one empty unquoted field is an empty line.
absl::StatusOr<std::vector<RawRecord>> SplitRecords(absl::string_view text,
                                                    absl::string_view source) {
  std::vector<RawRecord> records;
  RawRecord record;
  std::string field;
  bool quoted_field = false;  // the current field was quoted (so it is not "nothing")
  int line = 1;
  record.line = 1;
  size_t i = 0;
  auto end_record = [&](int next_line) {
    const bool empty_line = record.fields.empty() && field.empty() && !quoted_field;
    if (!empty_line) {
      record.fields.push_back(std::move(field));
      records.push_back(std::move(record));
    }
    record = RawRecord();
    record.line = next_line;
    field.clear();
    quoted_field = false;
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      if (!field.empty() || quoted_field) {
        return absl::InvalidArgumentError(absl::StrCat(
            source, ":", line, ": a quote inside an unquoted field (quote the whole field and ",
            "double the quote: \"a \"\"b\"\"\")"));
      }
      quoted_field = true;
      const int opened_at = line;
      ++i;
      while (true) {
        if (i >= text.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat(source, ":", opened_at, ": quoted field is never closed"));
        }
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (text[i] == '\n') ++line;
        field.push_back(text[i]);
        ++i;
      }
      // After the closing quote: a separator, a line end or the end of the text.
      if (i < text.size() && text[i] != ',' && text[i] != '\n' &&
          !(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') &&
          !(text[i] == '\r' && i + 1 == text.size())) {
        return absl::InvalidArgumentError(absl::StrCat(
            source, ":", line, ": unexpected character after a closing quote"));
      }
      continue;
    }
    if (c == ',') {
      record.fields.push_back(std::move(field));
      field.clear();
      quoted_field = false;
      ++i;
      continue;
    }
    if (c == '\r' && (i + 1 == text.size() || text[i + 1] == '\n')) {
      ++i;  // CR of a CRLF (or a final CR)
      continue;
    }
    if (c == '\n') {
      ++line;
      end_record(line);
      ++i;
      continue;
    }
    field.push_back(c);
    ++i;
  }
  end_record(line);
  return records;
}

}  // namespace

int CsvTable::ColumnIndex(absl::string_view name) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<CsvTable> ParseCsv(absl::string_view text, absl::string_view source) {
  if (absl::StartsWith(text, "\xEF\xBB\xBF")) text.remove_prefix(3);
  absl::StatusOr<std::vector<RawRecord>> records = SplitRecords(text, source);
  if (!records.ok()) return records.status();
  if (records->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": empty file (no header line)"));
  }
  CsvTable table;
  const RawRecord& head = records->front();
  std::set<std::string> seen;
  for (size_t c = 0; c < head.fields.size(); ++c) {
    std::string name(absl::StripAsciiWhitespace(head.fields[c]));
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", head.line, ": header column ", c + 1, " has no name"));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", head.line, ": column '", name, "' appears twice in the header"));
    }
    table.header.push_back(std::move(name));
  }
  for (size_t r = 1; r < records->size(); ++r) {
    RawRecord& rec = (*records)[r];
    if (rec.fields.size() != table.header.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ":", rec.line, ": row has ", rec.fields.size(), " field(s), the header has ",
          table.header.size(), " (", absl::StrJoin(table.header, ","), ")"));
    }
    table.rows.push_back(std::move(rec.fields));
    table.row_lines.push_back(rec.line);
  }
  return table;
}

absl::StatusOr<CsvTable> ReadCsvFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open sweep table ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return ParseCsv(ss.str(), path);
}

std::string FormatCsvLine(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out.push_back(',');
    const std::string& f = fields[i];
    const bool quote = f.find_first_of(",\"\r\n") != std::string::npos ||
                       (!f.empty() && (f.front() == ' ' || f.back() == ' '));
    if (!quote) {
      out += f;
      continue;
    }
    out.push_back('"');
    for (char c : f) {
      if (c == '"') out.push_back('"');
      out.push_back(c);
    }
    out.push_back('"');
  }
  return out;
}

}  // namespace cf::sweep
