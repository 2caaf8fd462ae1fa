// End-to-end training throughput of the default recipe (data + step), ours vs the equivalent
// script in torch/torchvision from the project venv (tools/bench/train_reference.py), same model,
// batch, optimizer and threads, side by side in one run. Both are timed between step --warmup and
// step --steps, so start-up, model build and evaluation are excluded. Run from the repo root:
//   tools/cf bench train        (or bazel-bin/convforever/train/train_benchmark --threads=1)
// Threads: by default what the trainer picks for the recipe on this machine (train/threads.h: every
// core, the recipe's data being in memory), given to both sides.
// With --profile_steps=N, one more run of each side profiles N steps after the warmup (our
// trainer's --profile_steps, torch.profiler in the reference) and a per-op table of one step is
// printed: wall, data wait, optimizer step, and the ops by self time on each side.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "convforever/train/threads.h"
#include "gflags/gflags.h"
#include "nlohmann/json.hpp"

DEFINE_int32(steps, 300, "optimizer steps per run");
DEFINE_int32(warmup, 50, "steps before the clock starts");
DEFINE_int32(threads, 0, "LibTorch intra-op threads on both sides (0 = the trainer's choice for the recipe on this machine)");
DEFINE_int32(rounds, 2, "alternating rounds; the best of each side is reported");
DEFINE_int32(profile_steps, 0, "> 0: also print a per-op table of one step, profiled over this many steps after --warmup");
DEFINE_int32(profile_rows, 18, "ops listed in the per-op table");

namespace {

constexpr int kBatch = 128;
constexpr char kRecipe[] = "convforever/train/recipes/fashion_mnist.flags";

// Our trainer binary sits next to this one.
std::string TrainerPath(const char* argv0) {
  return (std::filesystem::path(argv0).parent_path() / "train").string();
}

// `extra`: more trainer flags (the profile run's).
double RunOurs(const std::string& trainer, int steps = FLAGS_steps, const std::string& extra = "") {
  const std::string dir = "/tmp/convforever_train_benchmark";
  std::filesystem::remove_all(dir);
  const std::string cmd = absl::StrCat(
      trainer, " --flagfile=", kRecipe, " --max_steps=", steps,
      " --log_every_steps=", FLAGS_warmup, " --threads=", FLAGS_threads, " --micro_batch_size=", kBatch,
      // Exactly --steps steps, no --time_budget planning (its eval timing would land in the window).
      " --warmup_steps=10 --time_budget= --tensorboard=false --run_dir=", dir, extra, " > ", dir, ".log 2>&1");
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "our trainer failed: see %s.log\n", dir.c_str());
    return 0;
  }
  std::map<int64_t, double> wall;  // step -> wall time
  std::ifstream in(dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("kind", "") == "metrics" && j.contains("train/step_loss")) {
      wall[j["step"].get<int64_t>()] = j["wall_time"].get<double>();
    }
  }
  if (!wall.count(FLAGS_warmup) || !wall.count(steps)) return 0;
  return (steps - FLAGS_warmup) * kBatch / (wall[steps] - wall[FLAGS_warmup]);
}

// The recipe's value of `--name` ("true" for a bare `--name`), or `fallback`.
std::string RecipeValue(const std::string& name, const std::string& fallback) {
  std::ifstream in(kRecipe);
  for (std::string line; std::getline(in, line);) {
    if (line == "--" + name) return "true";
    if (line.rfind("--" + name + "=", 0) == 0) return line.substr(name.size() + 3);
  }
  return fallback;
}

// The reference builds the recipe's model shape and uses its memory format.
bool RecipeUsesChannelsLast() { return RecipeValue("channels_last", "false") == "true"; }

