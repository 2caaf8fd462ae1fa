#include "convforever/distributed/data_parallel.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include "absl/strings/str_cat.h"

namespace cf::distributed {

DataParallel::DataParallel(Communicator* comm, NamedTensors named_params,
                           DataParallelOptions options)
    : comm_(comm), options_(options) {
  const int64_t cap_bytes = static_cast<int64_t>(options.bucket_cap_mb * 1024 * 1024);
  const int64_t first_cap_bytes =
      options.first_bucket_cap_mb > 0
          ? std::min(cap_bytes, static_cast<int64_t>(options.first_bucket_cap_mb * 1024 * 1024))
          : cap_bytes;
  int64_t bucket_bytes = 0;
  // Reverse registration order: roughly the order in which backward produces gradients.
  for (auto it = named_params.rbegin(); it != named_params.rend(); ++it) {
    if (!it->second.requires_grad()) continue;
    const at::Tensor& p = it->second;
    bool new_bucket =
        buckets_.empty() || bucket_bytes >= (buckets_.size() == 1 ? first_cap_bytes : cap_bytes);
    if (!new_bucket) {
      const at::Tensor& first = slots_[buckets_.back().slots.front()].param;
      new_bucket = first.scalar_type() != p.scalar_type() || first.device() != p.device();
    }
    if (new_bucket) {
      buckets_.emplace_back();
      bucket_bytes = 0;
    }
    Slot slot{it->first, p, static_cast<int>(buckets_.size()) - 1, 0, false};
    Bucket& bucket = buckets_.back();
    for (int s : bucket.slots) slot.offset += slots_[s].param.numel();
    bucket.slots.push_back(static_cast<int>(slots_.size()));
    bucket_bytes += p.numel() * p.element_size();
    slots_.push_back(std::move(slot));
  }
  for (Bucket& bucket : buckets_) {
    const at::Tensor& first = slots_[bucket.slots.front()].param;
    int64_t numel = 0;
    for (int s : bucket.slots) numel += slots_[s].param.numel();
    bucket.flat = at::zeros({numel}, first.options().requires_grad(false));
  }
  if (options_.reducer) {
    std::vector<BucketLayout> layouts;
    for (const Bucket& bucket : buckets_) {
      BucketLayout& layout = layouts.emplace_back();
      for (int s : bucket.slots) {
        layout.push_back({slots_[s].name, slots_[s].offset, slots_[s].param.sizes().vec()});
      }
    }
    options_.reducer->SetBuckets(layouts);
  }
  ResetStep();
  if (options_.overlap && comm_->world_size() > 1) {
    for (int i = 0; i < static_cast<int>(slots_.size()); ++i) {
      hooks_.push_back(std::make_unique<GradAccumulatedHook>(slots_[i].param,
                                                             [this, i] { OnGradAccumulated(i); }));
    }
  }
}

DataParallel::~DataParallel() {
  hooks_.clear();
  // Collectives still in flight write into our buffers: let them finish (or fail) first.
  for (Bucket& bucket : buckets_) bucket.work.Wait().IgnoreError();
}

std::vector<std::string> DataParallel::bucket_parameter_names(int i) const {
  std::vector<std::string> names;
  for (int s : buckets_.at(i).slots) names.push_back(slots_[s].name);
  return names;
}

absl::Status DataParallel::BroadcastParameters(torch::nn::Module& module) {
  std::vector<at::Tensor> tensors;
  for (const at::Tensor& p : module.parameters(/*recurse=*/true)) tensors.push_back(p);
  for (const at::Tensor& b : module.buffers(/*recurse=*/true)) tensors.push_back(b);
  return BroadcastTensors(std::move(tensors));
}

absl::Status DataParallel::BroadcastTensors(std::vector<at::Tensor> tensors) {
  // detach(): same storage, no autograd version bump complaints for leaves requiring grad.
  std::vector<at::Tensor> targets;
  std::vector<std::pair<at::Tensor, at::Tensor>> copy_back;  // non-contiguous: via a temporary
  for (const at::Tensor& t : tensors) {
    at::Tensor d = t.detach();
    if (d.is_contiguous()) {
      targets.push_back(d);
    } else {
      targets.push_back(d.contiguous());
      copy_back.emplace_back(d, targets.back());
    }
  }
  absl::Status status = comm_->Broadcast(targets, /*root=*/0, TensorKind::kParameter);
  if (!status.ok()) return status;
  for (auto& [dst, src] : copy_back) dst.copy_(src);
  return absl::OkStatus();
}

void DataParallel::SetSyncThisStep(bool sync) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_ = sync;
}

