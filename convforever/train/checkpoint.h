// Checkpoint directories that survive kill -9 and power loss, with rotation and a "best" pointer.
//
// Layout under `<run_dir>/checkpoints/`:
//   step-00001000/ ...files... DONE   a complete checkpoint (DONE written last, atomically)
//   .tmp-step-00002000/               being written (or left by a killed writer: cleaned up)
//   best.json                         {"step":1000,"dir":"step-00001000","metric":0.91}
//
// Save() protocol: the caller's writer fills `.tmp-step-N/`; every file in it is fsynced, then the
// directory; it is renamed to `step-N/` and `checkpoints/` is fsynced; then `DONE` (JSON: step,
// file list, wall time) is written with cf::base::WriteFileAtomically. A directory without DONE
// is never used: FindLatestComplete() (for --resume=auto) returns the newest step with DONE and
// removes temp directories and DONE-less step directories, which only a killed writer leaves.
//
// "best" is a small JSON pointer, not a copy: checkpoints are large, a copy doubles the disk
// write and the time the trainer waits, and a pointer is updated atomically with one rename.
// Rotation keeps the newest `keep_last_k` complete checkpoints plus the one best.json points to,
// so the pointer never dangles. (Publishing a standalone "best" folder is the uploader's job.)
//
// Steps are zero-padded to 8 digits for `ls` ordering; larger steps simply get longer names and
// ordering always uses the parsed number. One writer per run directory (rank 0; under ZeRO the
// other ranks only add their shard files to TempDirPath(step) while rank 0's writer runs);
// not thread-safe.
#ifndef CONVFOREVER_TRAIN_CHECKPOINT_H_
#define CONVFOREVER_TRAIN_CHECKPOINT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cf::train {

struct CheckpointInfo {
  int64_t step = 0;
  std::string path;  // <run_dir>/checkpoints/step-XXXXXXXX
};

struct BestCheckpoint {
  int64_t step = 0;
  std::string path;
  double metric = 0;  // what the trainer called best (e.g. EMA top-1); NaN allowed
};

class CheckpointManager {
 public:
  // Writes the checkpoint's files into `dir` (an existing, empty temp directory). Plain writes
  // are fine: Save() fsyncs everything afterwards.
  using WriterFn = std::function<absl::Status(const std::string& dir)>;

  // keep_last_k >= 1 (smaller values are treated as 1).
  CheckpointManager(std::string run_dir, int keep_last_k);

  // Writes checkpoint `step` (see file comment) and returns its final path. If `is_best`,
  // best.json then points at it with `metric`. Rotation runs after a successful save. An
  // existing complete checkpoint for the same step is replaced. Errors name the path.
  absl::StatusOr<std::string> Save(int64_t step, const WriterFn& writer, bool is_best = false,
                                   double metric = 0);

  // Newest complete checkpoint, or nullopt when there is none. With `clean` (the trainer, which
  // is the run's only writer) leftovers are removed first (see above); a reader that may run
  // beside a live trainer (evaluate) passes clean=false so it never deletes a save in progress.
  absl::StatusOr<std::optional<CheckpointInfo>> FindLatestComplete(bool clean = true);

  // All complete checkpoints, oldest first. Does not clean.
  absl::StatusOr<std::vector<CheckpointInfo>> ListComplete() const;

  // The checkpoint best.json points to, if it exists and is complete.
  absl::StatusOr<std::optional<BestCheckpoint>> Best() const;

  // Removes `.tmp-step-*` and DONE-less `step-*` directories; returns how many.
  absl::StatusOr<int> CleanIncomplete();

  const std::string& checkpoints_dir() const { return dir_; }
  static std::string StepDirName(int64_t step);  // "step-00001000"
  // Where Save(step, ...) lets its writer fill the checkpoint: `<checkpoints_dir>/.tmp-step-N`.
  // Other processes (ZeRO ranks > 0) write their own files there while rank 0's writer runs.
  std::string TempDirPath(int64_t step) const;

  // Test hook: runs after the rename to step-N and before DONE is written.
  std::function<void()> before_done_for_test;

 private:
  absl::Status Rotate();

  std::string run_dir_;
  std::string dir_;
  int keep_last_k_;
};

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_CHECKPOINT_H_