// `tuned_malloc`: the reference runs with the glibc malloc thresholds our trainer sets on itself
// (base/allocator.h), to show how much of the ratio is the allocator and how much the kernels.
double RunPython(bool tuned_malloc, int steps = FLAGS_steps, const std::string& extra = "") {
  const std::string cmd = absl::StrCat(
      tuned_malloc ? "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:"
                     "glibc.malloc.trim_threshold=1073741824 "
                   : "",
      ".venv/bin/python tools/bench/train_reference.py --steps ", steps, " --warmup ",
      FLAGS_warmup, " --threads ", FLAGS_threads, " --batch ", kBatch,
      RecipeUsesChannelsLast() ? " --channels_last" : "", " --stem_stride ",
      RecipeValue("stem_stride", "4"), " --widths ", RecipeValue("widths", "48,96,192"),
      RecipeValue("hflip", "false") == "true" ? " --hflip" : "", " --label_smoothing ",
      RecipeValue("label_smoothing", "0"), extra,
      " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return 0;
  double value = 0;
  char buf[256];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) {
    std::sscanf(buf, "images_per_sec %lf", &value);
  }
  pclose(p);
  return value;
}

// One side's ops.json (op_profile.h's format), per step.
struct StepProfile {
  double wall_ms = 0;
  std::map<std::string, double> self_ms, total_ms;
};

bool ReadProfile(const std::string& path, StepProfile* out) {
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("ops") || j.value("steps", 0) <= 0) {
    std::fprintf(stderr, "no per-op profile in %s\n", path.c_str());
    return false;
  }
  const double steps = j["steps"].get<double>();
  out->wall_ms = j["wall_us"].get<double>() / 1e3 / steps;
  for (const auto& op : j["ops"]) {
    const std::string name = op["name"];
    out->self_ms[name] += op["self_us"].get<double>() / 1e3 / steps;
    out->total_ms[name] += op["total_us"].get<double>() / 1e3 / steps;
  }
  return true;
}

// Inclusive time of the regions whose name contains `needle` (the data wait, the optimizer step).
double RegionMs(const StepProfile& p, const std::string& needle) {
  double ms = 0;
  for (const auto& [name, t] : p.total_ms) {
    if (name.find(needle) != std::string::npos) ms += t;
  }
  return ms;
}