namespace {

// `a` and `b` are the same elements of the same memory, with the same shape and type.
bool SameView(const at::Tensor& a, const at::Tensor& b) {
  return a.defined() && b.defined() && a.data_ptr() == b.data_ptr() && a.sizes() == b.sizes() &&
         a.strides() == b.strides() && a.scalar_type() == b.scalar_type();
}

// A scalar that takes part in type promotion as a Python number would (computed in the op's math
// type, e.g. float for bf16 gradients), as c10d's Reducer scales gradients.
at::Tensor WrappedScalar(double value) {
  at::Tensor t = at::scalar_tensor(value, at::kDouble);
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

}  // namespace

at::Tensor DataParallel::BucketView(int s) const {
  const Slot& slot = slots_[s];
  const at::Tensor& flat = buckets_[slot.bucket].flat;
  const at::Tensor& p = slot.param;
  // The parameter's own strides (channels_last convolutions included), so that .grad obeys
  // autograd's layout contract; a parameter that is not dense gets a contiguous slot.
  if (p.is_non_overlapping_and_dense()) {
    return flat.as_strided(p.sizes(), p.strides(), flat.storage_offset() + slot.offset);
  }
  return flat.narrow(0, slot.offset, p.numel()).view(p.sizes());
}

// Writes grad / world_size into the slot: the division rides on the one pass that fills the
// bucket, and the sum all-reduce then yields the mean.
void DataParallel::CopyIntoBucket(int s) {
  Slot& slot = slots_[s];
  Bucket& bucket = buckets_[slot.bucket];
  at::Tensor dst = BucketView(s);
  const at::Tensor& grad = slot.param.grad();
  const double scale = 1.0 / comm_->world_size();
  if (!grad.defined()) {
    dst.zero_();
  } else if (SameView(grad, dst)) {
    dst.mul_(scale);  // backward accumulated into last step's .grad, which is this slot
  } else {
    // A .grad sharing the bucket's memory otherwise (set by hand) is read before it is written.
    at::mul_out(dst, grad.is_alias_of(bucket.flat) ? grad.clone() : grad, WrappedScalar(scale));
  }
  // .grad becomes the slot now, as c10d's Reducer does: the gradient autograd allocated is freed
  // during backward rather than after it.
  slot.param.mutable_grad() = dst;
  slot.ready = true;
  --bucket.pending;
}

void DataParallel::OnGradAccumulated(int s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!sync_ || slots_[s].ready) return;  // accumulation micro-step, or a second backward
  CopyIntoBucket(s);
  LaunchReadyBuckets();
}

void DataParallel::LaunchReadyBuckets() {
  while (next_to_launch_ < static_cast<int>(buckets_.size()) &&
         buckets_[next_to_launch_].pending == 0) {
    const int index = next_to_launch_++;
    Bucket& bucket = buckets_[index];
    bucket.launched = true;
    bucket.work = options_.reducer
                      ? options_.reducer->ReduceAsync(index, bucket.flat)
                      : comm_->AllReduceAsync(bucket.flat, ReduceOp::kSum, TensorKind::kGradient);
    bytes_this_step_ += bucket.flat.numel() * bucket.flat.element_size();
  }
}

absl::Status DataParallel::FinishGradientSync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!sync_) return absl::OkStatus();
  if (comm_->world_size() == 1) {
    ResetStep();
    return absl::OkStatus();
  }
  // Gradients that no hook delivered (parameters unused this step, or overlap off).
  for (int s = 0; s < static_cast<int>(slots_.size()); ++s) {
    if (!slots_[s].ready) CopyIntoBucket(s);
  }
  LaunchReadyBuckets();
  // Every .grad is its slot by now; once the sums land, the slots hold the means (no copy back).
  absl::Status status;
  for (Bucket& bucket : buckets_) status.Update(bucket.work.Wait());
  bytes_reduced_last_step_ = bytes_this_step_;
  ResetStep();
  return status;
}

void DataParallel::ResetStep() {
  for (Slot& slot : slots_) slot.ready = false;
  for (Bucket& bucket : buckets_) {
    bucket.pending = static_cast<int>(bucket.slots.size());
    bucket.launched = false;
    bucket.work = AsyncWork();
  }
  next_to_launch_ = 0;
  bytes_this_step_ = 0;
}

}  // namespace cf::distributed
