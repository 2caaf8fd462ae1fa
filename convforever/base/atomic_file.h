// Crash-safe file writes: a reader sees either the old file or the complete new one, never a
// partial write, even if the process is killed (SIGKILL) or the machine loses power mid-write.
//
// The contents go to a temporary file in the same directory (`.<name>.tmp.<pid>.<n>`), which is
// written, fsync'ed, renamed over the destination, and then the directory is fsync'ed so the
// rename itself is durable. A killed writer leaves at most a stray temporary file, which
// RemoveStaleTempFiles() cleans up. Thread-compatible: distinct paths may be written from distinct
// threads; concurrent writers of one path race benignly (last rename wins).
#ifndef CONVFOREVER_BASE_ATOMIC_FILE_H_
#define CONVFOREVER_BASE_ATOMIC_FILE_H_

#include <cstdio>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cf::base {

// Writes `contents` to `path` atomically (see file comment).
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// Streaming form for large outputs (checkpoints): Open(), Append() any number of times, then
// Commit(). Destroying an uncommitted writer removes the temporary file and leaves `path` as it was.
class AtomicFileWriter {
 public:
  AtomicFileWriter() = default;
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  absl::Status Open(const std::string& path);
  absl::Status Append(absl::string_view data);
  // Flushes, fsyncs, renames over the destination and fsyncs the directory.
  absl::Status Commit();
  // Discards the temporary file; the destination is untouched.
  void Abort();

  const std::string& temp_path() const { return temp_path_; }

  // Test hook: runs after the data is durable in the temp file and before the rename. A test
  // uses it to kill the process at the worst moment.
  std::function<void()> before_rename_for_test;

 private:
  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
};

// fsyncs a directory so that entries created or renamed in it are durable.
absl::Status SyncDirectory(const std::string& dir);

// Removes `.<name>.tmp.*` files left in `dir` by killed writers. Returns how many were removed.
int RemoveStaleTempFiles(const std::string& dir);

}  // namespace cf::base

#endif  // CONVFOREVER_BASE_ATOMIC_FILE_H_
