// Metric sinks: where the trainer's scalars go (metrics.jsonl, TensorBoard, Trackio, ...).
//
// A MetricSink receives three kinds of records: per-step scalars (Log), the run configuration once
// (LogConfig), and wall-clock sampled system metrics (LogSystem: CPU, memory, GPU), which have no
// training step. Every method returns a Status naming the file on failure; a sink that failed
// keeps failing the same way rather than writing half records. MultiSink fans one call out to
// several sinks, calls all of them even when one fails, and returns the first error.
//
// Thread safety: every sink in this package is thread-safe (the training loop logs from its
// thread while SystemMetricsSampler logs from its own). Close() is idempotent; calls after
// Close() return FailedPrecondition.
//
// Secrets: configs pass through StripSecrets() before any sink writes them, so API keys and Hub
// tokens that reach a config by accident never land in an output file.
#ifndef CONVFOREVER_TRAIN_METRICS_H_
#define CONVFOREVER_TRAIN_METRICS_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <istream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

namespace cf::train {

// Named scalars in the order they were produced ("train/loss", "lr", ...).
using Scalars = std::vector<std::pair<std::string, double>>;

class MetricSink {
 public:
  virtual ~MetricSink() = default;
  // Scalars of one training step (the optimizer step, not the micro-batch).
  virtual absl::Status Log(int64_t step, const Scalars& scalars) = 0;
  // The run's configuration (flags, model config); written once, secrets already stripped.
  virtual absl::Status LogConfig(const nlohmann::json& config) = 0;
  // System metrics sampled on a clock ("cpu/utilization", "memory/used", "gpu/0/utilization").
  // Default: ignored (a sink that has no place for them).
  virtual absl::Status LogSystem(const Scalars& scalars) { return absl::OkStatus(); }
  // For a resumed run, before it logs again: records of steps > `step` (written by the
  // interrupted run after its last checkpoint, and about to be written again) are dropped or
  // hidden, so each step appears once. Default: nothing to do.
  virtual absl::Status DiscardAfter(int64_t step) { return absl::OkStatus(); }
  // Makes everything logged so far visible to readers (and durable where cheap).
  virtual absl::Status Flush() = 0;
  // Flushes and releases the output; idempotent.
  virtual absl::Status Close() = 0;
};

// Fans out to several sinks (not owned unless added with Add(unique_ptr)).
class MultiSink : public MetricSink {
 public:
  MultiSink() = default;
  void Add(std::unique_ptr<MetricSink> sink);
  void AddUnowned(MetricSink* sink);
  size_t size() const { return sinks_.size(); }

  absl::Status Log(int64_t step, const Scalars& scalars) override;
  absl::Status LogConfig(const nlohmann::json& config) override;
  absl::Status LogSystem(const Scalars& scalars) override;
  absl::Status DiscardAfter(int64_t step) override;
  absl::Status Flush() override;
  absl::Status Close() override;

 private:
  std::vector<std::unique_ptr<MetricSink>> owned_;
  std::vector<MetricSink*> sinks_;
};

// A file the sinks append whole records to: each Append is one fwrite + fflush, so readers
// (`tail -f`, a live TensorBoard) never see a torn record from us; Sync() also fsyncs; Close()
// fsyncs and closes. Errors name the path; after Close() every call but Close() is
// FailedPrecondition. Thread-safe.
class RecordFile {
 public:
  // `mode` is fopen's: "ae" appends to (or creates) the file, "wbe" truncates it.
  static absl::StatusOr<std::unique_ptr<RecordFile>> Open(const std::string& path, const char* mode);
  ~RecordFile();
  RecordFile(const RecordFile&) = delete;
  RecordFile& operator=(const RecordFile&) = delete;

  absl::Status Append(absl::string_view record);
  absl::Status Sync();
  absl::Status Close();
  // Replaces the file's contents atomically (cf::base::WriteFileAtomically) with
  // `rewrite(current contents)`, then appends to the new file.
  absl::Status Rewrite(const std::function<std::string(std::istream&)>& rewrite);

  const std::string& path() const { return path_; }

 private:
  RecordFile(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}

  const std::string path_;
  absl::Mutex mu_;
  std::FILE* file_;  // null after Close()
};

// `<run_dir>/metrics.jsonl`: one JSON object per line, flushed per line so `tail -f` and a
// crash both see every complete record. Appends, so a resumed run continues the same file.
//   {"kind":"config","wall_time":1763784000.25,"config":{...}}
//   {"kind":"metrics","step":10,"wall_time":1763784001.5,"train/loss":0.5,"lr":0.001}
//   {"kind":"system","wall_time":1763784002.0,"cpu/utilization":87.5}
// Scalars sit at the top level (pandas.read_json(lines=True) gives a table directly); the names
// "kind", "step" and "wall_time" are reserved and rejected. NaN and +/-Inf, which JSON cannot
// hold, are written as the strings "NaN", "Infinity", "-Infinity" (as Trackio does).
class JsonlSink : public MetricSink {
 public:
  // Creates `run_dir` (and parents) if needed.
  static absl::StatusOr<std::unique_ptr<JsonlSink>> Open(const std::string& run_dir);

  absl::Status Log(int64_t step, const Scalars& scalars) override;
  absl::Status LogConfig(const nlohmann::json& config) override;
  absl::Status LogSystem(const Scalars& scalars) override;
  // Rewrites the file atomically without "metrics" lines of later steps (config and system
  // lines stay), then appends as before.
  absl::Status DiscardAfter(int64_t step) override;
  absl::Status Flush() override { return file_->Sync(); }
  absl::Status Close() override { return file_->Close(); }

  const std::string& path() const { return file_->path(); }

 private:
  explicit JsonlSink(std::unique_ptr<RecordFile> file) : file_(std::move(file)) {}

  std::unique_ptr<RecordFile> file_;
};

// Seconds since the Unix epoch, with sub-second precision (the wall_time of every record).
double WallTimeSeconds();

// A JSON value for a double: the number itself, or "NaN" / "Infinity" / "-Infinity".
nlohmann::json JsonNumberOrString(double value);

// True when a config key names a secret: it contains (case-insensitively) "token", "key",
// "secret" or "password".
bool IsSecretKey(const std::string& key);

// A copy of `config` with every secret removed, recursively: entries whose key IsSecretKey(), and
// string values that look like credentials ("hf_...", "sk-..." tokens).
nlohmann::json StripSecrets(const nlohmann::json& config);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_METRICS_H_
