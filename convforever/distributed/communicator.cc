#include "convforever/distributed/communicator.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <exception>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CF_WITH_CUDA
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "convforever/base/status_macros.h"
#include "convforever/distributed/peer_monitor.h"

namespace cf::distributed {

absl::Status AsyncWork::Wait() {
  if (!result_.has_value()) result_ = wait_ ? wait_() : absl::OkStatus();
  return *result_;
}

AsyncWork Communicator::Account(AsyncWork work, CollectiveOp op, int64_t bytes, TensorKind kind,
                                bool is_root) {
  const ByteCounts counts = CollectiveBytes(op, bytes, world_size_, is_root);
  if (counts.collectives == 0) return work;
  ledger_.Record(kind, counts);
  if (!link_.options().enabled()) return work;
  const int hops = op == CollectiveOp::kAllReduce ? 2 * (world_size_ - 1) : world_size_ - 1;
  const absl::Time done =
      link_.Reserve(absl::Now(), std::max(counts.ring_sent, counts.ring_received), hops);
  auto inner = std::make_shared<AsyncWork>(std::move(work));
  return AsyncWork([inner, done]() {
    absl::Status status = inner->Wait();
    absl::SleepFor(done - absl::Now());  // a negative duration returns at once
    return status;
  });
}

AsyncWork Communicator::AllReduceAsync(at::Tensor tensor, ReduceOp op, TensorKind kind) {
  const int64_t bytes = tensor.numel() * static_cast<int64_t>(tensor.element_size());
  return Account(AllReduceImpl(std::move(tensor), op), CollectiveOp::kAllReduce, bytes, kind, false);
}

AsyncWork Communicator::BroadcastAsync(at::Tensor tensor, int root, TensorKind kind) {
  const int64_t bytes = tensor.numel() * static_cast<int64_t>(tensor.element_size());
  return Account(BroadcastImpl(std::move(tensor), root), CollectiveOp::kBroadcast, bytes, kind,
                 root == rank_);
}

AsyncWork Communicator::ReduceScatterSumAsync(at::Tensor input, at::Tensor output, TensorKind kind) {
  const int64_t bytes = input.numel() * static_cast<int64_t>(input.element_size());
  return Account(ReduceScatterSumImpl(std::move(input), std::move(output)),
                 CollectiveOp::kReduceScatter, bytes, kind, false);
}

AsyncWork Communicator::AllGatherAsync(at::Tensor input, at::Tensor output, TensorKind kind) {
  const int64_t bytes = input.numel() * static_cast<int64_t>(input.element_size());
  return Account(AllGatherImpl(std::move(input), std::move(output)), CollectiveOp::kAllGather,
                 bytes, kind, false);
}

absl::Status Communicator::AllReduce(std::vector<at::Tensor>& tensors, ReduceOp op, TensorKind kind) {
  std::vector<AsyncWork> works;
  for (at::Tensor& t : tensors) works.push_back(AllReduceAsync(t, op, kind));
  absl::Status status;
  for (AsyncWork& w : works) status.Update(w.Wait());
  return status;
}

absl::Status Communicator::Broadcast(std::vector<at::Tensor>& tensors, int root, TensorKind kind) {
  if (root < 0 || root >= world_size()) {
    return absl::InvalidArgumentError(absl::StrCat("broadcast root ", root, " is not a rank of ", world_size()));
  }
  std::vector<AsyncWork> works;
  for (at::Tensor& t : tensors) works.push_back(BroadcastAsync(t, root, kind));
  absl::Status status;
  for (AsyncWork& w : works) status.Update(w.Wait());
  return status;
}

absl::Status Communicator::AllReduceScalars(std::vector<double>& values, ReduceOp op) {
  if (values.empty() || world_size() == 1) return absl::OkStatus();
  at::Tensor t = at::tensor(values, at::kDouble);
  if (backend_name() == "nccl") t = t.to(at::kCUDA);  // NCCL reduces device memory only
  std::vector<at::Tensor> tensors = {t};
  absl::Status status = AllReduce(tensors, op, TensorKind::kControl);
  if (!status.ok()) return status;
  t = t.cpu();
  for (size_t i = 0; i < values.size(); ++i) values[i] = t[i].item<double>();
  return absl::OkStatus();
}

namespace {

// world_size 1: every collective is the identity.
class LocalCommunicator : public Communicator {
 public:
  LocalCommunicator() : Communicator(0, 1) {}
  std::string backend_name() const override { return "local"; }
  AsyncWork AllReduceImpl(at::Tensor, ReduceOp) override { return AsyncWork(); }
  AsyncWork BroadcastImpl(at::Tensor, int) override { return AsyncWork(); }
  AsyncWork ReduceScatterSumImpl(at::Tensor input, at::Tensor output) override {
    output.copy_(input.view_as(output));
    return AsyncWork();
  }
  AsyncWork AllGatherImpl(at::Tensor input, at::Tensor output) override {
    output.copy_(input.view_as(output));
    return AsyncWork();
  }
  absl::Status Barrier() override { return absl::OkStatus(); }
};

c10d::ReduceOp ToC10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax: return c10d::ReduceOp::MAX;
    case ReduceOp::kMin: return c10d::ReduceOp::MIN;
    default: return c10d::ReduceOp::SUM;
  }
}

