// TEMPORARY: the hand-written SHA-256 this package used before libcrypto, kept only for one benchmark run.
// Used for Git LFS object ids: the Hub names every LFS object by the hex SHA-256 of its bytes.
//
// Sha256 is an incremental hasher (Update any number of times, then Finish once); Sha256File
// streams a file from disk in 1 MiB reads, so multi-gigabyte checkpoints are never held in memory.
// A Sha256 object is thread-compatible (one thread at a time); the free functions are thread-safe.
#ifndef CONVFOREVER_HUB_SHA256_LEGACY_H_
#define CONVFOREVER_HUB_SHA256_LEGACY_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cf::hub::legacy {

class Sha256 {
 public:
  Sha256();
  void Update(absl::string_view data);
  void Update(const void* data, size_t len);
  // The 32-byte digest. The object must not be updated afterwards.
  std::array<uint8_t, 32> Finish();
  // Finish() as 64 lowercase hex characters.
  std::string FinishHex();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

// Hex SHA-256 of a string.
std::string Sha256Hex(absl::string_view data);

// Hex SHA-256 and size of a file, read in chunks. The error names the path.
struct FileDigest {
  std::string sha256;  // 64 lowercase hex characters
  int64_t size = 0;
};
absl::StatusOr<FileDigest> Sha256File(const std::string& path);

}  // namespace cf::hub::legacy

#endif  // CONVFOREVER_HUB_SHA256_LEGACY_H_
