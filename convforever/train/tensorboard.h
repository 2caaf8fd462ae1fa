// TensorBoard event files, written from scratch: no TensorFlow, no protobuf library.
//
// A file is a sequence of TFRecords: u64 length | u32 masked CRC-32C(length bytes) | data |
// u32 masked CRC-32C(data), little-endian, where masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.
// Each record's data is a serialized tensorflow.Event, encoded here by hand:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; TensorProto tensor = 8;
//             SummaryMetadata metadata = 9; }
// Fields with proto3 default values (step 0) are omitted, as the reference serializer does, so
// our bytes equal TensorFlow's. The first record is Event{wall_time, file_version="brain.Event:2"}.
// Scalars become simple_value summaries; the config becomes a "text" plugin summary (a JSON code
// block in the Text tab). File name: events.out.tfevents.<10-digit unix time>.<host>.<pid>.<n>.
//
// Thread-safe. Each Log is one event with one summary of all its scalars, flushed to the OS at
// once so a live TensorBoard sees it; Flush() also fsyncs.
#ifndef CONVFOREVER_TRAIN_TENSORBOARD_H_
#define CONVFOREVER_TRAIN_TENSORBOARD_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convforever/train/metrics.h"

namespace cf::train {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven. `crc` continues a
// running checksum: Crc32c(b, Crc32c(a)) == Crc32c(a + b). Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(absl::string_view data, uint32_t crc = 0);
// TFRecord's mask, so a CRC stored inside CRC'd data does not checksum to a constant.
uint32_t MaskCrc32c(uint32_t crc);

// One framed TFRecord holding `data`.
std::string EncodeTfRecord(absl::string_view data);

// Serialized Event messages.
std::string EncodeFileVersionEvent(double wall_time);
std::string EncodeScalarsEvent(double wall_time, int64_t step, const Scalars& scalars);
// Event{session_log: SessionLog{status: START}}: TensorBoard then purges events of this run with
// step >= `step` that came before it (its orphaned-data rule for restarted jobs).
std::string EncodeSessionStartEvent(double wall_time, int64_t step);
std::string EncodeTextEvent(double wall_time, int64_t step, const std::string& tag,
                            const std::string& text);

// "events.out.tfevents.<10-digit time>.<host>.<pid>.<n>", n counting files this process made.
std::string EventFileName(int64_t unix_seconds);

class TensorBoardSink : public MetricSink {
 public:
  // Creates `logdir` (and parents) and a new event file in it.
  static absl::StatusOr<std::unique_ptr<TensorBoardSink>> Open(const std::string& logdir);

  absl::Status Log(int64_t step, const Scalars& scalars) override;
  // Tag "config/text_summary": the secret-stripped JSON, as a markdown code block.
  absl::Status LogConfig(const nlohmann::json& config) override;
  // System metrics have no step: they are written at the last step Log() saw.
  absl::Status LogSystem(const Scalars& scalars) override;
  // Writes a SessionLog START at step+1, so TensorBoard hides the interrupted run's later steps.
  absl::Status DiscardAfter(int64_t step) override;
  absl::Status Flush() override { return file_->Sync(); }
  absl::Status Close() override { return file_->Close(); }

  const std::string& path() const { return file_->path(); }

 private:
  explicit TensorBoardSink(std::unique_ptr<RecordFile> file) : file_(std::move(file)) {}
  absl::Status WriteEvent(const std::string& event) { return file_->Append(EncodeTfRecord(event)); }

  std::unique_ptr<RecordFile> file_;
  std::atomic<int64_t> last_step_{0};
};

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_TENSORBOARD_H_