class C10dCommunicator : public Communicator {
 public:
  C10dCommunicator(int rank, int world_size, std::string backend, absl::Duration timeout,
                   c10::intrusive_ptr<c10d::Backend> pg,
                   std::unique_ptr<PeerMonitor> monitor, LinkOptions link)
      : Communicator(rank, world_size, link),
        backend_(std::move(backend)),
        timeout_(timeout),
        pg_(std::move(pg)),
        monitor_(std::move(monitor)) {}

  std::string backend_name() const override { return backend_; }

  AsyncWork AllReduceImpl(at::Tensor tensor, ReduceOp op) override {
    return Launch("all_reduce", [&] {
      std::vector<at::Tensor> ts = {tensor};
      c10d::AllreduceOptions opts;
      opts.reduceOp = ToC10d(op);
      return pg_->allreduce(ts, opts);
    }, tensor, nullptr);
  }

  AsyncWork BroadcastImpl(at::Tensor tensor, int root) override {
    return Launch("broadcast", [&] {
      std::vector<at::Tensor> ts = {tensor};
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      return pg_->broadcast(ts, opts);
    }, tensor, nullptr);
  }

  AsyncWork ReduceScatterSumImpl(at::Tensor input, at::Tensor output) override {
    if (backend_ == "nccl") {
      return Launch("reduce_scatter", [&] { return pg_->_reduce_scatter_base(output, input); },
                    output, nullptr);
    }
    // ProcessGroupGloo (1.13) has no reduce-scatter: all-reduce a copy and keep our slice. Same
    // result, world_size times the traffic of a ring reduce-scatter; fine for CPU runs.
    at::Tensor scratch = input.clone();
    int64_t n = output.numel();
    int64_t offset = static_cast<int64_t>(rank()) * n;
    return Launch("reduce_scatter", [&] {
      std::vector<at::Tensor> ts = {scratch};
      return pg_->allreduce(ts);
    }, scratch, [scratch, output, offset, n]() mutable {
      output.copy_(scratch.view(-1).narrow(0, offset, n).view_as(output));
    });
  }

  AsyncWork AllGatherImpl(at::Tensor input, at::Tensor output) override {
    if (backend_ == "nccl") {
      return Launch("all_gather", [&] { return pg_->_allgather_base(output, input); }, output,
                    nullptr);
    }
    int64_t n = input.numel();
    std::vector<std::vector<at::Tensor>> outputs(1);
    at::Tensor flat = output.view(-1);
    for (int r = 0; r < world_size(); ++r) outputs[0].push_back(flat.narrow(0, r * n, n));
    std::vector<at::Tensor> inputs = {input.view(-1)};
    return Launch("all_gather", [&] { return pg_->allgather(outputs, inputs); }, output, nullptr);
  }

  absl::Status Barrier() override {
    return Launch("barrier", [&] { return pg_->barrier(); }, at::Tensor(), nullptr).Wait();
  }

 private:
  // Starts a collective; errors at launch or wait become statuses naming the failed peers.
  // `keep_alive` holds the tensor the collective writes until it is waited on.
  template <typename LaunchFn>
  AsyncWork Launch(const char* op, LaunchFn launch, at::Tensor keep_alive,
                   std::function<void()> after) {
    if (!failure_.ok()) return AsyncWork([s = failure_] { return s; });
    c10::intrusive_ptr<c10d::Work> work;
    try {
      work = launch();
    } catch (const std::exception& e) {
      absl::Status s = Fail(op, e.what());
      return AsyncWork([s] { return s; });
    }
    return AsyncWork([this, op, work, keep_alive, after]() -> absl::Status {
      if (!failure_.ok()) return failure_;
      try {
        if (!work->wait(absl::ToChronoMilliseconds(timeout_))) {
          return Fail(op, "timed out");
        }
      } catch (const std::exception& e) {
        return Fail(op, e.what());
      }
      if (after) after();
      return absl::OkStatus();
    });
  }

