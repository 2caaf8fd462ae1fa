#include "convforever/distributed/diloco.h"

#include <ATen/core/grad_mode.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cf::distributed {
namespace {

using NamedTensors = DiLoCo::NamedTensors;

// Finds `name` in `tensors` and copies it into `target` (shapes must agree).
absl::Status CopyNamed(const std::map<std::string, at::Tensor>& tensors, const std::string& name,
                       at::Tensor target, const std::string& source) {
  auto it = tensors.find(name);
  if (it == tensors.end()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": missing DiLoCo tensor '", name, "'"));
  }
  if (it->second.numel() != target.numel()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": DiLoCo tensor '", name, "' has ",
                                                   it->second.numel(), " elements, this model ",
                                                   target.numel()));
  }
  target.copy_(it->second.reshape(target.sizes()));
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateDiLoCoOptions(const DiLoCoOptions& o) {
  if (o.inner_steps < 1) return absl::InvalidArgumentError("DiLoCo inner_steps must be >= 1");
  if (o.fragments < 1) return absl::InvalidArgumentError("DiLoCo fragments must be >= 1");
  if (o.fragments > o.inner_steps) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DiLoCo fragments (", o.fragments, ") must not exceed inner_steps (", o.inner_steps,
        "): each fragment synchronises at its own step of every window of inner_steps"));
  }
  if (!(o.outer_lr > 0)) return absl::InvalidArgumentError("DiLoCo outer_lr must be > 0");
  if (!(o.outer_momentum >= 0 && o.outer_momentum < 1)) {
    return absl::InvalidArgumentError("DiLoCo outer_momentum must be in [0, 1)");
  }
  if (o.int8_chunk < 1) return absl::InvalidArgumentError("DiLoCo int8_chunk must be >= 1");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DiLoCo>> DiLoCo::Create(Communicator* comm, NamedTensors params,
                                                       DiLoCoOptions options) {
  if (absl::Status s = ValidateDiLoCoOptions(options); !s.ok()) return s;
  std::unique_ptr<DiLoCo> d(new DiLoCo(comm, options));
  int64_t total = 0;
  for (auto& [name, p] : params) {
    if (p.scalar_type() != at::kFloat) {
      return absl::InvalidArgumentError(absl::StrCat("DiLoCo: parameter '", name, "' is ",
                                                     c10::toString(p.scalar_type()),
                                                     ", the outer step keeps float32 weights"));
    }
    total += p.numel();
  }
  const int F = options.fragments;
  d->fragments_.resize(F);
  // Contiguous fragments of about total / F elements: a parameter goes to the fragment that holds
  // its middle element.
  int64_t start = 0;
  for (auto& [name, p] : params) {
    const int64_t mid = start + p.numel() / 2;
    const int f = total > 0 ? static_cast<int>(std::min<int64_t>(F - 1, mid * F / total)) : 0;
    Fragment& fr = d->fragments_[f];
    d->slots_.push_back({name, p, f, fr.numel});
    fr.slots.push_back(static_cast<int>(d->slots_.size()) - 1);
    fr.numel += p.numel();
    start += p.numel();
  }
  const int64_t H = options.inner_steps;
  for (int f = 0; f < F; ++f) {
    Fragment& fr = d->fragments_[f];
    fr.offset_in_window = (f + 1) * H / F;
    fr.theta_last = d->Flatten(fr);
    fr.momentum = at::zeros_like(fr.theta_last);
    if (IsLossy(options.dtype)) fr.residual = at::zeros_like(fr.theta_last);
  }
  return d;
}

at::Tensor DiLoCo::Flatten(const Fragment& fr) const {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (int s : fr.slots) parts.push_back(slots_[s].param.detach().reshape({-1}));
  if (parts.empty()) return at::zeros({0}, at::TensorOptions().dtype(at::kFloat));
  return at::cat(parts).to(at::kFloat).contiguous();
}

int DiLoCo::FragmentDueAt(int64_t steps_done) const {
  const int64_t H = options_.inner_steps;
  for (int f = 0; f < num_fragments(); ++f) {
    const int64_t off = fragments_[f].offset_in_window;
    if (steps_done >= off && steps_done % H == off % H) return f;
  }
  return -1;
}

