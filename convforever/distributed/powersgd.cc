#include "convforever/distributed/powersgd.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <tuple>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "absl/strings/str_cat.h"
#include "convforever/base/atomic_file.h"

namespace cf::distributed {

std::pair<int64_t, int64_t> MatrixShape(const std::vector<int64_t>& shape) {
  if (shape.size() < 2) return {0, 0};
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (shape[0] == 0) return {0, 0};
  return {shape[0], numel / shape[0]};
}

bool WorthCompressing(int64_t n, int64_t m, int rank, double min_compression_rate) {
  if (n <= 0 || m <= 0 || rank <= 0) return false;
  const int64_t r = std::min<int64_t>({rank, n, m});
  return static_cast<double>(n) * static_cast<double>(m) >=
         min_compression_rate * static_cast<double>(r) * static_cast<double>(n + m);
}

void GramSchmidt(at::Tensor matrix, double epsilon) {
  // Modified Gram-Schmidt, in fp32 at least: column i loses its components along the columns
  // before it, then is normalised (epsilon keeps a zero column finite).
  at::Tensor a = matrix.scalar_type() == at::kDouble ? matrix.clone() : matrix.to(at::kFloat);
  const int64_t r = a.size(1);
  for (int64_t i = 0; i < r; ++i) {
    at::Tensor col = a.select(1, i);
    col.div_(col.norm().add_(epsilon));
    if (i + 1 < r) {
      at::Tensor rest = a.narrow(1, i + 1, r - i - 1);
      rest.sub_(at::outer(col, at::mv(rest.t(), col)));
    }
  }
  matrix.copy_(a);
}

void OrthogonalizeColumns(at::Tensor matrix, double epsilon) {
  const at::ScalarType type = matrix.scalar_type();
  if (type != at::kFloat && type != at::kDouble) {
    GramSchmidt(matrix, epsilon);
    return;
  }
  // Householder QR: P = Q R with Q's columns orthonormal to rounding, and span(P) within span(Q)
  // even when P's columns are dependent (Gram-Schmidt would normalise rounding noise there).
  matrix.copy_(std::get<0>(at::linalg_qr(matrix, "reduced")));
}

PowerSgd::PowerSgd(Communicator* comm, PowerSgdOptions options)
    : comm_(comm), options_(options) {}

void PowerSgd::SetBuckets(const std::vector<BucketLayout>& buckets) {
  buckets_.clear();
  for (const BucketLayout& layout : buckets) {
    BucketState& b = buckets_.emplace_back();
    for (const BucketTensor& t : layout) {
      const auto [n, m] = MatrixShape(t.shape);
      if (!WorthCompressing(n, m, options_.rank, options_.min_compression_rate)) {
        int64_t numel = 1;
        for (int64_t d : t.shape) numel *= d;
        b.uncompressed.push_back({t.offset, numel});
        b.uncompressed_numel += numel;
        continue;
      }
      Matrix x;
      x.name = t.name;
      x.offset = t.offset;
      x.n = n;
      x.m = m;
      x.r = std::min<int64_t>({options_.rank, n, m});
      x.p_offset = b.p_numel;
      x.q_offset = b.q_numel;
      x.error_offset = b.error_numel;
      b.p_numel += n * x.r;
      b.q_numel += m * x.r;
      b.error_numel += n * m;
      b.matrices.push_back(x);
    }
  }
}

// The state tensors take the gradients' dtype and device on the first compressed step (and a
// loaded checkpoint's CPU tensors move there).
void PowerSgd::Materialize(BucketState& b, const at::Tensor& flat) {
  const at::TensorOptions o = flat.options();
  element_size_ = flat.element_size();
  auto fit = [&](at::Tensor& t, int64_t numel) {
    if (!t.defined()) {
      t = at::zeros({numel}, o);
    } else if (t.device() != flat.device() || t.scalar_type() != flat.scalar_type()) {
      t = t.to(o);
    }
  };
  fit(b.p, b.p_numel);
  fit(b.q, b.q_numel);
  if (options_.use_error_feedback) fit(b.error, b.error_numel);
  fit(b.packed, b.uncompressed_numel);
}

// Q for this step: last step's (orthogonalised again, one step of subspace iteration) or a fresh
// draw from a generator seeded by (seed, bucket, iteration), identical on every rank and
// independent of the global RNG (dropout keeps its stream).
void PowerSgd::PrepareQ(BucketState& b, int bucket, int64_t iteration) {
  if (options_.warm_start && b.q_ready) {
    for (const Matrix& x : b.matrices) {
      OrthogonalizeColumns(b.q.narrow(0, x.q_offset, x.m * x.r).view({x.m, x.r}),
                           options_.orthogonalization_epsilon);
    }
    return;
  }
  const uint64_t seed = options_.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(bucket) * 1000003ull +
                        static_cast<uint64_t>(iteration);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (const Matrix& x : b.matrices) {
    at::Tensor q = b.q.narrow(0, x.q_offset, x.m * x.r).view({x.m, x.r});
    q.copy_(at::randn({x.m, x.r}, gen, at::TensorOptions().dtype(at::kFloat)));
    OrthogonalizeColumns(q, options_.orthogonalization_epsilon);
  }
  b.q_ready = true;
}

AsyncWork PowerSgd::ReduceAsync(int bucket, at::Tensor flat) {
  at::NoGradGuard no_grad;
  BucketState& b = buckets_.at(bucket);
  const int64_t iteration = b.iteration++;
  if (iteration < options_.start_iter || b.matrices.empty()) {
    return comm_->AllReduceAsync(flat, ReduceOp::kSum, TensorKind::kGradient);
  }
  Materialize(b, flat);
  AsyncWork packed_work;
  if (b.uncompressed_numel > 0) {
    int64_t pos = 0;
    for (const Uncompressed& u : b.uncompressed) {
      b.packed.narrow(0, pos, u.numel).copy_(flat.narrow(0, u.offset, u.numel));
      pos += u.numel;
    }
    packed_work = comm_->AllReduceAsync(b.packed, ReduceOp::kSum, TensorKind::kGradient);
  }
  PrepareQ(b, bucket, iteration);
  for (const Matrix& x : b.matrices) {
    at::Tensor m = flat.narrow(0, x.offset, x.n * x.m).view({x.n, x.m});
    if (options_.use_error_feedback) m.add_(b.error.narrow(0, x.error_offset, x.n * x.m).view({x.n, x.m}));
    at::Tensor p = b.p.narrow(0, x.p_offset, x.n * x.r).view({x.n, x.r});
    at::mm_out(p, m, b.q.narrow(0, x.q_offset, x.m * x.r).view({x.m, x.r}));
  }
  AsyncWork p_work = comm_->AllReduceAsync(b.p, ReduceOp::kSum, TensorKind::kCompressed);
  // The rest waits for P: DataParallel waits the buckets in order after launching them all, so
  // every rank issues the Q all-reduces in the same order (gradient_reducer.h).
  return AsyncWork([this, &b, flat, packed_work, p_work]() mutable {
    return Finish(b, flat, packed_work, p_work);
  });
}

absl::Status PowerSgd::Finish(BucketState& b, at::Tensor flat, AsyncWork& packed_work,
                              AsyncWork& p_work) {
  at::NoGradGuard no_grad;
  if (absl::Status s = packed_work.Wait(); !s.ok()) return s;
  int64_t pos = 0;
  for (const Uncompressed& u : b.uncompressed) {
    flat.narrow(0, u.offset, u.numel).copy_(b.packed.narrow(0, pos, u.numel));
    pos += u.numel;
  }
  if (absl::Status s = p_work.Wait(); !s.ok()) return s;
  for (const Matrix& x : b.matrices) {
    at::Tensor m = flat.narrow(0, x.offset, x.n * x.m).view({x.n, x.m});
    at::Tensor p = b.p.narrow(0, x.p_offset, x.n * x.r).view({x.n, x.r});
    OrthogonalizeColumns(p, options_.orthogonalization_epsilon);
    at::Tensor q = b.q.narrow(0, x.q_offset, x.m * x.r).view({x.m, x.r});
    at::mm_out(q, m.t(), p);
  }
  if (absl::Status s = comm_->AllReduceAsync(b.q, ReduceOp::kSum, TensorKind::kCompressed).Wait();
      !s.ok()) {
    return s;
  }
  // A non-finite gradient anywhere (an fp16 overflow) makes Q non-finite on every rank alike:
  // forget the errors and draw Q afresh next step, or the NaNs would live on in both. The step
  // itself gets the non-finite estimate, so the trainer skips it on every rank.
  const bool finite = at::isfinite(b.q).all().item<bool>();
  if (!finite) {
    b.q_ready = false;
    if (b.error.defined()) b.error.zero_();
  }
  // P Q^T is the estimate of the sum over ranks (Q is summed); DataParallel divides by the world
  // size, as it does after a plain all-reduce. The error is against the mean.
  const double inv_world = 1.0 / comm_->world_size();
  for (const Matrix& x : b.matrices) {
    at::Tensor m = flat.narrow(0, x.offset, x.n * x.m).view({x.n, x.m});
    at::Tensor approx_sum = at::mm(b.p.narrow(0, x.p_offset, x.n * x.r).view({x.n, x.r}),
                                   b.q.narrow(0, x.q_offset, x.m * x.r).view({x.m, x.r}).t());
    if (options_.use_error_feedback && finite) {
      at::Tensor e = b.error.narrow(0, x.error_offset, x.n * x.m).view({x.n, x.m});
      e.copy_(m);
      e.sub_(approx_sum, inv_world);
    }
    m.copy_(approx_sum);
  }
  return absl::OkStatus();
}

void PowerSgd::RestartAt(int64_t iteration) {
  for (BucketState& b : buckets_) {
    b.iteration = iteration;
    b.q_ready = false;
    if (b.error.defined()) b.error.zero_();
  }
}

int64_t PowerSgd::compressed_bytes_per_step() const {
  int64_t elements = 0;
  for (const BucketState& b : buckets_) elements += b.p_numel + b.q_numel;
  return elements * element_size_;
}

int64_t PowerSgd::uncompressed_bytes_per_step() const {
  int64_t elements = 0;
  for (const BucketState& b : buckets_) elements += b.uncompressed_numel;
  return elements * element_size_;
}

int PowerSgd::compressed_tensors() const {
  int n = 0;
  for (const BucketState& b : buckets_) n += static_cast<int>(b.matrices.size());
  return n;
}

int PowerSgd::uncompressed_tensors() const {
  int n = 0;
  for (const BucketState& b : buckets_) n += static_cast<int>(b.uncompressed.size());
  return n;
}

// --- State files ---

std::string PowerSgd::StatePath(const std::string& dir, int rank, int world_size) {
  return absl::StrCat(dir, "/powersgd_rank", rank, "_of", world_size, ".pt");
}

absl::Status PowerSgd::SaveState(const std::string& dir) const {
  const std::string path = StatePath(dir, comm_->rank(), comm_->world_size());
  try {
    torch::serialize::OutputArchive archive;
    archive.write("meta", at::tensor(std::vector<int64_t>{comm_->world_size(), comm_->rank(),
                                                          static_cast<int64_t>(buckets_.size()),
                                                          options_.rank}));
    for (size_t i = 0; i < buckets_.size(); ++i) {
      const BucketState& b = buckets_[i];
      archive.write(absl::StrCat("bucket", i, "/progress"),
                    at::tensor(std::vector<int64_t>{b.iteration, b.q_ready ? 1 : 0, b.p_numel,
                                                    b.q_numel, b.error_numel}));
      if (b.q.defined()) archive.write(absl::StrCat("bucket", i, "/q"), b.q.cpu());
      if (b.error.defined()) archive.write(absl::StrCat("bucket", i, "/error"), b.error.cpu());
    }
    std::ostringstream bytes;
    archive.save_to(bytes);
    return base::WriteFileAtomically(path, bytes.str());
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("writing PowerSGD state ", path, ": ", e.what()));
  }
}

