#include "convforever/hub/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace cf::hub {

void Sha256::FreeContext::operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  CHECK(ctx_ != nullptr) << "EVP_MD_CTX_new failed";
  CHECK_EQ(EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr), 1) << "EVP_DigestInit_ex(sha256)";
}

void Sha256::Update(absl::string_view data) { Update(data.data(), data.size()); }

void Sha256::Update(const void* data, size_t len) {
  CHECK(!finished_) << "Sha256::Update after Finish";
  if (len == 0) return;
  CHECK_EQ(EVP_DigestUpdate(ctx_.get(), data, len), 1) << "EVP_DigestUpdate";
}

std::array<uint8_t, 32> Sha256::Finish() {
  CHECK(!finished_) << "Sha256::Finish called twice";
  finished_ = true;
  std::array<uint8_t, 32> out;
  unsigned int n = 0;
  CHECK_EQ(EVP_DigestFinal_ex(ctx_.get(), out.data(), &n), 1) << "EVP_DigestFinal_ex";
  CHECK_EQ(n, out.size());
  return out;
}

std::string Sha256::FinishHex() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t b : Finish()) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 15]);
  }
  return hex;
}

std::string Sha256Hex(absl::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.FinishHex();
}

absl::StatusOr<FileDigest> Sha256File(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path, " to hash it"));
  std::vector<char> buf(1 << 20);
  Sha256 h;
  FileDigest digest;
  for (;;) {
    const size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    if (n > 0) {
      h.Update(buf.data(), n);
      digest.size += static_cast<int64_t>(n);
    }
    if (n < buf.size()) {
      if (std::ferror(f.get())) return absl::DataLossError(absl::StrCat("read error hashing ", path));
      break;
    }
  }
  digest.sha256 = h.FinishHex();
  return digest;
}

}  // namespace cf::hub
