// The pickle machine behind ReadTorchSaveStateDict (torch.save files: a checkpoint from anywhere
// on the internet, given to --init_from or `models export`). The input is data.pkl; every storage
// record holds the same 64 bytes, so the fuzzer can reach tensor rebuilding by finding sizes that
// match them. Promises checked on success: each tensor is contiguous, and no tensor holds more
// bytes than a storage (64).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <ATen/ATen.h>

#include "convforever/models/torch_pickle.h"
#include "convforever/fuzz/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kStorage(64, '\x3f');
  const std::string_view pickle(reinterpret_cast<const char*>(data), size);
  auto read = [](const std::string& key) -> absl::StatusOr<std::string_view> {
    if (key.size() > 8) return absl::NotFoundError("no such record");
    return std::string_view(kStorage);
  };
  absl::StatusOr<cf::models::NamedTensors> tensors =
      cf::models::ParseTorchPickleStateDict(pickle, read, "<fuzz>");
  if (!tensors.ok()) return 0;
  for (const auto& [name, tensor] : *tensors) {
    CF_FUZZ_FAIL_IF(!tensor.is_contiguous() || tensor.nbytes() > kStorage.size());
  }
  return 0;
}