absl::Status PowerSgd::LoadState(const std::string& dir) {
  const std::string path = StatePath(dir, comm_->rank(), comm_->world_size());
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat("no PowerSGD state ", path));
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    at::Tensor meta;
    archive.read("meta", meta);
    const std::vector<int64_t> m(meta.data_ptr<int64_t>(), meta.data_ptr<int64_t>() + meta.numel());
    if (m.size() != 4 || m[0] != comm_->world_size() || m[1] != comm_->rank() ||
        m[2] != static_cast<int64_t>(buckets_.size()) || m[3] != options_.rank) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " does not fit this run: it holds rank ", m.size() > 1 ? m[1] : -1, " of ",
          m.empty() ? -1 : m[0], ", ", m.size() > 2 ? m[2] : -1, " buckets, --powersgd_rank=",
          m.size() > 3 ? m[3] : -1, "; this is rank ", comm_->rank(), " of ", comm_->world_size(),
          ", ", buckets_.size(), " buckets, --powersgd_rank=", options_.rank));
    }
    std::vector<BucketState> loaded = buckets_;
    for (size_t i = 0; i < loaded.size(); ++i) {
      BucketState& b = loaded[i];
      at::Tensor progress;
      archive.read(absl::StrCat("bucket", i, "/progress"), progress);
      const int64_t* v = progress.data_ptr<int64_t>();
      if (progress.numel() != 5 || v[2] != b.p_numel || v[3] != b.q_numel || v[4] != b.error_numel) {
        return absl::FailedPreconditionError(absl::StrCat(
            path, ": bucket ", i, " has other compressed shapes than this run's (another model "
            "or --powersgd_min_compression_rate?)"));
      }
      b.iteration = v[0];
      b.q_ready = v[1] != 0;
      at::Tensor q, error;
      if (archive.try_read(absl::StrCat("bucket", i, "/q"), q)) b.q = q;
      if (archive.try_read(absl::StrCat("bucket", i, "/error"), error)) b.error = error;
      if (options_.use_error_feedback && b.q_ready && !b.error.defined()) {
        return absl::FailedPreconditionError(absl::StrCat(
            path, ": bucket ", i, " has no error buffer (saved without error feedback)"));
      }
    }
    buckets_ = std::move(loaded);
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.what_without_backtrace()));
  }
}

}  // namespace cf::distributed
