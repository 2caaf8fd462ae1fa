#include "convforever/train/tensorboard.h"

#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "convforever/base/status_macros.h"

namespace cf::train {
namespace {

// 256-entry table for the reflected Castagnoli polynomial: entry i is the CRC of byte i alone.
constexpr std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0u);
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrc32cTable = MakeCrc32cTable();

// ---- protobuf wire format (just what Event needs) ----
// A field key is (field_number << 3) | wire_type; wire types: 0 varint, 1 fixed64,
// 2 length-delimited, 5 fixed32. Fixed-width values are little-endian.

void PutVarint(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void PutFixed(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

void PutKey(std::string* out, int field, int wire_type) {
  PutVarint(out, (field << 3) | wire_type);
}

void PutDouble(std::string* out, int field, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  PutKey(out, field, 1);
  PutFixed(out, bits, 8);
}

void PutFloat(std::string* out, int field, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  PutKey(out, field, 5);
  PutFixed(out, bits, 4);
}

void PutVarintField(std::string* out, int field, uint64_t value) {
  PutKey(out, field, 0);
  PutVarint(out, value);
}

void PutBytes(std::string* out, int field, absl::string_view bytes) {
  PutKey(out, field, 2);
  PutVarint(out, bytes.size());
  out->append(bytes.data(), bytes.size());
}

// Event header shared by every event: wall_time, and step unless it is the proto3 default 0.
std::string EventHeader(double wall_time, int64_t step) {
  std::string event;
  PutDouble(&event, 1, wall_time);
  if (step != 0) PutVarintField(&event, 2, static_cast<uint64_t>(step));  // int64: two's complement
  return event;
}


}  // namespace

uint32_t Crc32c(absl::string_view data, uint32_t crc) {
  crc = ~crc;
  for (unsigned char byte : data) crc = kCrc32cTable[(crc ^ byte) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t MaskCrc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::string EncodeTfRecord(absl::string_view data) {
  std::string header;
  PutFixed(&header, data.size(), 8);
  std::string record = header;
  PutFixed(&record, MaskCrc32c(Crc32c(header)), 4);
  record.append(data.data(), data.size());
  PutFixed(&record, MaskCrc32c(Crc32c(data)), 4);
  return record;
}

std::string EncodeFileVersionEvent(double wall_time) {
  std::string event = EventHeader(wall_time, 0);
  PutBytes(&event, 3, "brain.Event:2");
  return event;
}

std::string EncodeScalarsEvent(double wall_time, int64_t step, const Scalars& scalars) {
  std::string summary;
  for (const auto& [tag, value] : scalars) {
    std::string v;
    PutBytes(&v, 1, tag);
    PutFloat(&v, 2, static_cast<float>(value));
    PutBytes(&summary, 1, v);
  }
  std::string event = EventHeader(wall_time, step);
  PutBytes(&event, 5, summary);
  return event;
}

std::string EncodeSessionStartEvent(double wall_time, int64_t step) {
  std::string session_log;
  PutVarintField(&session_log, 1, 1);  // status: START
  std::string event = EventHeader(wall_time, step);
  PutBytes(&event, 7, session_log);
  return event;
}

std::string EncodeTextEvent(double wall_time, int64_t step, const std::string& tag,
                            const std::string& text) {
  // SummaryMetadata{plugin_data: PluginData{plugin_name: "text"}}
  std::string plugin_data;
  PutBytes(&plugin_data, 1, "text");
  std::string metadata;
  PutBytes(&metadata, 1, plugin_data);
  // TensorProto{dtype: DT_STRING (7), tensor_shape: {dim: [{size: 1}]}, string_val: [text]}
  std::string dim;
  PutVarintField(&dim, 1, 1);
  std::string shape;
  PutBytes(&shape, 2, dim);
  std::string tensor;
  PutVarintField(&tensor, 1, 7);
  PutBytes(&tensor, 2, shape);
  PutBytes(&tensor, 8, text);

  std::string value;
  PutBytes(&value, 1, tag);
  PutBytes(&value, 8, tensor);
  PutBytes(&value, 9, metadata);
  std::string summary;
  PutBytes(&summary, 1, value);
  std::string event = EventHeader(wall_time, step);
  PutBytes(&event, 5, summary);
  return event;
}

std::string EventFileName(int64_t unix_seconds) {
  static std::atomic<int> counter{0};
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "localhost");
  return absl::StrFormat("events.out.tfevents.%010d.%s.%d.%d", unix_seconds, host, ::getpid(),
                         counter.fetch_add(1));
}

absl::StatusOr<std::unique_ptr<TensorBoardSink>> TensorBoardSink::Open(const std::string& logdir) {
  std::error_code ec;
  std::filesystem::create_directories(logdir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", logdir, ": ", ec.message()));
  const double now = WallTimeSeconds();
  const std::string path =
      absl::StrCat(logdir, "/", EventFileName(static_cast<int64_t>(std::floor(now))));
  ASSIGN_OR_RETURN(std::unique_ptr<RecordFile> file, RecordFile::Open(path, "wbe"));
  std::unique_ptr<TensorBoardSink> sink(new TensorBoardSink(std::move(file)));
  if (absl::Status s = sink->WriteEvent(EncodeFileVersionEvent(now)); !s.ok()) return s;
  return sink;
}

absl::Status TensorBoardSink::Log(int64_t step, const Scalars& scalars) {
  last_step_ = step;
  if (scalars.empty()) return absl::OkStatus();
  return WriteEvent(EncodeScalarsEvent(WallTimeSeconds(), step, scalars));
}

absl::Status TensorBoardSink::LogConfig(const nlohmann::json& config) {
  // Four leading spaces make a markdown code block, which keeps the JSON's indentation.
  std::string text;
  for (absl::string_view line : absl::StrSplit(StripSecrets(config).dump(2), '\n')) {
    absl::StrAppend(&text, "    ", line, "\n");
  }
  return WriteEvent(EncodeTextEvent(WallTimeSeconds(), last_step_, "config/text_summary", text));
}

absl::Status TensorBoardSink::LogSystem(const Scalars& scalars) {
  if (scalars.empty()) return absl::OkStatus();
  return WriteEvent(EncodeScalarsEvent(WallTimeSeconds(), last_step_, scalars));
}

absl::Status TensorBoardSink::DiscardAfter(int64_t step) {
  last_step_ = step;
  return WriteEvent(EncodeSessionStartEvent(WallTimeSeconds(), step + 1));
}

}  // namespace cf::train
