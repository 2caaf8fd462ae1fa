// dist_benchmark: data-parallel step time over Gloo on 127.0.0.1, this machine's processes.
//   * 1 rank vs 2 ranks at the same per-rank batch (weak scaling: ideal ratio 1.0);
//   * 2 ranks with bucketed all-reduce overlapping backward vs one all-reduce after backward;
//   * bytes all-reduced per step;
//   * side by side: PyTorch DistributedDataParallel (tools/bench/dist_reference.py, the project
//     venv's torch, the LibTorch we link), same model, batch, buckets (25 MiB, the first 1 MiB),
//     thread count, .grad as a view into the bucket, measured in this run: the 2-rank jobs of
//     both alternate --repeats times (who goes first alternating too), so that load from other
//     processes hits both alike.
// Step times are each run's median over its timed steps (a shared machine's stalls land in the
// mean); the ratio printed is of the medians over the repeats.
// Usage: bazel run -c opt //convforever/distributed:dist_benchmark -- [--steps=10 --batch=16 ...]
// The parent re-executes itself as each rank (--role=rank) with torchrun's variables.
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gflags/gflags.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"
#include "convforever/base/allocator.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/data_parallel.h"
#include "convforever/distributed/launch_env.h"

DEFINE_string(role, "driver", "driver | rank (internal)");
DEFINE_int32(steps, 20, "timed steps");
DEFINE_int32(warmup, 3, "untimed steps first");
DEFINE_int32(batch, 16, "per-rank batch");
DEFINE_int32(threads, 1, "intra-op threads per rank");
DEFINE_double(bucket_mb, 25, "bucket cap for the overlapped run");
DEFINE_double(first_bucket_mb, 1, "cap of the first bucket (PyTorch DDP's default: 1 MiB)");
DEFINE_int32(repeats, 5, "2-rank runs of ours and of PyTorch DDP, alternating");
DEFINE_bool(overlap, true, "rank role: all-reduce from hooks");
DEFINE_bool(python, true, "also measure PyTorch DDP (tools/bench/dist_reference.py)");
DEFINE_string(out, "", "rank role: rank 0 writes 'step_ms bytes' here");
DEFINE_bool(phases, false, "rank 0 prints the median time of each phase of its step to stderr");

