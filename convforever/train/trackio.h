// A Trackio-compatible metric store: our runs appear in the Trackio dashboard (`trackio show`)
// next to Python ones, with no Python in the training process.
//
// Follows gradio-app/trackio's local storage (trackio/sqlite_storage.py, utils.py, run.py):
//  * directory $TRACKIO_DIR, else $HF_HOME/trackio, else ~/.cache/huggingface/trackio;
//  * one SQLite database per project, `<project>.db`, the name reduced to [A-Za-z0-9_-]
//    ("default" if nothing is left); WAL journal, synchronous=NORMAL;
//  * every write holds an exclusive flock on `<project>.lock` (the lock Trackio's writers take)
//    and runs in one transaction; the schema is created with Trackio's own DDL (init_db: all
//    tables, indexes and additive migrations), so Trackio can open, read and extend our files;
//  * run_id is a uuid4 in hex; timestamps are Python's datetime.now(timezone.utc).isoformat()
//    (`2026-08-21T16:12:05.123456+00:00`, fraction omitted when zero);
//  * metrics/config columns hold compact JSON (no spaces: the dashboard finds numeric metrics
//    with GLOB '*:[0-9]*'); NaN/Inf are the strings "NaN", "Infinity", "-Infinity"; keys Trackio
//    reserves (project, run, timestamp, step, time, metrics) are renamed "__<key>" as it does;
//    each row gets a uuid4 log_id (Trackio's de-duplication key);
//  * the configs row is the user config (secrets stripped) plus _Username, _Created, _Group.
// System metrics use Trackio's names: cpu/utilization, cpu/<i>/utilization, memory/used (GiB),
// gpu/<i>/... (see system_metrics.h).
//
// Thread-safe (one mutex around the connection). One TrackioSink per run; several processes may
// write to one project concurrently (the flock and SQLite's busy timeout serialize them).
#ifndef CONVFOREVER_TRAIN_TRACKIO_H_
#define CONVFOREVER_TRAIN_TRACKIO_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "convforever/train/metrics.h"

struct sqlite3;

namespace cf::train {

namespace trackio_internal {
using SqlParam = std::variant<std::nullptr_t, std::string, int64_t>;
}  // namespace trackio_internal

struct TrackioOptions {
  std::string project = "convforever";
  // Shown in the dashboard; required (the trainer uses the run directory's name).
  std::string run_name;
  // Empty: a new uuid4 hex. Pass the stored id to continue a run after --resume.
  std::string run_id;
  // Empty: JSON null (no group), as Trackio writes it.
  std::string group;
  // Empty: ResolveTrackioDir().
  std::string dir;
  // Trackio asks the Hub (whoami) for this; offline it is null. Set to record one.
  std::optional<std::string> username;
};

// $TRACKIO_DIR, else $HF_HOME/trackio, else $HOME/.cache/huggingface/trackio.
std::string ResolveTrackioDir();
// Keeps only [A-Za-z0-9_-]; "default" when nothing remains (Trackio's canonical_project_name).
std::string CanonicalProjectName(absl::string_view project);
// 32 lowercase hex digits of a random (version 4, variant 1) UUID.
std::string NewUuid4Hex();
// Python's datetime.isoformat() of a UTC time: "2026-08-21T16:12:05.123456+00:00".
std::string IsoTimestampUtc(std::chrono::system_clock::time_point time);
// Compact JSON object of `scalars` as Trackio stores it (non-finite -> strings, reserved keys
// renamed). Integral values are still written as floats ("3.0"), which Trackio reads the same.
std::string TrackioMetricsJson(const Scalars& scalars);

class TrackioSink : public MetricSink {
 public:
  // Creates the directory and database (schema included) if needed.
  static absl::StatusOr<std::unique_ptr<TrackioSink>> Open(const TrackioOptions& options);
  ~TrackioSink() override;

  // One `metrics` row.
  absl::Status Log(int64_t step, const Scalars& scalars) override;
  // The `configs` row (INSERT OR REPLACE, keyed by run_id). Top-level keys starting with '_' are
  // Trackio's and rejected with InvalidArgument.
  absl::Status LogConfig(const nlohmann::json& config) override;
  // One `system_metrics` row.
  absl::Status LogSystem(const Scalars& scalars) override;
  // Deletes this run's `metrics` rows with step > `step` (the run continues under its run_id).
  absl::Status DiscardAfter(int64_t step) override;
  // Rows are committed as they are logged; this checkpoints the WAL so plain readers see them.
  absl::Status Flush() override;
  absl::Status Close() override;

  const std::string& run_id() const { return run_id_; }
  const std::string& run_name() const { return run_name_; }
  const std::string& db_path() const { return db_path_; }

 private:
  TrackioSink(std::string db_path, std::string lock_path, std::string run_id, TrackioOptions opts)
      : db_path_(std::move(db_path)),
        lock_path_(std::move(lock_path)),
        run_id_(std::move(run_id)),
        run_name_(opts.run_name),
        options_(std::move(opts)) {}
  // Runs one statement under the project flock, in its own transaction.
  absl::Status Insert(const char* sql, const std::vector<trackio_internal::SqlParam>& params);

  const std::string db_path_;
  const std::string lock_path_;
  const std::string run_id_;
  const std::string run_name_;
  const TrackioOptions options_;
  absl::Mutex mu_;
  sqlite3* db_ = nullptr;  // null after Close()
  int lock_fd_ = -1;
};

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_TRACKIO_H_
