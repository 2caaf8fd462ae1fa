#include "convforever/caption/records.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/json_limits.h"
#include "glog/logging.h"

namespace cf::caption {

using json = nlohmann::ordered_json;

void RecordReader::Skip(int64_t* counter, const char* why) {
  ++*counter;
  if (logged_++ < 5) LOG(WARNING) << source_ << ":" << counters_.lines << ": skipped: " << why;
}

namespace {

// std::getline without its unbounded allocation: reads one line (its '\n' consumed, not stored)
// keeping at most `max_bytes` of it in *line; *too_long says that more was read and dropped.
// False at the end of the input (or on a read error: the stream's bad()).
bool ReadLineBounded(std::istream& in, size_t max_bytes, std::string* line, bool* too_long) {
  line->clear();
  *too_long = false;
  char buf[64 << 10];
  bool read_any = false;
  for (;;) {
    in.getline(buf, sizeof(buf));
    const size_t got = static_cast<size_t>(in.gcount());
    const bool ended = !in.fail();  // the '\n' was found (and counted in gcount)
    const bool full = in.fail() && !in.eof() && !in.bad() && got == sizeof(buf) - 1;
    const size_t stored = ended && !in.eof() ? got - 1 : got;
    read_any = read_any || got > 0;
    const size_t keep = std::min(stored, max_bytes - std::min(max_bytes, line->size()));
    line->append(buf, keep);
    *too_long = *too_long || keep < stored;
    if (full) {
      in.clear(in.rdstate() & ~std::ios::failbit);  // only the buffer filled: the line goes on
      continue;
    }
    if (ended) return true;
    return read_any && !in.bad();  // the last line, without a '\n', or the end
  }
}

}  // namespace

absl::StatusOr<bool> RecordReader::Next(CaptionRecord* record) {
  std::string line;
  bool too_long = false;
  while (ReadLineBounded(*in_, options_.max_line_bytes, &line, &too_long)) {
    ++counters_.lines;
    if (too_long) {
      Skip(&counters_.bad_json, "line longer than max_line_bytes (not read into memory)");
      continue;
    }
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    // Passthrough fields are copied and later dumped, both recursive: a line nested a million
    // deep would overflow the stack. Such a line is skipped like any other bad JSON.
    if (!CheckJsonLimits(line).ok()) {
      Skip(&counters_.bad_json, "JSON nested too deeply or too large");
      continue;
    }
    json doc = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
      Skip(&counters_.bad_json, "not a JSON object");
      continue;
    }
    auto id = doc.find(options_.id_field);
    if (id == doc.end() || !(id->is_string() || id->is_number_integer()) ||
        (id->is_string() && id->get<std::string>().empty())) {
      Skip(&counters_.no_id, "no id");
      continue;
    }
    auto caption = doc.find(options_.caption_field);
    if (caption == doc.end() || !caption->is_string() ||
        absl::StripAsciiWhitespace(caption->get<std::string>()).empty()) {
      Skip(&counters_.empty_caption, "empty caption");
      continue;
    }
    record->line = counters_.lines;
    record->id = *id;
    record->id_key = id->dump();
    record->caption = caption->get<std::string>();
    record->passthrough = json::object();
    for (const std::string& field : options_.passthrough_fields) {
      auto it = doc.find(field);
      if (it != doc.end()) record->passthrough[field] = *it;
    }
    return true;
  }
  if (in_->bad()) return absl::DataLossError(absl::StrCat(source_, ": read error after line ", counters_.lines));
  return false;
}

}  // namespace cf::caption
