// ParseSafetensors: the reader behind every checkpoint, Hub download and --init_from file.
// Promises checked on success: the tensors' bytes add up to the data buffer exactly (the format
// allows no holes), and serializing what was read and parsing it again gives the same names,
// dtypes, shapes and bytes (what we write, we read back).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <ATen/ATen.h>

#include "absl/strings/string_view.h"
#include "convforever/models/safetensors.h"
#include "convforever/fuzz/check.h"

namespace {

bool SameTensors(const cf::models::NamedTensors& a, const cf::models::NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const at::Tensor& x = a[i].second;
    const at::Tensor& y = b[i].second;
    if (a[i].first != b[i].first || x.scalar_type() != y.scalar_type() || x.sizes() != y.sizes() ||
        (x.nbytes() > 0 && std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) != 0)) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<cf::models::SafetensorsFile> file = cf::models::ParseSafetensors(bytes, "<fuzz>");
  if (!file.ok()) return 0;

  uint64_t header = 0;
  std::memcpy(&header, data, sizeof(header));  // a file that parsed has its 8-byte length
  size_t tensor_bytes = 0;
  for (const auto& [name, tensor] : file->tensors) tensor_bytes += tensor.nbytes();
  CF_FUZZ_FAIL_IF(8 + header + tensor_bytes != size);

  absl::StatusOr<std::string> again = cf::models::SerializeSafetensors(file->tensors, file->metadata);
  CF_FUZZ_FAIL_IF(!again.ok());
  absl::StatusOr<cf::models::SafetensorsFile> reread = cf::models::ParseSafetensors(*again, "<reserialized>");
  if (!reread.ok() || !SameTensors(file->tensors, reread->tensors) || reread->metadata != file->metadata) {
    CF_FUZZ_FAIL("reserializing and parsing gives the same tensors and metadata");
  }
  return 0;
}
