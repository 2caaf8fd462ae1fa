#include "convforever/train/rng_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include <cstring>
#include <exception>
#include <mutex>
#include <sstream>

#ifdef CF_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "glog/logging.h"

namespace cf::train {
namespace {

constexpr char kMagic[8] = {'C', 'F', 'R', 'N', 'G', 0, 0, 1};
constexpr char kTorchCpu[] = "torch/cpu";
constexpr char kTorchCudaPrefix[] = "torch/cuda/";
constexpr char kEnginePrefix[] = "mt/";

absl::StatusOr<std::string> CaptureGenerator(const at::Generator& generator) {
  try {
    at::Generator gen = generator;
    std::lock_guard<std::mutex> lock(gen.mutex());
    at::Tensor state = gen.get_state().contiguous();
    return std::string(static_cast<const char*>(state.data_ptr()), state.numel());
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot read generator state: ", e.what()));
  }
}

absl::Status RestoreGenerator(const at::Generator& generator, const std::string& bytes,
                              absl::string_view name) {
  try {
    at::Tensor state = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
    std::memcpy(state.data_ptr(), bytes.data(), bytes.size());
    at::Generator gen = generator;
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    // LibTorch checks the size and layout; a state from another version or device type fails.
    return absl::InvalidArgumentError(
        absl::StrCat("cannot restore RNG state ", name, " (", bytes.size(), " bytes): ", e.what()));
  }
}

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }
void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), 8); }

