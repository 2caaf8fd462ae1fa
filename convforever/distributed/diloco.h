// DiLoCo: distributed low-communication training (Douillard et al. 2023, "DiLoCo: Distributed
// Low-Communication Training of Language Models"), with the int8 pseudo-gradients of OpenDiLoCo /
// INTELLECT-1 and the fragments and overlap of Streaming DiLoCo (Douillard et al. 2025).
//
// Each rank runs H inner steps of its own optimizer on its own data with no gradient
// communication. Then the ranks average their pseudo-gradients delta_r = theta_last - theta_r
// (theta_last: the weights of the previous outer step, identical on every rank) and every rank
// applies the same outer step, SGD with momentum mu (Nesterov by default, lr 0.7, mu 0.9):
//   m = mu * m + avg_delta
//   theta = theta_last - lr * (avg_delta + mu * m)     Nesterov
//   theta = theta_last - lr * m                        plain momentum
// and sets its weights and theta_last to theta. With H = 1, an inner SGD without momentum and an
// outer SGD with lr 1 and mu 0 this is exactly data parallel: avg(theta - theta_r) = lr_in * avg(g).
//
// Fragments (F >= 1): the parameters, in registration order, are cut into F contiguous fragments
// of about equal element count. Fragment f synchronises after inner step s (1-based count since
// the start of training) when s % H == ((f + 1) * H / F) % H, i.e. at offsets H/F, 2H/F, ..., H
// inside every window of H steps: each fragment once per H steps, in turn, and with F = 1 at
// every multiple of H. Needs H >= F. With `overlap`, a fragment's collective is launched after
// step s and applied after step s + 1 (its communication hides behind one inner step); the inner
// step taken meanwhile is kept: theta_r = theta_new + (theta_r(s + 1) - theta_r(s)).
//
// Wire formats (pseudo_gradient_codec.h): fp32 and bf16 are all-reduced (sum, then / W); int8 is
// all-gathered (values + per-chunk scales) and averaged locally. bf16 and int8 keep an error
// feedback residual per parameter (rank-local state). Every collective goes through the
// Communicator as TensorKind::kPseudoGradient: per fragment sync one all-reduce of 4N (fp32) or
// 2N (bf16) bytes, or one all-gather of N + 4 ceil(N / chunk) bytes sent (int8).
//
// State: theta_last and momentum (fp32, identical on every rank: OuterState), the error feedback
// (per rank: RankState), and with overlap a collective's result not yet applied (both). Only the
// trainable parameters take part; buffers (norm statistics) stay each rank's own.
// Not thread-safe; one thread calls everything, in the same order on every rank (as collectives).
#ifndef CONVFOREVER_DISTRIBUTED_DILOCO_H_
#define CONVFOREVER_DISTRIBUTED_DILOCO_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/pseudo_gradient_codec.h"

namespace cf::distributed {

struct DiLoCoOptions {
  int64_t inner_steps = 50;  // H
  double outer_lr = 0.7;
  double outer_momentum = 0.9;
  bool outer_nesterov = true;
  WireDtype dtype = WireDtype::kFp32;
  int64_t int8_chunk = 4096;  // elements per fp32 scale
  int fragments = 1;          // F (Streaming DiLoCo); 1 = the whole model at once
  bool overlap = false;       // apply each fragment's average one inner step after launching it
};

// Errors name the field: H >= 1, F >= 1, H >= F, lr > 0, momentum in [0, 1), chunk >= 1.
absl::Status ValidateDiLoCoOptions(const DiLoCoOptions& options);

class DiLoCo {
 public:
  using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
  using Metadata = std::map<std::string, std::string>;

  // `params`: the trainable parameters (float32), by name, identical on every rank now (after the
  // initial broadcast): they become theta_last. The tensors must outlive the DiLoCo.
  static absl::StatusOr<std::unique_ptr<DiLoCo>> Create(Communicator* comm, NamedTensors params,
                                                        DiLoCoOptions options);

  // After inner step `steps_done` (1 after the first step of the run): applies a pending overlapped
  // fragment, then synchronises the fragment due now (if any).
  absl::Status AfterInnerStep(int64_t steps_done);
  // End of training after `steps_done` steps: applies a pending fragment, then synchronises every
  // fragment that did not just synchronise, so that all ranks end with the same weights.
  absl::Status SyncAll(int64_t steps_done);
  // The fragment due after step `steps_done`, or -1.
  int FragmentDueAt(int64_t steps_done) const;
  // Completes an overlapped collective in flight (without applying it), so that the state below is
  // complete. Call before a checkpoint.
  absl::Status FinishCommunication();

  // Starts over from the weights the parameters hold now (a checkpoint without DiLoCo state was
  // loaded): they become theta_last; momentum, error feedback and any pending fragment are cleared.
  void RestartFromCurrentWeights();

  // theta_last and momentum ("theta_last/<param>", "momentum/<param>") and a pending average
  // ("pending_avg/<fragment>"); identical on every rank. Call FinishCommunication() first.
  NamedTensors OuterState(Metadata* meta) const;
  absl::Status LoadOuterState(const NamedTensors& tensors, const Metadata& meta,
                              const std::string& source);
  // This rank's error feedback ("error_feedback/<param>") and its local delta of a pending fragment.
  // LoadRankState after LoadOuterState (which says whether a fragment is pending).
  NamedTensors RankState() const;
  absl::Status LoadRankState(const NamedTensors& tensors, const std::string& source);

  const DiLoCoOptions& options() const { return options_; }
  int num_fragments() const { return static_cast<int>(fragments_.size()); }
  int64_t fragment_numel(int f) const { return fragments_[f].numel; }
  // The wire bytes one rank sends for fragment f per sync.
  int64_t WireBytes(int f) const;

 private:
  struct Slot {
    std::string name;
    at::Tensor param;
    int fragment = 0;
    int64_t offset = 0;  // into the fragment's flat buffers
  };
  struct Fragment {
    std::vector<int> slots;
    int64_t numel = 0;
    int64_t offset_in_window = 0;  // synchronises when steps_done % H == this % H
    at::Tensor theta_last, momentum, residual;  // [numel] float32; residual only when lossy
  };
  struct Pending {
    int fragment = -1;
    AsyncWork work;
    at::Tensor wire;   // this rank's wire tensor (reduced in place for fp32/bf16)
    at::Tensor gathered;  // int8: [W * wire bytes]
    at::Tensor local_delta;  // [numel] float32, this rank's delta at launch
    at::Tensor avg;    // [numel] float32 once the collective finished
  };

  DiLoCo(Communicator* comm, DiLoCoOptions options) : comm_(comm), options_(options) {}
  at::Tensor Flatten(const Fragment& fr) const;
  absl::Status Launch(int f);
  absl::Status Finish(Pending& p);
  void ApplyOuterStep(Pending& p);

  Communicator* comm_;
  DiLoCoOptions options_;
  std::vector<Slot> slots_;
  std::vector<Fragment> fragments_;
  Pending pending_;
};

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_DILOCO_H_
