// The classifier's output: an append-only JSONL file that survives kill -9, plus its shards.
//
// Open() scans an existing output: a torn last line (no newline: the process died mid-write) is
// truncated away; every complete line must be a JSON object with the id field (else an error
// naming the line), and its id is remembered so a rerun skips it. Append() writes one record as
// one write(2) of a whole line, so a kill leaves at most one torn line. Records are numbered by
// position; every `sync_every` records a shard `shard_<start>_<end>.jsonl` (9-digit zero-padded
// positions, [start, end)) is written atomically (base/atomic_file.h) into `shard_dir` and given to
// the ShardSink. Shards already on disk are kept; shards a killed run owed are rebuilt from the
// output on the next Open(); Finish() closes the last, partial shard (a later run that appends
// more starts its next shard where that one ended, so shard names never overlap). Not
// thread-safe: one thread owns it.
#ifndef CONVFOREVER_CAPTION_LABELED_OUTPUT_H_
#define CONVFOREVER_CAPTION_LABELED_OUTPUT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/caption/shard_sink.h"
#include "nlohmann/json.hpp"

namespace cf::caption {

struct OutputOptions {
  std::string path;                // the JSONL output
  std::string shard_dir;           // "" = no shards
  int64_t sync_every = 1000;
  std::string id_field = "id";
};

class LabeledOutput {
 public:
  // `sink` may be null (shards only on disk); not owned.
  static absl::StatusOr<std::unique_ptr<LabeledOutput>> Open(const OutputOptions& options, ShardSink* sink);
  ~LabeledOutput();

  bool Contains(const std::string& id_key) const { return ids_.count(id_key) > 0; }
  int64_t records() const { return records_; }
  int64_t torn_bytes_dropped() const { return torn_bytes_; }
  int64_t shards_written() const { return shards_written_; }

  absl::Status Append(const nlohmann::ordered_json& record);
  // Closes the partial shard and fsyncs the output.
  absl::Status Finish();

  static std::string ShardName(int64_t start, int64_t end);

 private:
  LabeledOutput() = default;
  absl::Status Scan();
  absl::Status CloseShard();

  OutputOptions options_;
  ShardSink* sink_ = nullptr;
  int fd_ = -1;
  int64_t records_ = 0;
  int64_t torn_bytes_ = 0;
  int64_t shards_written_ = 0;
  int64_t shard_start_ = 0;             // first record of the open shard
  std::vector<std::string> shard_lines_;  // its lines so far
  std::unordered_set<std::string> ids_;
};

}  // namespace cf::caption

#endif  // CONVFOREVER_CAPTION_LABELED_OUTPUT_H_
