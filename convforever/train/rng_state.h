// Random-number-generator state for exact resume: LibTorch's default CPU generator (dropout,
// drop path, torch::rand*), its CUDA generators when built with CF_WITH_CUDA, and any number of
// named std::mt19937_64 engines (data shuffling, augmentation), captured as bytes and restored
// bit for bit, so a run killed and resumed draws the same numbers as one that never stopped.
//
// RngState is a set of named byte strings ("torch/cpu", "torch/cuda/<i>", "mt/<name>").
// EncodeRngState() makes one versioned binary blob (for a `rng_state.bin` in a checkpoint; use
// absl::Base64Escape to put it in JSON); DecodeRngState() validates it and names what is wrong.
//
// The torch generator states are opaque and version-specific (LibTorch's own get_state() bytes):
// resuming under another LibTorch version may be refused with a clear error. CUDA states are
// restored for the devices present in both the checkpoint and the process (a warning otherwise).
// Capture/restore lock each generator's mutex, as LibTorch requires; they are otherwise not
// synchronized with other threads drawing numbers, so call them between steps.
#ifndef CONVFOREVER_TRAIN_RNG_STATE_H_
#define CONVFOREVER_TRAIN_RNG_STATE_H_

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cf::train {

struct RngState {
  std::map<std::string, std::string> sections;  // name -> opaque bytes
};

// LibTorch's default CPU generator.
absl::StatusOr<std::string> CaptureTorchCpuRngState();
absl::Status RestoreTorchCpuRngState(const std::string& bytes);

// One state per visible CUDA device; empty in CPU-only builds.
absl::StatusOr<std::vector<std::string>> CaptureTorchCudaRngStates();
absl::Status RestoreTorchCudaRngStates(const std::vector<std::string>& states);

// std::mt19937_64's standard textual state (exact by the C++ standard's definition).
std::string SaveEngine(const std::mt19937_64& engine);
absl::Status LoadEngine(const std::string& bytes, std::mt19937_64* engine);

// Everything at once: torch CPU (+ CUDA) and the given engines under "mt/<name>".
absl::StatusOr<RngState> CaptureRngState(
    const std::map<std::string, const std::mt19937_64*>& engines);
// Restores the torch generators and every engine named in `engines`; an engine missing from the
// state is a NotFound error naming it (extra sections in the state are ignored).
absl::Status RestoreRngState(const RngState& state,
                             const std::map<std::string, std::mt19937_64*>& engines);

// "CFRNG\0\0\1" | u32 count | count x (u32 name_len, name, u64 len, bytes), little-endian.
std::string EncodeRngState(const RngState& state);
absl::StatusOr<RngState> DecodeRngState(absl::string_view blob);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_RNG_STATE_H_