// Reads fixed-size little-endian integers and byte strings off the front of `blob`.
class Reader {
 public:
  explicit Reader(absl::string_view blob) : blob_(blob) {}
  bool Take(size_t n, absl::string_view* out) {
    if (blob_.size() - pos_ < n) return false;
    *out = blob_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  template <typename T>
  bool TakeInt(T* out) {
    absl::string_view bytes;
    if (!Take(sizeof(T), &bytes)) return false;
    std::memcpy(out, bytes.data(), sizeof(T));
    return true;
  }
  size_t pos() const { return pos_; }
  bool done() const { return pos_ == blob_.size(); }

 private:
  absl::string_view blob_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<std::string> CaptureTorchCpuRngState() {
  return CaptureGenerator(at::detail::getDefaultCPUGenerator());
}

absl::Status RestoreTorchCpuRngState(const std::string& bytes) {
  return RestoreGenerator(at::detail::getDefaultCPUGenerator(), bytes, kTorchCpu);
}

absl::StatusOr<std::vector<std::string>> CaptureTorchCudaRngStates() {
  std::vector<std::string> states;
#ifdef CF_WITH_CUDA
  const int devices = static_cast<int>(c10::cuda::device_count());
  for (int i = 0; i < devices; ++i) {
    ASSIGN_OR_RETURN(std::string state,
                     CaptureGenerator(at::cuda::detail::getDefaultCUDAGenerator(i)));
    states.push_back(std::move(state));
  }
#endif
  return states;
}

absl::Status RestoreTorchCudaRngStates(const std::vector<std::string>& states) {
#ifdef CF_WITH_CUDA
  const int devices = static_cast<int>(c10::cuda::device_count());
  if (static_cast<int>(states.size()) != devices) {
    LOG(WARNING) << "checkpoint has CUDA RNG states for " << states.size() << " devices, this "
                 << "process sees " << devices << "; restoring the first "
                 << std::min<int>(devices, states.size());
  }
  for (int i = 0; i < devices && i < static_cast<int>(states.size()); ++i) {
    RETURN_IF_ERROR(RestoreGenerator(at::cuda::detail::getDefaultCUDAGenerator(i), states[i],
                                     absl::StrCat(kTorchCudaPrefix, i)));
  }
#else
  if (!states.empty()) {
    LOG(WARNING) << "checkpoint has CUDA RNG states for " << states.size()
                 << " devices; this build has no CUDA, so they are not restored";
  }
#endif
  return absl::OkStatus();
}

std::string SaveEngine(const std::mt19937_64& engine) {
  std::ostringstream out;
  out << engine;
  return out.str();
}

absl::Status LoadEngine(const std::string& bytes, std::mt19937_64* engine) {
  std::istringstream in(bytes);
  std::mt19937_64 parsed;
  in >> parsed;
  if (in.fail()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a std::mt19937_64 state (", bytes.size(), " bytes)"));
  }
  *engine = parsed;
  return absl::OkStatus();
}

absl::StatusOr<RngState> CaptureRngState(
    const std::map<std::string, const std::mt19937_64*>& engines) {
  RngState state;
  ASSIGN_OR_RETURN(state.sections[kTorchCpu], CaptureTorchCpuRngState());
  ASSIGN_OR_RETURN(std::vector<std::string> cuda, CaptureTorchCudaRngStates());
  for (size_t i = 0; i < cuda.size(); ++i) {
    state.sections[absl::StrCat(kTorchCudaPrefix, i)] = std::move(cuda[i]);
  }
  for (const auto& [name, engine] : engines) {
    state.sections[absl::StrCat(kEnginePrefix, name)] = SaveEngine(*engine);
  }
  return state;
}

absl::Status RestoreRngState(const RngState& state,
                             const std::map<std::string, std::mt19937_64*>& engines) {
  auto cpu = state.sections.find(kTorchCpu);
  if (cpu == state.sections.end()) return absl::NotFoundError("RNG state has no torch/cpu");
  RETURN_IF_ERROR(RestoreTorchCpuRngState(cpu->second));
  std::vector<std::string> cuda;
  for (size_t i = 0;; ++i) {
    auto it = state.sections.find(absl::StrCat(kTorchCudaPrefix, i));
    if (it == state.sections.end()) break;
    cuda.push_back(it->second);
  }
  RETURN_IF_ERROR(RestoreTorchCudaRngStates(cuda));
  for (const auto& [name, engine] : engines) {
    auto it = state.sections.find(absl::StrCat(kEnginePrefix, name));
    if (it == state.sections.end()) {
      return absl::NotFoundError(absl::StrCat("RNG state has no engine \"", name, "\""));
    }
    if (absl::Status s = LoadEngine(it->second, engine); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("engine \"", name, "\": ", s.message()));
    }
  }
  return absl::OkStatus();
}

std::string EncodeRngState(const RngState& state) {
  std::string out(kMagic, sizeof(kMagic));
  PutU32(&out, static_cast<uint32_t>(state.sections.size()));
  for (const auto& [name, bytes] : state.sections) {
    PutU32(&out, static_cast<uint32_t>(name.size()));
    out += name;
    PutU64(&out, bytes.size());
    out += bytes;
  }
  return out;
}

absl::StatusOr<RngState> DecodeRngState(absl::string_view blob) {
  Reader reader(blob);
  absl::string_view magic;
  if (!reader.Take(sizeof(kMagic), &magic) || std::memcmp(magic.data(), kMagic, 8) != 0) {
    return absl::DataLossError("not a ConvForever RNG state (bad magic)");
  }
  uint32_t count;
  if (!reader.TakeInt(&count)) return absl::DataLossError("RNG state truncated in the header");
  RngState state;
  for (uint32_t i = 0; i < count; ++i) {
    const size_t at = reader.pos();
    uint32_t name_len;
    uint64_t len;
    absl::string_view name, bytes;
    if (!reader.TakeInt(&name_len) || !reader.Take(name_len, &name) || !reader.TakeInt(&len) ||
        !reader.Take(len, &bytes)) {
      return absl::DataLossError(
          absl::StrCat("RNG state truncated in section ", i, " at byte ", at));
    }
    if (!state.sections.emplace(std::string(name), std::string(bytes)).second) {
      return absl::DataLossError(absl::StrCat("RNG state has section \"", name, "\" twice"));
    }
  }
  if (!reader.done()) {
    return absl::DataLossError(
        absl::StrCat("RNG state has trailing bytes after byte ", reader.pos()));
  }
  return state;
}

}  // namespace cf::train
