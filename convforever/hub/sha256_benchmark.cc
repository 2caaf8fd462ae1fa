// sha256_benchmark: MB/s of Sha256File (the LFS object id of a checkpoint) on a --megabytes file
// written to --dir, read back through the page cache. Side by side in the same run: the
// hand-written implementation this package used before libcrypto (sha256_legacy.h), while it is
// kept for the comparison. Both must agree on the digest.
// Run: bazel run --config=benchmark //convforever/hub:sha256_benchmark
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "convforever/hub/sha256.h"
#include "convforever/hub/sha256_legacy.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

DEFINE_int32(megabytes, 1024, "size of the file hashed (MiB)");
DEFINE_string(dir, "/tmp", "where the file is written (and removed afterwards)");
DEFINE_int32(repeats, 2, "best of this many runs per implementation");

namespace {

template <typename HashFile>
double BestMBps(const std::string& path, HashFile hash, std::string* digest) {
  double best = 0;
  for (int r = 0; r < FLAGS_repeats; ++r) {
    const absl::Time start = absl::Now();
    *digest = hash(path);
    const double s = absl::ToDoubleSeconds(absl::Now() - start);
    best = std::max(best, FLAGS_megabytes / s);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  const std::string path = absl::StrFormat("%s/sha256_benchmark.%d.bin", FLAGS_dir, getpid());
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    CHECK(f != nullptr) << "cannot create " << path;
    std::vector<char> block(1 << 20);
    for (int mb = 0; mb < FLAGS_megabytes; ++mb) {
      for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 131 + mb * 7);
      CHECK_EQ(std::fwrite(block.data(), 1, block.size(), f), block.size()) << "writing " << path;
    }
    CHECK_EQ(std::fclose(f), 0);
  }
  std::string evp_digest, legacy_digest;
  const double legacy = BestMBps(path, [](const std::string& p) {
    return cf::hub::legacy::Sha256File(p).value().sha256;
  }, &legacy_digest);
  const double evp = BestMBps(path, [](const std::string& p) {
    return cf::hub::Sha256File(p).value().sha256;
  }, &evp_digest);
  std::remove(path.c_str());
  CHECK_EQ(evp_digest, legacy_digest) << "the two implementations disagree";
  std::printf("sha256 of %d MiB: libcrypto EVP %.0f MB/s, hand-written %.0f MB/s (x%.2f)\n",
              FLAGS_megabytes, evp, legacy, evp / legacy);
  return 0;
}
