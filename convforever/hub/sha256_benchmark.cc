// sha256_benchmark: MB/s of Sha256File (the LFS object id of a checkpoint) on a --megabytes file
// written to --dir, read back through the page cache. The hand-written SHA-256 this replaced was
// measured side by side once before it was deleted (git log of this file): 103-107 MB/s against
// 494-657 MB/s for libcrypto on 1 GiB (AMD EPYC, 2 shared cores).
// Run: bazel run --config=benchmark //convforever/hub:sha256_benchmark
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "convforever/hub/sha256.h"
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
  std::string digest;
  const double evp = BestMBps(path, [](const std::string& p) {
    return cf::hub::Sha256File(p).value().sha256;
  }, &digest);
  std::remove(path.c_str());
  std::printf("sha256 of %d MiB (libcrypto EVP): %.0f MB/s, %s\n", FLAGS_megabytes, evp,
              digest.c_str());
  return 0;
}
