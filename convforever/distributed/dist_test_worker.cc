// Test helper: one rank of a small distributed training run (or a collectives check), started
// by the multi-process tests with torchrun's variables in its environment. Writes the final
// parameters (float32, concatenated in registration order) to `<--out>.rank<R>`; exits 0 on
// success, 3 with the error on stderr when a distributed call fails, 4 when a check fails.
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include <ATen/ATen.h>
#include <gflags/gflags.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <ATen/core/grad_mode.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "convforever/base/status_macros.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/data_parallel.h"
#include "convforever/distributed/launch_env.h"
#include "convforever/distributed/zero_optimizer.h"

DEFINE_string(mode, "train", "train | collectives");
DEFINE_int32(steps, 20, "optimizer steps");
DEFINE_int32(start_step, 0, "first step index (data of a resumed run)");
DEFINE_int32(batch, 8, "per-rank batch");
DEFINE_int32(accum, 1, "micro-steps per optimizer step");
DEFINE_int32(zero, 0, "ZeRO stage (0 = DataParallel)");
DEFINE_string(optimizer, "sgd", "sgd | adamw");
DEFINE_double(lr, 0.05, "learning rate");
DEFINE_double(bucket_mb, 0.002, "DataParallel bucket cap (MB)");
DEFINE_bool(overlap, true, "all-reduce from autograd hooks");
DEFINE_bool(transposed_fc, false, "the linear weight stored column-major (dense, not contiguous)");
DEFINE_string(out, "", "prefix of the parameter dump");
DEFINE_int32(die_at_step, -1, "this rank SIGKILLs itself at that step (with --die_rank)");
DEFINE_int32(stop_at_step, -1, "this rank SIGSTOPs itself at that step (with --die_rank)");
DEFINE_int32(die_rank, 1, "rank that dies or stops");
DEFINE_double(timeout_s, 20, "collective timeout");
DEFINE_string(save_dir, "", "ZeRO: write shards here at the end");
DEFINE_string(load_dir, "", "ZeRO: load shards from here first");
DEFINE_string(init_params, "", "load initial parameters from this dump (all ranks)");

namespace cf::distributed {
namespace {

// [N, 1, 8, 8] -> conv 3x3 (4 ch) -> relu -> linear 256 -> 10, input scaled by a buffer so the
// buffer broadcast is exercised.
struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).padding(1)));
    fc = register_module("fc", torch::nn::Linear(256, 10));
    scale = register_buffer("scale", at::rand({1}) + 0.5);
  }
  at::Tensor forward(const at::Tensor& x) {
    return fc->forward(at::relu(conv->forward(x * scale)).flatten(1));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::Linear fc{nullptr};
  at::Tensor scale;
};
TORCH_MODULE(TinyNet);

absl::Status Check(bool ok, const std::string& what) {
  return ok ? absl::OkStatus() : absl::InternalError("check failed: " + what);
}

