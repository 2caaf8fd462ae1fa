// Exclusive advisory locks (flock) on lock files: one sweep per sweep directory, one trainer per
// run directory.
//
// TryAcquire() never waits: a lock held by another open file description is an Unavailable
// error naming the file and, when the holder wrote it, its pid. An inheritable lock's descriptor
// survives fork and exec, so a child started while it is open holds the lock for as long as it
// (or anything it starts) lives, even after this process closes its copy or dies: the sweep
// hands each trainer its run directory's lock that way, so a rerun after a kill -9 waits for the
// orphaned trainer to finish its checkpoint. Move-only; the destructor closes (and so releases
// this process's hold).
#ifndef CONVFOREVER_SWEEP_FILE_LOCK_H_
#define CONVFOREVER_SWEEP_FILE_LOCK_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cf::sweep {

class FileLock {
 public:
  static absl::StatusOr<FileLock> TryAcquire(const std::string& path, bool inheritable);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Replaces the file's contents with `pid` (for the next one's error message).
  void WriteOwner(pid_t pid);
  // Closes this process's descriptor.
  void Release();

 private:
  FileLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_FILE_LOCK_H_