namespace cf::distributed {
namespace {

// The model of tools/bench/dist_reference.py: ~11.6M parameters (46 MB of fp32 gradients),
// input [B, 3, 32, 32].
struct BenchNetImpl : torch::nn::Module {
  BenchNetImpl() {
    c1 = register_module("c1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 32, 3).padding(1)));
    c2 = register_module("c2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3).padding(1)));
    f1 = register_module("f1", torch::nn::Linear(64 * 8 * 8, 2048));
    f2 = register_module("f2", torch::nn::Linear(2048, 1024));
    f3 = register_module("f3", torch::nn::Linear(1024, 1024));
    f4 = register_module("f4", torch::nn::Linear(1024, 10));
  }
  at::Tensor forward(at::Tensor x) {
    x = at::max_pool2d(at::relu(c1->forward(x)), 2);
    x = at::max_pool2d(at::relu(c2->forward(x)), 2).flatten(1);
    x = at::relu(f1->forward(x));
    x = at::relu(f2->forward(x));
    return f4->forward(at::relu(f3->forward(x)));
  }
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::Linear f1{nullptr}, f2{nullptr}, f3{nullptr}, f4{nullptr};
};
TORCH_MODULE(BenchNet);

// Wall and CPU (process, all threads) time of each phase of a step; medians over kept steps.
class PhaseTimes {
 public:
  void Start() { last_wall_ = Wall(); last_cpu_ = Cpu(); step_.clear(); }
  void Mark(const std::string& name) {
    double wall = Wall(), cpu = Cpu();
    step_.push_back({name, wall - last_wall_, cpu - last_cpu_});
    last_wall_ = wall;
    last_cpu_ = cpu;
  }
  void Keep() { kept_.push_back(step_); }
  // Median over kept steps of the step's CPU time (all phases).
  double StepCpuMedian() const {
    std::vector<double> c;
    for (const auto& s : kept_) {
      double sum = 0;
      for (const Phase& p : s) sum += p.cpu;
      c.push_back(sum);
    }
    std::sort(c.begin(), c.end());
    return c.empty() ? -1 : c[c.size() / 2];
  }
  void Print(std::ostream& os) const {
    if (kept_.empty()) return;
    double total_wall = 0, total_cpu = 0;
    for (size_t i = 0; i < kept_[0].size(); ++i) {
      std::vector<double> w, c;
      for (auto& s : kept_) w.push_back(s[i].wall), c.push_back(s[i].cpu);
      std::sort(w.begin(), w.end());
      std::sort(c.begin(), c.end());
      os << "  phase " << kept_[0][i].name << ": wall " << 1000 * w[w.size() / 2] << " ms, cpu "
         << 1000 * c[c.size() / 2] << " ms\n";
      total_wall += w[w.size() / 2];
      total_cpu += c[c.size() / 2];
    }
    os << "  phases total: wall " << 1000 * total_wall << " ms, cpu " << 1000 * total_cpu << " ms\n";
  }

 private:
  struct Phase { std::string name; double wall, cpu; };
  static double Wall() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  static double Cpu() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
  }
  double last_wall_ = 0, last_cpu_ = 0;
  std::vector<Phase> step_;
  std::vector<std::vector<Phase>> kept_;
};

int RunRank() {
  // As the trainer configures its process (train/trainer.cc): steps reuse freed heap memory.
  base::KeepFreedMemoryForReuse();
  at::set_num_threads(FLAGS_threads);
  auto env = ReadLaunchEnv({});
  if (!env.ok()) return (std::cerr << env.status() << "\n", 3);
  auto comm = Communicator::Create(*env, {});
  if (!comm.ok()) return (std::cerr << comm.status() << "\n", 3);
  at::manual_seed(0);
  BenchNet net;
  NamedTensors params;
  for (auto& item : net->named_parameters()) params.emplace_back(item.key(), item.value());
  DataParallelOptions options;
  options.bucket_cap_mb = FLAGS_bucket_mb;
  options.first_bucket_cap_mb = FLAGS_first_bucket_mb;
  options.overlap = FLAGS_overlap;
  DataParallel dp(comm->get(), params, options);
  if (auto s = dp.BroadcastParameters(*net); !s.ok()) return (std::cerr << s << "\n", 3);
  at::Tensor x = at::randn({FLAGS_batch, 3, 32, 32});
  at::Tensor y = at::randint(10, {FLAGS_batch}, at::kLong);
  std::vector<double> times;
  PhaseTimes phases;
  for (int step = 0; step < FLAGS_warmup + FLAGS_steps; ++step) {
    auto start = std::chrono::steady_clock::now();
    phases.Start();
    for (auto& [name, p] : params) p.mutable_grad().reset();
    at::Tensor loss = at::nll_loss(at::log_softmax(net->forward(x), 1), y);
    phases.Mark("forward");
    loss.backward();
    phases.Mark("backward");
    if (auto s = dp.FinishGradientSync(); !s.ok()) return (std::cerr << s << "\n", 3);
    phases.Mark("sync wait");
    {
      at::NoGradGuard no_grad;
      for (auto& [name, p] : params) p.add_(p.grad(), -0.01);
    }
    phases.Mark("update");
    if (step >= FLAGS_warmup) {
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      phases.Keep();
    }
  }
  if ((*comm)->rank() == 0 && FLAGS_phases) phases.Print(std::cerr);
  if ((*comm)->rank() == 0 && !FLAGS_out.empty() && !times.empty()) {
    double mean = 0;
    for (double t : times) mean += t / times.size();
    std::sort(times.begin(), times.end());  // the upper median, as dist_reference.py
    std::ofstream(FLAGS_out) << 1000 * times[times.size() / 2] << " " << 1000 * mean << " "
                             << dp.bytes_reduced_last_step() << " " << dp.num_buckets() << " "
                             << 1000 * phases.StepCpuMedian() << "\n";
  }
  return (*comm)->Barrier().ok() ? 0 : 3;
}

struct Measured {
  double step_ms = -1;  // median over the timed steps
  double mean_ms = -1;
  long long bytes = 0;
  int buckets = 0;
  double cpu_ms = -1;  // rank 0's CPU time per step (all its threads), median
};

// Runs `world` copies of this binary as ranks and returns rank 0's figures.
Measured RunJob(int world, bool overlap, double bucket_mb) {
  std::string out = absl::StrCat("/tmp/cf_dist_benchmark_", getpid(), ".txt");
  int port = 29000 + getpid() % 20000;
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    pid_t pid = fork();
    if (pid == 0) {
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(world).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<std::string> args = {
          "/proc/self/exe", "--role=rank", absl::StrCat("--steps=", FLAGS_steps),
          absl::StrCat("--warmup=", FLAGS_warmup), absl::StrCat("--batch=", FLAGS_batch),
          absl::StrCat("--threads=", FLAGS_threads), absl::StrCat("--bucket_mb=", bucket_mb),
          absl::StrCat("--first_bucket_mb=", FLAGS_first_bucket_mb),
          absl::StrCat("--overlap=", overlap ? "true" : "false"), "--out=" + out,
          absl::StrCat("--phases=", FLAGS_phases ? "true" : "false")};
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv("/proc/self/exe", argv.data());
      _exit(127);
    }
    pids.push_back(pid);
  }
  bool ok = true;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  Measured m;
  std::ifstream in(out);
  if (ok) in >> m.step_ms >> m.mean_ms >> m.bytes >> m.buckets >> m.cpu_ms;
  std::remove(out.c_str());
  return m;
}

// glibc's malloc in the PyTorch reference set as KeepFreedMemoryForReuse() sets ours
// (base/allocator.h): the control that tells the allocator's share of the ratio from the rest.
constexpr char kOurMalloc[] =
    "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824 ";

// PyTorch DDP's rank-0 step time (median, ms) and CPU time per step; step_ms -1 on failure.
Measured PythonDdp(int world, bool our_malloc = false) {
  Measured m;
  std::string cmd = absl::StrCat(
      our_malloc ? kOurMalloc : "", ".venv/bin/python tools/bench/dist_reference.py --world ", world, " --steps ", FLAGS_steps,
      " --warmup ", FLAGS_warmup, " --batch ", FLAGS_batch, " --threads ", FLAGS_threads,
      " --bucket_mb ", FLAGS_bucket_mb, " --first_bucket_mb ", FLAGS_first_bucket_mb, " --out /tmp/cf_dist_reference_", getpid(), ".json");
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return m;
  char buf[512];
  std::string text;
  while (fgets(buf, sizeof(buf), pipe) != nullptr) text += buf;
  if (pclose(pipe) != 0) return m;
  size_t at = text.find("\"step_ms\":");
  size_t cpu = text.find("\"cpu_ms\":");
  if (at == std::string::npos || cpu == std::string::npos) return m;
  m.step_ms = std::stod(text.substr(at + 10));
  m.cpu_ms = std::stod(text.substr(cpu + 9));
  return m;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : v[v.size() / 2];
}

int Drive() {
  // `bazel run` starts in the runfiles tree; the Python reference lives in the source tree.
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    if (chdir(ws) != 0) return 1;
  }
  std::printf("dist_benchmark: Gloo on 127.0.0.1, per-rank batch %d, %d thread(s)/rank, %d timed steps "
              "(median step), buckets of <= %.0f MB, the first <= %.0f MB\n",
              FLAGS_batch, FLAGS_threads, FLAGS_steps, FLAGS_bucket_mb, FLAGS_first_bucket_mb);
  Measured one = RunJob(1, true, FLAGS_bucket_mb);
  Measured flat = RunJob(2, false, 1e9);  // one bucket, all-reduced after backward
  // Ours, PyTorch's and PyTorch's with our malloc settings take turns, who goes first rotating,
  // so that a burst of load elsewhere hits all alike.
  std::vector<double> ours, ours_cpu, theirs, theirs_cpu, tuned, tuned_cpu;
  Measured two;
  bool failed = false;
  for (int i = 0; i < std::max(1, FLAGS_repeats) && !failed; ++i) {
    for (int k = 0; k < 3; ++k) {
      const int which = (i + k) % 3;
      if (which == 0) {
        two = RunJob(2, true, FLAGS_bucket_mb);
        failed = failed || two.step_ms <= 0;
        ours.push_back(two.step_ms);
        ours_cpu.push_back(two.cpu_ms);
      } else if (FLAGS_python) {
        Measured m = PythonDdp(2, /*our_malloc=*/which == 2);
        failed = failed || m.step_ms <= 0;
        (which == 1 ? theirs : tuned).push_back(m.step_ms);
        (which == 1 ? theirs_cpu : tuned_cpu).push_back(m.cpu_ms);
      }
    }
    if (failed) break;
    std::printf("  repeat %d: ours %.1f ms/step (cpu %.1f)", i + 1, ours.back(), ours_cpu.back());
    if (FLAGS_python) {
      std::printf(", PyTorch DDP %.1f (cpu %.1f), ratio %.2f; PyTorch DDP with our malloc %.1f "
                  "(cpu %.1f), ratio %.2f",
                  theirs.back(), theirs_cpu.back(), ours.back() / theirs.back(), tuned.back(),
                  tuned_cpu.back(), ours.back() / tuned.back());
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  if (failed || one.step_ms <= 0 || flat.step_ms <= 0) {
    std::fprintf(stderr, "a run failed%s\n",
                 FLAGS_python ? " (the PyTorch reference needs the project venv: tools/cf setup; "
                                "run from the workspace)"
                              : "");
    return 1;
  }
  const double two_ms = Median(ours);
  std::printf("%-52s %10.1f ms/step\n", "1 rank", one.step_ms);
  std::printf("%-52s %10.1f ms/step  (%d buckets)\n", "2 ranks, bucketed all-reduce overlapping backward",
              two_ms, two.buckets);
  std::printf("%-52s %10.1f ms/step\n", "2 ranks, one all-reduce after backward", flat.step_ms);
  std::printf("bytes all-reduced per step per rank: %lld (%.1f MB)\n", two.bytes, two.bytes / 1048576.0);
  std::printf("ratio 2-rank/1-rank step time (bucketed):        %.2f (1.00 = perfect weak scaling)\n",
              two_ms / one.step_ms);
  std::printf("ratio no-overlap/bucketed step time (2 ranks):   %.2f (> 1: overlap helps)\n",
              flat.step_ms / two_ms);
  if (FLAGS_python) {
    Measured py1 = PythonDdp(1);
    if (py1.step_ms <= 0) {
      std::printf("PyTorch 1-rank reference failed\n");
      return 1;
    }
    const int n = static_cast<int>(ours.size());
    std::printf("%-52s %10.1f ms/step\n", "PyTorch 1 rank", py1.step_ms);
    std::printf("%-52s %10.1f ms/step\n", "PyTorch DDP 2 ranks (gloo)", Median(theirs));
    std::printf("%-52s %10.1f ms/step\n", "PyTorch DDP 2 ranks (gloo), our malloc settings",
                Median(tuned));
    std::printf("ratio ours/PyTorch, 2 ranks:                     %.2f (< 1: ours faster; medians of %d)\n",
                two_ms / Median(theirs), n);
    std::printf("  CPU time per step, rank 0:                     %.2f (%.1f vs %.1f ms)\n",
                Median(ours_cpu) / Median(theirs_cpu), Median(ours_cpu), Median(theirs_cpu));
    std::printf("ratio ours/PyTorch with our malloc, 2 ranks:     %.2f (the engines alone)\n",
                two_ms / Median(tuned));
    std::printf("  CPU time per step, rank 0:                     %.2f (%.1f vs %.1f ms)\n",
                Median(ours_cpu) / Median(tuned_cpu), Median(ours_cpu), Median(tuned_cpu));
    std::printf("ratio ours/PyTorch, 1 rank:                      %.2f\n", one.step_ms / py1.step_ms);
  }
  return 0;
}

}  // namespace
}  // namespace cf::distributed

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return FLAGS_role == "rank" ? cf::distributed::RunRank() : cf::distributed::Drive();
}
