#include "convforever/train/rank_rng.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/train/rng_state.h"

namespace cf::train {

absl::StatusOr<std::vector<std::string>> GatherRngStates(distributed::Communicator& comm,
                                                         const c10::Device& device) {
  ASSIGN_OR_RETURN(RngState rng, CaptureRngState({}));
  const std::string mine = EncodeRngState(rng);
  std::vector<double> longest = {static_cast<double>(mine.size())};
  RETURN_IF_ERROR(comm.AllReduceScalars(longest, distributed::ReduceOp::kMax));
  const int64_t slot = 8 + static_cast<int64_t>(longest[0]);
  at::Tensor send = at::zeros({slot}, at::kByte);
  uint8_t* p = send.data_ptr<uint8_t>();
  const uint64_t n = mine.size();
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(p + 8, mine.data(), mine.size());
  at::Tensor all = at::empty({comm.world_size() * slot}, at::TensorOptions().dtype(at::kByte).device(device));
  RETURN_IF_ERROR(comm.AllGather(send.to(device), all, distributed::TensorKind::kControl));
  all = all.cpu();
  const uint8_t* q = all.data_ptr<uint8_t>();
  std::vector<std::string> states;
  for (int r = 0; r < comm.world_size(); ++r) {
    const uint8_t* s = q + r * slot;
    uint64_t len = 0;
    for (int i = 0; i < 8; ++i) len |= static_cast<uint64_t>(s[i]) << (8 * i);
    if (len > static_cast<uint64_t>(slot - 8)) {
      return absl::DataLossError(absl::StrCat("rank ", r, "'s RNG state claims ", len,
                                              " bytes in a slot of ", slot - 8));
    }
    states.emplace_back(reinterpret_cast<const char*>(s + 8), len);
  }
  return states;
}

}  // namespace cf::train
