// PowerSGD: low-rank gradient compression with error feedback (Vogels, Karimireddy, Jaggi,
// "PowerSGD: Practical Low-Rank Gradient Compression for Distributed Optimization", NeurIPS
// 2019; the design of torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook), as
// DataParallel's GradientReducer (gradient_reducer.h) under the trainer's --sync=powersgd.
//
// Per bucket and step, once `start_iter` steps of plain all-reduce are done:
//   * 1-D tensors (biases, norm weights) and matrices not worth compressing are copied into one
//     flat tensor and all-reduced uncompressed (TensorKind::kGradient).
//   * Every other gradient is viewed as a matrix [n, m] = [shape[0], numel / shape[0]] and, with
//     r = min(rank, n, m) and this rank's error e [n, m] (zero at first):
//       M = grad + e
//       P = M Q                    Q [m, r]: warm-started (last step's, re-orthogonalised) or
//                                  drawn from a seeded normal distribution, identical on all ranks
//       all-reduce P               all P's of the bucket in one flat tensor (kCompressed)
//       orthogonalise P's columns  (Householder QR; Gram-Schmidt for 16-bit types)
//       Q = M^T P; all-reduce Q    (kCompressed): Q = sum_i M_i^T P, the same on every rank
//       approx = P Q^T / world     the rank-r estimate of the mean of the M_i
//       e = M - approx             (error feedback: what was not sent goes into the next step)
//       grad = approx
//   A matrix is compressed only when n*m >= min_compression_rate * r*(n+m): the factors then
//   move 4r(n+m) bytes (fp32) instead of 4nm.
// Since every rank's Q and P after the all-reduces are the same, the warm-start Q is identical
// across ranks; the errors e differ per rank. SaveState/LoadState keep both (one file per rank).
//
// Not thread-safe; called by DataParallel under its lock. The Communicator must outlive it.
#ifndef CONVFOREVER_DISTRIBUTED_POWERSGD_H_
#define CONVFOREVER_DISTRIBUTED_POWERSGD_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/gradient_reducer.h"

namespace cf::distributed {

struct PowerSgdOptions {
  int rank = 4;                       // r, the approximation's rank (capped at min(n, m))
  int64_t start_iter = 10;            // plain all-reduce for the first N steps (torch's
                                      // start_powerSGD_iter): early gradients change fast
  bool warm_start = true;             // reuse last step's Q (one power iteration per step)
  double min_compression_rate = 2.0;  // compress when n*m >= rate * r*(n+m); 0 = every matrix
  bool use_error_feedback = true;
  double orthogonalization_epsilon = 1e-8;  // Gram-Schmidt only: column / (norm + epsilon)
  uint64_t seed = 0;                  // of the random Q's (every rank must pass the same)
};

// --- The math, exposed for tests ---

// A gradient of `shape` as a matrix [shape[0], numel / shape[0]]; {0, 0} for 0-D and 1-D shapes.
std::pair<int64_t, int64_t> MatrixShape(const std::vector<int64_t>& shape);
// Whether [n, m] is compressed at rank `rank` (capped at min(n, m)).
bool WorthCompressing(int64_t n, int64_t m, int rank, double min_compression_rate);
// Makes the columns of `matrix` [n, r] (r <= n) orthonormal in place, spanning at least the
// columns' span: Householder QR for float/double (exact to rounding even when the columns are
// dependent), Gram-Schmidt with `epsilon` for other types.
void OrthogonalizeColumns(at::Tensor matrix, double epsilon);
void GramSchmidt(at::Tensor matrix, double epsilon);

class PowerSgd : public GradientReducer {
 public:
  PowerSgd(Communicator* comm, PowerSgdOptions options);

  void SetBuckets(const std::vector<BucketLayout>& buckets) override;
  AsyncWork ReduceAsync(int bucket, at::Tensor flat) override;

  // `dir`/powersgd_rank<r>_of<W>.pt: every bucket's step count, warm-start Q and error.
  static std::string StatePath(const std::string& dir, int rank, int world_size);
  absl::Status SaveState(const std::string& dir) const;
  // NotFound when `dir` has no file for this rank and world size; FailedPrecondition (naming the
  // file) when it is another layout's or rank's.
  absl::Status LoadState(const std::string& dir);
  // Forgets errors and Q's (they are drawn anew) and counts steps from `iteration`: a run that
  // switches to PowerSGD from a checkpoint without its state.
  void RestartAt(int64_t iteration);

  // Of one step once compression runs, summed over the buckets (element size of the gradients,
  // assumed 4 bytes before the first reduction): what the ledger counts as kCompressed and as
  // kGradient.
  int64_t compressed_bytes_per_step() const;
  int64_t uncompressed_bytes_per_step() const;
  int compressed_tensors() const;
  int uncompressed_tensors() const;
  const PowerSgdOptions& options() const { return options_; }

 private:
  struct Matrix {
    std::string name;
    int64_t offset = 0;  // into the bucket's flat buffer
    int64_t n = 0, m = 0, r = 0;
    int64_t p_offset = 0, q_offset = 0, error_offset = 0;  // into p, q, error
  };
  struct Uncompressed {
    int64_t offset = 0, numel = 0;
  };
  struct BucketState {
    std::vector<Matrix> matrices;
    std::vector<Uncompressed> uncompressed;
    int64_t p_numel = 0, q_numel = 0, error_numel = 0, uncompressed_numel = 0;
    at::Tensor p, q, error;  // [p_numel], [q_numel], [error_numel]: the flat buffer's options
    at::Tensor packed;       // [uncompressed_numel]
    bool q_ready = false;    // q holds a Q to warm-start from
    int64_t iteration = 0;   // reductions done
  };

  void Materialize(BucketState& b, const at::Tensor& flat);
  void PrepareQ(BucketState& b, int bucket, int64_t iteration);
  absl::Status Finish(BucketState& b, at::Tensor flat, AsyncWork& packed_work, AsyncWork& p_work);

  Communicator* comm_;
  PowerSgdOptions options_;
  std::vector<BucketState> buckets_;
  int64_t element_size_ = 4;
};

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_POWERSGD_H_
