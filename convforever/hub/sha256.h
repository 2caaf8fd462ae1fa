// SHA-256 for Git LFS object ids (the Hub names every LFS object by the hex SHA-256 of its bytes),
// computed by OpenSSL's libcrypto through its EVP digest API (third_party/openssl).
//
// Sha256 is an incremental hasher (Update any number of times, then Finish once); Sha256File
// streams a file from disk in 1 MiB reads, so multi-gigabyte checkpoints are never held in memory.
// A Sha256 object is thread-compatible (one thread at a time) and move-only; the free functions
// are thread-safe. A libcrypto failure (it has none for SHA-256 short of memory exhaustion) is a
// CHECK failure: it is not an input error a caller could handle.
#ifndef CONVFOREVER_HUB_SHA256_H_
#define CONVFOREVER_HUB_SHA256_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;  // <openssl/evp.h>, kept out of this header

namespace cf::hub {

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
  struct FreeContext {
    void operator()(EVP_MD_CTX* ctx) const;
  };
  std::unique_ptr<EVP_MD_CTX, FreeContext> ctx_;
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

}  // namespace cf::hub

#endif  // CONVFOREVER_HUB_SHA256_H_