int64_t DiLoCo::WireBytes(int f) const {
  const int64_t n = fragments_[f].numel;
  switch (options_.dtype) {
    case WireDtype::kFp32: return 4 * n;
    case WireDtype::kBf16: return 2 * n;
    case WireDtype::kInt8: return Int8WireBytes(n, options_.int8_chunk);
  }
  return 0;
}

absl::Status DiLoCo::Launch(int f) {
  Fragment& fr = fragments_[f];
  if (fr.numel == 0) return absl::OkStatus();  // nothing to send (same decision on every rank)
  Pending p;
  p.fragment = f;
  p.local_delta = fr.theta_last - Flatten(fr);  // delta_r = theta_last - theta_r
  p.wire = EncodePseudoGradient(options_.dtype, p.local_delta,
                                fr.residual.defined() ? &fr.residual : nullptr, options_.int8_chunk);
  if (options_.dtype == WireDtype::kInt8) {
    p.gathered = at::empty({comm_->world_size() * p.wire.numel()}, p.wire.options());
    p.work = comm_->AllGatherAsync(p.wire, p.gathered, TensorKind::kPseudoGradient);
  } else {
    p.work = comm_->AllReduceAsync(p.wire, ReduceOp::kSum, TensorKind::kPseudoGradient);
  }
  pending_ = std::move(p);
  return absl::OkStatus();
}

absl::Status DiLoCo::Finish(Pending& p) {
  if (p.avg.defined()) return absl::OkStatus();
  if (absl::Status s = p.work.Wait(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("DiLoCo outer sync of fragment ", p.fragment,
                                               " on rank ", comm_->rank(), ": ", s.message()));
  }
  const int64_t n = fragments_[p.fragment].numel;
  const int W = comm_->world_size();
  if (options_.dtype == WireDtype::kInt8) {
    // Every rank decodes every rank's chunks, in rank order: the average is the same bits everywhere.
    const int64_t bytes = p.wire.numel();
    at::Tensor sum = at::zeros({n}, p.local_delta.options());
    for (int r = 0; r < W; ++r) {
      sum += DecodePseudoGradient(options_.dtype, p.gathered.narrow(0, r * bytes, bytes), n,
                                  options_.int8_chunk);
    }
    p.avg = sum / static_cast<double>(W);
  } else {
    p.avg = DecodePseudoGradient(options_.dtype, p.wire, n, options_.int8_chunk) / static_cast<double>(W);
  }
  p.wire = at::Tensor();
  p.gathered = at::Tensor();
  return absl::OkStatus();
}

// The outer step on one fragment, then the weights. `late`: inner steps ran since the launch and
// are kept on top of the new weights.
void DiLoCo::ApplyOuterStep(Pending& p) {
  at::NoGradGuard no_grad;
  Fragment& fr = fragments_[p.fragment];
  const double mu = options_.outer_momentum;
  at::Tensor launched;  // this rank's weights when the fragment was launched
  const bool late = options_.overlap;
  if (late) launched = fr.theta_last - p.local_delta;
  fr.momentum.mul_(mu).add_(p.avg);
  at::Tensor update = options_.outer_nesterov ? p.avg + mu * fr.momentum : fr.momentum;
  fr.theta_last.sub_(update, options_.outer_lr);
  at::Tensor weights = fr.theta_last;
  if (late) weights = fr.theta_last + (Flatten(fr) - launched);
  for (int s : fr.slots) {
    Slot& slot = slots_[s];
    slot.param.copy_(weights.narrow(0, slot.offset, slot.param.numel()).view(slot.param.sizes()));
  }
  p = Pending();
}

absl::Status DiLoCo::AfterInnerStep(int64_t steps_done) {
  if (pending_.fragment >= 0) {
    if (absl::Status s = Finish(pending_); !s.ok()) return s;
    ApplyOuterStep(pending_);
  }
  const int f = FragmentDueAt(steps_done);
  if (f < 0) return absl::OkStatus();
  if (absl::Status s = Launch(f); !s.ok()) return s;
  if (options_.overlap || pending_.fragment < 0) return absl::OkStatus();
  if (absl::Status s = Finish(pending_); !s.ok()) return s;
  ApplyOuterStep(pending_);
  return absl::OkStatus();
}

