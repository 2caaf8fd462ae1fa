// Caption records read from JSONL (a file or stdin), one JSON object a line.
//
// The id and caption fields are configurable; an id may be a string or an integer (kept as
// written, and keyed by its JSON text for de-duplication). Passthrough fields (default `url`,
// `path`) are copied to the output untouched. A line that is not a JSON object (or is past the
// limits of base/json_limits.h: nested deeper than 64 levels), is longer than max_line_bytes
// (read through, never held), has no id, or has an empty/missing caption is skipped and counted
// (the first two as bad JSON), and the first few are logged with their line number; reading
// never fails on bad records, only on I/O errors. Not thread-safe.
#ifndef CONVFOREVER_CAPTION_RECORDS_H_
#define CONVFOREVER_CAPTION_RECORDS_H_

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace cf::caption {

struct InputOptions {
  std::string caption_field = "caption";
  std::string id_field = "id";
  std::vector<std::string> passthrough_fields = {"url", "path"};
  // A longer line is skipped without being held in memory (a caption record is a few hundred
  // bytes; a line of gigabytes is a broken or hostile input).
  size_t max_line_bytes = size_t{64} << 20;
};

struct CaptionRecord {
  int64_t line = 0;         // 1-based line in the input
  nlohmann::ordered_json id;  // as written (string or number)
  std::string id_key;       // id.dump(): unique key
  std::string caption;
  nlohmann::ordered_json passthrough = nlohmann::ordered_json::object();
};

struct InputCounters {
  int64_t lines = 0;
  int64_t bad_json = 0;
  int64_t no_id = 0;
  int64_t empty_caption = 0;
};

class RecordReader {
 public:
  RecordReader(std::istream* in, std::string source, InputOptions options)
      : in_(in), source_(std::move(source)), options_(std::move(options)) {}
  // Next valid record; false at the end of input; an error only for a read failure.
  absl::StatusOr<bool> Next(CaptionRecord* record);
  const InputCounters& counters() const { return counters_; }

 private:
  void Skip(int64_t* counter, const char* why);
  std::istream* in_;
  std::string source_;
  InputOptions options_;
  InputCounters counters_;
  int logged_ = 0;
};

}  // namespace cf::caption

#endif  // CONVFOREVER_CAPTION_RECORDS_H_
