// RecordReader over JSONL caption records. The first input byte picks the options (bit 0: the
// default fields, or id_field "key" / caption_field "text" with no passthrough); the rest is the
// file. Promises checked: reading never fails (bad records are skipped and counted, only I/O
// errors are errors); every record has a non-empty string or an integer id whose dump is its
// id_key, a caption that is not blank, a line number that grows, and only the configured
// passthrough fields; every line is counted once, as a record, a skip or a blank line.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "convforever/caption/records.h"
#include "glog/logging.h"
#include "convforever/fuzz/check.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  FLAGS_minloglevel = google::GLOG_ERROR;  // the reader logs the first skipped lines
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  cf::caption::InputOptions options;
  if (data[0] & 1) options = {.caption_field = "text", .id_field = "key", .passthrough_fields = {}};
  std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  cf::caption::RecordReader reader(&in, "fuzz.jsonl", options);
  cf::caption::CaptionRecord record;
  int64_t records = 0;
  int64_t last_line = 0;
  for (;;) {
    const auto next = reader.Next(&record);
    CF_FUZZ_FAIL_IF(!next.ok());  // an istringstream has no I/O errors
    if (!*next) break;
    ++records;
    CF_FUZZ_FAIL_IF(record.line <= last_line || record.line > reader.counters().lines);
    last_line = record.line;
    const bool string_id = record.id.is_string() && !record.id.get<std::string>().empty();
    CF_FUZZ_FAIL_IF(!string_id && !record.id.is_number_integer());
    CF_FUZZ_FAIL_IF(record.id_key != record.id.dump());
    CF_FUZZ_FAIL_IF(absl::StripAsciiWhitespace(record.caption).empty());
    CF_FUZZ_FAIL_IF(!record.passthrough.is_object());
    for (const auto& [key, value] : record.passthrough.items()) {
      bool configured = false;
      for (const std::string& field : options.passthrough_fields) configured |= key == field;
      CF_FUZZ_FAIL_IF(!configured);
      (void)value.dump();  // what the output writer does with it
    }
  }
  const cf::caption::InputCounters& c = reader.counters();
  CF_FUZZ_FAIL_IF(records + c.bad_json + c.no_id + c.empty_caption > c.lines);
  return 0;
}
