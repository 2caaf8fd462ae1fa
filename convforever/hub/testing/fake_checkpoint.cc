// WriteFakeCheckpoint / ReadFileOrDie (see fake_hub.h).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "convforever/hub/testing/fake_hub.h"
#include "glog/logging.h"

namespace cf::hub::testing {

absl::Status WriteFakeCheckpoint(const std::string& dir, int64_t model_bytes, int seed) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  const int64_t n = std::max<int64_t>(1, model_bytes / 4);
  std::string header = absl::StrCat(
      "{\"__metadata__\":{\"format\":\"pt\"},\"head.fc.weight\":{\"dtype\":\"F32\",\"shape\":[", n,
      "],\"data_offsets\":[0,", 4 * n, "]}}");
  while (header.size() % 8 != 0) header.push_back(' ');
  std::string blob(8, '\0');
  for (int i = 0; i < 8; ++i) blob[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  blob += header;
  uint32_t x = 2463534242u + static_cast<uint32_t>(seed);
  for (int64_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;  // xorshift32: incompressible, seed-dependent
    const float v = static_cast<float>(x % 20001) / 10000.0f - 1.0f;
    blob.append(reinterpret_cast<const char*>(&v), 4);
  }
  std::ofstream(dir + "/model.safetensors", std::ios::binary) << blob;
  std::ofstream(dir + "/config.json")
      << "{\"architectures\":[\"ConvNextForImageClassification\"],\"model_type\":\"convnext\","
         "\"hidden_sizes\":[96,192,384,768],\"depths\":[3,3,9,3],\"seed\":"
      << seed << "}\n";
  std::ofstream(dir + "/README.md") << "---\nlibrary_name: timm\n---\n# test checkpoint " << seed
                                    << "\n";
  return absl::OkStatus();
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CHECK(in) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace cf::hub::testing