  absl::Status Fail(const char* op, const std::string& what) {
    if (!failure_.ok()) return failure_;
    std::string first_line = what.substr(0, what.find('\n'));
    std::string peers = monitor_ ? monitor_->Diagnose() : "no peer monitor";
    failure_ = absl::UnavailableError(absl::StrCat(
        "rank ", rank(), " of ", world_size(), ": ", backend_, " ", op, " failed (timeout ",
        absl::FormatDuration(timeout_), "): ", peers, ". Cause: ", first_line));
    return failure_;
  }

  std::string backend_;
  absl::Duration timeout_;
  c10::intrusive_ptr<c10d::Backend> pg_;
  std::unique_ptr<PeerMonitor> monitor_;
  absl::Status failure_;
};

std::shared_ptr<::gloo::transport::Device> GlooDevice(const LaunchEnv& env, const CommOptions& o) {
  std::string iface = o.gloo_interface;
  if (iface.empty() && std::getenv("GLOO_SOCKET_IFNAME") != nullptr) {
    iface = std::getenv("GLOO_SOCKET_IFNAME");
  }
  if (!iface.empty()) return c10d::ProcessGroupGloo::createDeviceForInterface(iface);
  if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

absl::StatusOr<std::string> ChooseBackend(const CommOptions& o) {
  std::string b = o.backend;
  if (b == "auto") b = o.cuda ? "nccl" : "gloo";
#ifndef CF_WITH_CUDA
  if (b == "nccl") {
    return absl::FailedPreconditionError(
        "backend nccl needs a CUDA build (bazel build --config=cuda with a CUDA LibTorch); this "
        "binary is CPU-only: use --dist_backend=gloo");
  }
#endif
  if (b != "gloo" && b != "nccl") {
    return absl::InvalidArgumentError(absl::StrCat("unknown backend '", o.backend, "' (auto|gloo|nccl)"));
  }
  return b;
}

c10::intrusive_ptr<c10d::Store> ConnectStore(const LaunchEnv& env, bool server,
                                             absl::Duration timeout) {
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<uint16_t>(env.master_port);
  opts.isServer = server;
  opts.numWorkers = env.world_size;
  // Never block the constructor waiting for the others: the process group's own rendezvous
  // (with its timeout and our diagnosis) is where absent ranks are noticed.
  opts.waitWorkers = false;
  opts.timeout = absl::ToChronoMilliseconds(timeout);
  c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
  if (env.use_agent_store) {
    store = c10::make_intrusive<c10d::PrefixStore>(
        absl::StrCat("/worker/attempt_", env.restart_count), store);
  }
  return store;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Create(const LaunchEnv& env,
                                                                   const CommOptions& options) {
  ASSIGN_OR_RETURN(std::string backend, ChooseBackend(options));
  if (env.world_size == 1 && !options.process_group_for_one_rank) {
    return std::unique_ptr<Communicator>(new LocalCommunicator());
  }
  std::string where = absl::StrCat(env.master_addr, ":", env.master_port);
  std::string owner = env.use_agent_store ? "the torchrun agent" : "rank 0";
  c10::intrusive_ptr<c10d::Store> store, monitor_store;
  try {
    store = ConnectStore(env, env.rank == 0 && !env.use_agent_store, options.timeout);
    monitor_store = ConnectStore(env, false, options.timeout);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("rank ", env.rank, ": cannot ",
                                               env.rank == 0 ? "serve" : "reach",
                                               " the rendezvous store at ", where, " (", owner,
                                               "): ", std::string(e.what()).substr(0, 300)));
  }
  auto monitor = std::make_unique<PeerMonitor>(monitor_store, env.rank, env.world_size,
                                               options.heartbeat_interval, owner);
  c10::intrusive_ptr<c10d::Backend> pg;
  try {
    auto pg_store = c10::make_intrusive<c10d::PrefixStore>(absl::StrCat("cf_", backend), store);
    if (backend == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(absl::ToChronoMilliseconds(options.timeout));
      opts->devices.push_back(GlooDevice(env, options));
      pg = c10::make_intrusive<c10d::ProcessGroupGloo>(pg_store, env.rank, env.world_size, opts);
    } else {
#ifdef CF_WITH_CUDA
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = absl::ToChronoMilliseconds(options.timeout);
      pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(pg_store, env.rank, env.world_size, opts);
#endif
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    return absl::UnavailableError(absl::StrCat(
        "rank ", env.rank, " of ", env.world_size, ": ", backend, " rendezvous at ", where,
        " failed: ", monitor->Diagnose(), ". Cause: ", what.substr(0, what.find('\n'))));
  }
  return std::unique_ptr<Communicator>(new C10dCommunicator(
      env.rank, env.world_size, backend, options.timeout, std::move(pg), std::move(monitor),
      options.link));
}

}  // namespace cf::distributed
