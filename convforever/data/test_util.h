// Test helpers for convforever/data: temporary directories and small fixture writers (IDX files,
// CIFAR records, image folders). Test-only.
#ifndef CONVFOREVER_DATA_TEST_UTIL_H_
#define CONVFOREVER_DATA_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "convforever/data/image.h"

namespace cf::data::testing {

// A fresh directory under $TEST_TMPDIR (or /tmp) named after `name`.
std::string TempDir(const std::string& name);
void WriteFile(const std::string& path, const std::string& bytes);
void WriteGzipFile(const std::string& path, const std::string& bytes);
// IDX bytes: a uint8 tensor with the given dims.
std::string IdxBytes(const std::vector<int>& dims, const std::vector<uint8_t>& data);
// A deterministic h x w x c image whose pixels encode (seed, y, x, channel).
Image PatternImage(int h, int w, int c, int seed);
// An uncompressed tar archive (ustar) holding `members` (name, bytes) in order.
std::string TarBytes(const std::vector<std::pair<std::string, std::string>>& members);
// Runfiles path of a file under convforever/data/testdata.
std::string TestdataPath(const std::string& name);

}  // namespace cf::data::testing

#endif  // CONVFOREVER_DATA_TEST_UTIL_H_