void PrintProfileTable(const std::string& trainer) {
  const int first = FLAGS_warmup, end = FLAGS_warmup + FLAGS_profile_steps;
  const std::string ours_dir = "/tmp/convforever_train_benchmark";
  const std::string torch_json = "/tmp/convforever_train_benchmark_torch_ops.json";
  std::filesystem::remove(torch_json);
  RunOurs(trainer, end, absl::StrCat(" --profile_steps=", first, ":", end));
  StepProfile ours, torch;
  if (!ReadProfile(ours_dir + "/profile/ops.json", &ours)) return;
  RunPython(/*tuned_malloc=*/false, end,
            absl::StrCat(" --profile_steps ", first, ":", end, " --profile_out ", torch_json));
  if (!ReadProfile(torch_json, &torch)) return;
  auto row = [](const std::string& what, double a, double b) {
    if (a > 0 && b > 0) {
      std::printf("  %-44s %10.2f %10.2f %8.2fx\n", what.c_str(), a, b, b / a);
    } else {
      std::printf("  %-44s %10.2f %10.2f %9s\n", what.c_str(), a, b, "-");
    }
  };
  std::printf("\nper-op profile of one step (steps %d..%d, profiler on; ms per step; ratio = torch / ours)\n",
              first, end - 1);
  std::printf("  %-44s %10s %10s %9s\n", "", "convforever", "torch 2.x", "ratio");
  row("wall", ours.wall_ms, torch.wall_ms);
  const double ours_data = RegionMs(ours, "next_batch"), torch_data = RegionMs(torch, "next_batch");
  const double ours_opt = RegionMs(ours, "cf::optimizer_step"), torch_opt = RegionMs(torch, "Optimizer.step");
  row("  waiting for the batch", ours_data, torch_data);
  row("  optimizer step (+ zero_grad on torch's side)", ours_opt,
      torch_opt + RegionMs(torch, "Optimizer.zero_grad"));
  row("  forward + backward + the rest", ours.wall_ms - ours_data - ours_opt,
      torch.wall_ms - torch_data - torch_opt - RegionMs(torch, "Optimizer.zero_grad"));
  double ours_ops = 0, torch_ops = 0;
  for (const auto& [n, t] : ours.self_ms) ours_ops += t;
  for (const auto& [n, t] : torch.self_ms) torch_ops += t;
  row("  outside any op (interpreter, loop)", ours.wall_ms - ours_ops, torch.wall_ms - torch_ops);
  // The ops by self time: the largest of either side.
  std::vector<std::pair<double, std::string>> by_time;
  std::map<std::string, double> largest;
  for (const auto* side : {&ours.self_ms, &torch.self_ms}) {
    for (const auto& [n, t] : *side) largest[n] = std::max(largest[n], t);
  }
  for (const auto& [n, t] : largest) by_time.emplace_back(t, n);
  std::sort(by_time.rbegin(), by_time.rend());
  std::printf("  ops by self time (cf:: are our kernels; torch runs aten::gelu(_backward) and the\n"
              "  depthwise weight gradient inside aten::convolution_backward there):\n");
  for (size_t i = 0; i < by_time.size() && i < static_cast<size_t>(FLAGS_profile_rows); ++i) {
    const std::string& n = by_time[i].second;
    const std::string shown = n.size() > 42 ? n.substr(0, 39) + "..." : n;
    row("  " + shown, ours.self_ms.count(n) ? ours.self_ms.at(n) : 0.0,
        torch.self_ms.count(n) ? torch.self_ms.at(n) : 0.0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_threads <= 0) {
    cf::train::ThreadInputs in;
    in.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    in.num_workers = 1;
    in.light_data = true;  // Fashion-MNIST, in memory
    FLAGS_threads = cf::train::ChooseIntraOpThreads(in).threads;
  }
  if (!std::filesystem::exists("tools/bench/train_reference.py")) {
    std::fprintf(stderr, "run from the repository root (tools/cf bench train)\n");
    return 2;
  }
  const std::string trainer = TrainerPath(argv[0]);
  double ours = 0, python = 0, python_tuned = 0;
  for (int r = 0; r < FLAGS_rounds; ++r) {
    const double o = RunOurs(trainer);
    const double p = RunPython(/*tuned_malloc=*/false);
    const double t = RunPython(/*tuned_malloc=*/true);
    std::printf("round %d: convforever %.1f, torch 2.x    %.1f, torch 2.x    with our malloc "
                "settings %.1f images/s\n", r, o, p, t);
    ours = std::max(ours, o);
    python = std::max(python, p);
    python_tuned = std::max(python_tuned, t);
  }
  if (ours <= 0 || python <= 0 || python_tuned <= 0) {
    std::fprintf(stderr, "a side failed to report (the project venv: `tools/cf setup`)\n");
    return 1;
  }
  std::printf("default recipe (stem stride %s, widths %s), batch %d, %d thread(s), %s, steps %d..%d "
              "(data + step)\n", RecipeValue("stem_stride", "4").c_str(),
              RecipeValue("widths", "48,96,192").c_str(), kBatch, FLAGS_threads,
              RecipeUsesChannelsLast() ? "channels_last" : "NCHW", FLAGS_warmup, FLAGS_steps);
  std::printf("  convforever   : %8.1f images/s\n  torch 2.x    : %8.1f images/s\n", ours, python);
  std::printf("  torch 2.x   , malloc thresholds as ours : %8.1f images/s\n", python_tuned);
  std::printf("  ratio         : %8.2fx (target >= 1.2x)\n", ours / python);
  std::printf("  ratio vs the reference with our malloc settings: %.2fx\n", ours / python_tuned);
  if (FLAGS_profile_steps > 0) PrintProfileTable(trainer);
  return 0;
}