absl::Status DiLoCo::SyncAll(int64_t steps_done) {
  const int just_synced = FragmentDueAt(steps_done);
  if (pending_.fragment >= 0) {
    if (absl::Status s = Finish(pending_); !s.ok()) return s;
    ApplyOuterStep(pending_);
  }
  const bool overlap = options_.overlap;
  options_.overlap = false;  // the last round: wait for each fragment and apply it at once
  absl::Status status;
  for (int f = 0; f < num_fragments() && status.ok(); ++f) {
    if (f == just_synced) continue;
    status = Launch(f);
    if (status.ok() && pending_.fragment >= 0) {
      status = Finish(pending_);
      if (status.ok()) ApplyOuterStep(pending_);
    }
  }
  options_.overlap = overlap;
  return status;
}

absl::Status DiLoCo::FinishCommunication() {
  if (pending_.fragment < 0) return absl::OkStatus();
  return Finish(pending_);
}

void DiLoCo::RestartFromCurrentWeights() {
  for (Fragment& fr : fragments_) {
    fr.theta_last = Flatten(fr);
    fr.momentum.zero_();
    if (fr.residual.defined()) fr.residual.zero_();
  }
  pending_ = Pending();
}

NamedTensors DiLoCo::OuterState(Metadata* meta) const {
  NamedTensors out;
  for (const Slot& s : slots_) {
    const Fragment& fr = fragments_[s.fragment];
    const int64_t n = s.param.numel();
    out.emplace_back("theta_last/" + s.name, fr.theta_last.narrow(0, s.offset, n).view(s.param.sizes()));
    out.emplace_back("momentum/" + s.name, fr.momentum.narrow(0, s.offset, n).view(s.param.sizes()));
  }
  (*meta)["diloco_pending_fragment"] = std::to_string(pending_.fragment);
  if (pending_.fragment >= 0) out.emplace_back("pending/avg", pending_.avg);
  return out;
}

absl::Status DiLoCo::LoadOuterState(const NamedTensors& tensors, const Metadata& meta,
                                    const std::string& source) {
  std::map<std::string, at::Tensor> by_name(tensors.begin(), tensors.end());
  for (const Slot& s : slots_) {
    Fragment& fr = fragments_[s.fragment];
    const int64_t n = s.param.numel();
    for (auto [prefix, buffer] : {std::pair{"theta_last/", fr.theta_last}, {"momentum/", fr.momentum}}) {
      if (absl::Status st = CopyNamed(by_name, prefix + s.name, buffer.narrow(0, s.offset, n), source);
          !st.ok()) {
        return st;
      }
    }
  }
  int fragment = -1;
  auto it = meta.find("diloco_pending_fragment");
  if (it == meta.end() || !absl::SimpleAtoi(it->second, &fragment) || fragment < -1 ||
      fragment >= num_fragments()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": no valid diloco_pending_fragment in its metadata (a checkpoint of another fragment count?)"));
  }
  pending_ = Pending();
  if (fragment >= 0) {
    pending_.fragment = fragment;
    pending_.avg = at::empty({fragments_[fragment].numel}, fragments_[fragment].theta_last.options());
    if (absl::Status st = CopyNamed(by_name, "pending/avg", pending_.avg, source); !st.ok()) return st;
  }
  return absl::OkStatus();
}

NamedTensors DiLoCo::RankState() const {
  NamedTensors out;
  for (const Slot& s : slots_) {
    const Fragment& fr = fragments_[s.fragment];
    if (!fr.residual.defined()) continue;
    out.emplace_back("error_feedback/" + s.name,
                     fr.residual.narrow(0, s.offset, s.param.numel()).view(s.param.sizes()));
  }
  if (pending_.fragment >= 0) out.emplace_back("pending/local_delta", pending_.local_delta);
  return out;
}

absl::Status DiLoCo::LoadRankState(const NamedTensors& tensors, const std::string& source) {
  std::map<std::string, at::Tensor> by_name(tensors.begin(), tensors.end());
  for (const Slot& s : slots_) {
    Fragment& fr = fragments_[s.fragment];
    if (!fr.residual.defined()) continue;
    if (absl::Status st = CopyNamed(by_name, "error_feedback/" + s.name,
                                    fr.residual.narrow(0, s.offset, s.param.numel()), source);
        !st.ok()) {
      return st;
    }
  }
  if (pending_.fragment >= 0) {
    pending_.local_delta = at::empty_like(pending_.avg);
    return CopyNamed(by_name, "pending/local_delta", pending_.local_delta, source);
  }
  return absl::OkStatus();
}

}  // namespace cf::distributed
