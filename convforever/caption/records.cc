#include "convforever/caption/records.h"

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

absl::StatusOr<bool> RecordReader::Next(CaptionRecord* record) {
  std::string line;
  while (std::getline(*in_, line)) {
    ++counters_.lines;
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