absl::Status RunCollectives(Communicator& comm) {
  const int r = comm.rank(), w = comm.world_size();
  std::vector<at::Tensor> t = {at::full({5}, float(r + 1)), at::full({3}, float(r))};
  RETURN_IF_ERROR(comm.AllReduceSum(t));
  RETURN_IF_ERROR(Check(at::allclose(t[0], at::full({5}, w * (w + 1) / 2.0f)), "all_reduce sum"));
  std::vector<at::Tensor> m = {at::full({2}, float(r))};
  RETURN_IF_ERROR(comm.AllReduce(m, ReduceOp::kMax));
  RETURN_IF_ERROR(Check(at::allclose(m[0], at::full({2}, float(w - 1))), "all_reduce max"));
  std::vector<at::Tensor> b = {at::full({4}, float(r + 10))};
  RETURN_IF_ERROR(comm.Broadcast(b, w - 1));
  RETURN_IF_ERROR(Check(at::allclose(b[0], at::full({4}, float(w - 1 + 10))), "broadcast"));
  at::Tensor in = at::arange(2 * w, at::kFloat) + r, out = at::empty({2});
  RETURN_IF_ERROR(comm.ReduceScatterSum(in, out));
  at::Tensor expect = (at::arange(2 * w, at::kFloat) * w + w * (w - 1) / 2.0f).narrow(0, 2 * r, 2);
  RETURN_IF_ERROR(Check(at::allclose(out, expect), "reduce_scatter"));
  at::Tensor gathered = at::empty({3 * w});
  RETURN_IF_ERROR(comm.AllGather(at::full({3}, float(r)), gathered));
  RETURN_IF_ERROR(Check(at::allclose(gathered, at::arange(w, at::kFloat).repeat_interleave(3)), "all_gather"));
  std::vector<double> counters = {double(r), 1.0, 0.5 * r};
  RETURN_IF_ERROR(comm.AllReduceScalars(counters));
  RETURN_IF_ERROR(Check(counters[0] == w * (w - 1) / 2.0 && counters[1] == w, "scalars sum"));
  std::vector<double> peak = {double(r)};
  RETURN_IF_ERROR(comm.AllReduceScalars(peak, ReduceOp::kMax));
  RETURN_IF_ERROR(Check(peak[0] == w - 1, "scalars max"));
  return comm.Barrier();
}

// A dense tensor's elements in memory order: for a parameter and a .grad with the same strides
// (autograd's layout contract) the two flat views correspond element by element.
at::Tensor Flat(const at::Tensor& t) {
  return t.is_contiguous() ? t.view(-1) : t.as_strided({t.numel()}, {1}, t.storage_offset());
}

std::vector<ShardParam> FullShard(const NamedTensors& params) {
  std::vector<ShardParam> shard;
  for (const auto& [name, p] : params) shard.push_back({name, Flat(p.detach()).requires_grad_(true), 0});
  return shard;
}

std::unique_ptr<ShardUpdater> MakeUpdater(const std::vector<ShardParam>& shard) {
  if (FLAGS_optimizer == "adamw") return MakeAdamWUpdater(shard, AdamWOptions{FLAGS_lr / 10, 0.9, 0.999, 1e-8, 0.05});
  return MakeSgdUpdater(shard, SgdOptions{FLAGS_lr, 0.9, 1e-3});
}

absl::Status WriteParams(const TinyNet& net, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  for (const at::Tensor& p : net->parameters()) {
    at::Tensor c = p.detach().contiguous();
    out.write(static_cast<const char*>(c.data_ptr()), c.numel() * sizeof(float));
  }
  return out ? absl::OkStatus() : absl::InternalError("cannot write " + path);
}

absl::Status ReadParams(TinyNet& net, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  at::NoGradGuard no_grad;
  for (at::Tensor& p : net->parameters()) in.read(static_cast<char*>(p.data_ptr()), p.numel() * sizeof(float));
  return in ? absl::OkStatus() : absl::InternalError("cannot read " + path);
}

