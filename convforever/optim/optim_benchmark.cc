// One AdamW step over ConvNeXt-T's parameter shapes (timm convnext_tiny, 28,589,128 float32
// parameters on the CPU): ours (fused single-pass kernel, and the foreach path) against
// torch.optim.AdamW(fused=True) and (foreach=True) from the project venv (tools/bench/optim_adamw.py), same
// thread count, same run. Prints the median ms per step and the ratio torch / ours (> 1: faster).
//
//   bazel run -c opt --config=benchmark //convforever/optim:optim_benchmark -- --threads=1
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "convforever/optim/optimizer.h"
#include "gflags/gflags.h"
#include "nlohmann/json.hpp"

DEFINE_int32(threads, 1, "intra-op threads for both sides");
DEFINE_int32(steps, 20, "timed steps (median reported)");
DEFINE_int32(warmup, 3, "untimed steps first");
DEFINE_int32(rounds, 3, "alternating rounds of each side; the best median is reported (shared machines)");
DEFINE_string(python, ".venv/bin/python", "interpreter with the reference torch (the project venv, from the workspace root)");
DEFINE_string(script, "", "tools/bench/optim_adamw.py (default: found from the workspace)");

namespace {

std::vector<std::vector<int64_t>> ConvNextTinyShapes() {
  const int64_t dims[] = {96, 192, 384, 768};
  const int depths[] = {3, 3, 9, 3};
  std::vector<std::vector<int64_t>> s = {{96, 3, 4, 4}, {96}, {96}, {96}};  // stem conv + norm
  int64_t prev = 96;
  for (int i = 0; i < 4; ++i) {
    const int64_t d = dims[i];
    if (i > 0) s.insert(s.end(), {{prev}, {prev}, {d, prev, 2, 2}, {d}});  // downsample
    for (int b = 0; b < depths[i]; ++b) {
      s.insert(s.end(), {{d, 1, 7, 7}, {d}, {d}, {d}, {4 * d, d}, {4 * d}, {d, 4 * d}, {d}, {d}});
    }
    prev = d;
  }
  s.insert(s.end(), {{768}, {768}, {1000, 768}, {1000}});  // head norm + fc
  return s;
}

double OursMsPerStep(const std::string& implementation) {
  at::manual_seed(0);
  cf::optim::ParamGroup group;
  group.weight_decay = 0.05;
  for (const auto& shape : ConvNextTinyShapes()) {
    at::Tensor p = at::randn(shape).requires_grad_(true);
    p.mutable_grad() = at::randn(shape) * 1e-3;
    group.params.push_back(p);
  }
  cf::optim::OptimizerOptions o;
  o.implementation = implementation;
  auto opt = cf::optim::CreateOptimizer(o, {group});
  if (!opt.ok()) {
    std::fprintf(stderr, "%s\n", opt.status().ToString().c_str());
    std::exit(1);
  }
  for (int i = 0; i < FLAGS_warmup; ++i) (*opt)->Step(1e-3);
  std::vector<double> ms;
  for (int i = 0; i < FLAGS_steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    (*opt)->Step(1e-3);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

double TorchMsPerStep(const std::string& impl) {
  std::string script = FLAGS_script;
  if (script.empty()) {
    const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");  // set by `bazel run`
    script = std::string(ws ? ws : ".") + "/tools/bench/optim_adamw.py";
  }
  const std::string cmd = FLAGS_python + " " + script + " --threads " + std::to_string(FLAGS_threads) +
                          " --steps " + std::to_string(FLAGS_steps) + " --warmup " +
                          std::to_string(FLAGS_warmup) + " --impl " + impl;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  if (pclose(pipe) != 0) {
    std::fprintf(stderr, "reference failed: %s\n%s\n", cmd.c_str(), out.c_str());
    return -1;
  }
  return nlohmann::json::parse(out.substr(out.rfind('{')))["ms_per_step"].get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  at::set_num_threads(FLAGS_threads);
  int64_t n = 0;
  for (const auto& s : ConvNextTinyShapes()) {
    int64_t k = 1;
    for (int64_t d : s) k *= d;
    n += k;
  }
  std::printf("AdamW step, ConvNeXt-T shapes (%lld params, float32, CPU), %d thread(s), best of %d rounds of median of %d\n",
              static_cast<long long>(n), FLAGS_threads, FLAGS_rounds, FLAGS_steps);
  // Each of ours against the torch implementation of the same kind: fused vs fused, foreach vs
  // foreach.
  double torch_fused_ms = 1e30, torch_foreach_ms = 1e30, fused_ms = 1e30, foreach_ms = 1e30;
  for (int r = 0; r < FLAGS_rounds; ++r) {
    const double tf = TorchMsPerStep("fused"), te = TorchMsPerStep("foreach");
    if (tf <= 0 || te <= 0) return 1;
    torch_fused_ms = std::min(torch_fused_ms, tf);
    torch_foreach_ms = std::min(torch_foreach_ms, te);
    fused_ms = std::min(fused_ms, OursMsPerStep("auto"));
    foreach_ms = std::min(foreach_ms, OursMsPerStep("foreach"));
  }
  std::printf("  torch.optim.AdamW(fused=True)    %8.2f ms\n", torch_fused_ms);
  std::printf("  ours, fused CPU kernel           %8.2f ms   ratio %.2fx\n", fused_ms, torch_fused_ms / fused_ms);
  std::printf("  torch.optim.AdamW(foreach=True)  %8.2f ms\n", torch_foreach_ms);
  std::printf("  ours, foreach ops                %8.2f ms   ratio %.2fx\n", foreach_ms, torch_foreach_ms / foreach_ms);
  return 0;
}