absl::Status Train(Communicator& comm) {
  const int r = comm.rank(), w = comm.world_size();
  at::manual_seed(100 + r);  // different on each rank: the broadcast must make them equal
  TinyNet net;
  if (!FLAGS_init_params.empty()) RETURN_IF_ERROR(ReadParams(net, FLAGS_init_params));
  if (FLAGS_transposed_fc) {  // like a channels_last convolution: autograd keeps .grad so strided
    at::NoGradGuard no_grad;
    net->fc->weight.set_data(net->fc->weight.data().t().contiguous().t());
  }
  NamedTensors params;
  for (auto& item : net->named_parameters()) params.emplace_back(item.key(), item.value());
  DataParallel dp(&comm, params, DataParallelOptions{FLAGS_bucket_mb, FLAGS_overlap && FLAGS_zero == 0});
  RETURN_IF_ERROR(dp.BroadcastParameters(*net));
  if (w > 1 && FLAGS_zero == 0 && FLAGS_overlap) RETURN_IF_ERROR(Check(dp.num_buckets() > 1, "several buckets"));
  std::unique_ptr<ZeroOptimizer> zero;
  std::unique_ptr<ShardUpdater> plain;
  std::vector<ShardParam> full = FullShard(params);
  if (FLAGS_zero > 0) {
    ASSIGN_OR_RETURN(zero, ZeroOptimizer::Create(&comm, params, ZeroOptions{FLAGS_zero, true}, MakeUpdater));
    if (!FLAGS_load_dir.empty()) RETURN_IF_ERROR(zero->LoadShard(FLAGS_load_dir));
  } else {
    plain = MakeUpdater(full);
  }
  const int micro = FLAGS_batch / FLAGS_accum;
  for (int step = FLAGS_start_step; step < FLAGS_start_step + FLAGS_steps; ++step) {
    if (r == FLAGS_die_rank && step == FLAGS_die_at_step) std::raise(SIGKILL);
    if (r == FLAGS_die_rank && step == FLAGS_stop_at_step) std::raise(SIGSTOP);
    at::manual_seed(1000 + step);  // the global batch of this step, same on every rank
    at::Tensor x = at::randn({w * FLAGS_batch, 1, 8, 8});
    at::Tensor y = at::randint(10, {w * FLAGS_batch}, at::kLong);
    for (int k = 0; k < FLAGS_accum; ++k) {
      int64_t row = r * FLAGS_batch + k * micro;
      if (FLAGS_zero == 0) dp.SetSyncThisStep(k == FLAGS_accum - 1);
      at::Tensor logits = net->forward(x.narrow(0, row, micro));
      at::Tensor loss = at::nll_loss(at::log_softmax(logits, 1), y.narrow(0, row, micro)) / FLAGS_accum;
      loss.backward();
    }
    if (FLAGS_zero > 0) {
      RETURN_IF_ERROR(zero->ReduceGradients());
      ASSIGN_OR_RETURN(double norm, zero->ClipGradNorm(0.0));
      RETURN_IF_ERROR(Check(std::isfinite(norm), "finite grad norm"));
      RETURN_IF_ERROR(zero->Step());
    } else {
      RETURN_IF_ERROR(dp.FinishGradientSync());
      if (w > 1) {
        RETURN_IF_ERROR(Check(dp.bytes_reduced_last_step() == 2610 * 4, "bytes per step"));
        // .grad is the bucket itself (fc weight and bias share one), strided as its parameter.
        const at::Tensor& g = net->fc->weight.grad();
        RETURN_IF_ERROR(Check(g.is_alias_of(net->fc->bias.grad()), "grads are views into the bucket"));
        RETURN_IF_ERROR(Check(g.strides() == net->fc->weight.strides(), "grad strides match the weight's"));
      }
      for (size_t i = 0; i < full.size(); ++i) full[i].tensor.mutable_grad() = Flat(params[i].second.grad());
      RETURN_IF_ERROR(plain->Step());
    }
    for (auto& [name, p] : params) p.mutable_grad().reset();
  }
  if (zero && !FLAGS_save_dir.empty()) RETURN_IF_ERROR(zero->SaveShard(FLAGS_save_dir));
  if (!FLAGS_out.empty()) RETURN_IF_ERROR(WriteParams(net, absl::StrCat(FLAGS_out, ".rank", r)));
  return comm.Barrier();
}

int Main() {
  absl::StatusOr<LaunchEnv> env = ReadLaunchEnv({});
  if (!env.ok()) {
    std::cerr << env.status() << "\n";
    return 3;
  }
  CommOptions options;
  options.timeout = absl::Seconds(FLAGS_timeout_s);
  options.heartbeat_interval = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<Communicator>> comm = Communicator::Create(*env, options);
  if (!comm.ok()) {
    std::cerr << comm.status() << "\n";
    return 3;
  }
  absl::Status status = FLAGS_mode == "collectives" ? RunCollectives(**comm) : Train(**comm);
  if (!status.ok()) {
    std::cerr << status << "\n";
    return status.code() == absl::StatusCode::kInternal ? 4 : 3;
  }
  return 0;
}

}  // namespace
}  // namespace cf::distributed

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  at::set_num_threads(1);
  return cf::distributed::Main();
}
