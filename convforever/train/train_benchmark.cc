// End-to-end training throughput of the default recipe (data + step), ours vs the equivalent
// script in torch/torchvision from the project venv (tools/bench/train_reference.py), same model,
// batch, optimizer and threads, side by side in one run. Both are timed between step --warmup and
// step --steps, so start-up, model build and evaluation are excluded. Run from the repo root:
//   tools/cf bench train        (or bazel-bin/convforever/train/train_benchmark --threads=1)
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"
#include "nlohmann/json.hpp"

DEFINE_int32(steps, 300, "optimizer steps per run");
DEFINE_int32(warmup, 50, "steps before the clock starts");
DEFINE_int32(threads, 1, "LibTorch intra-op threads on both sides");
DEFINE_int32(rounds, 2, "alternating rounds; the best of each side is reported");

namespace {

constexpr int kBatch = 128;
constexpr char kRecipe[] = "convforever/train/recipes/fashion_mnist.flags";

// Our trainer binary sits next to this one.
std::string TrainerPath(const char* argv0) {
  return (std::filesystem::path(argv0).parent_path() / "train").string();
}

double RunOurs(const std::string& trainer) {
  const std::string dir = "/tmp/convforever_train_benchmark";
  std::filesystem::remove_all(dir);
  const std::string cmd = absl::StrCat(
      trainer, " --flagfile=", kRecipe, " --max_steps=", FLAGS_steps,
      " --log_every_steps=", FLAGS_warmup, " --threads=", FLAGS_threads, " --micro_batch_size=", kBatch,
      " --warmup_steps=10 --tensorboard=false --run_dir=", dir, " > ", dir, ".log 2>&1");
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
  if (!wall.count(FLAGS_warmup) || !wall.count(FLAGS_steps)) return 0;
  return (FLAGS_steps - FLAGS_warmup) * kBatch / (wall[FLAGS_steps] - wall[FLAGS_warmup]);
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
double RunPython(bool tuned_malloc) {
  const std::string cmd = absl::StrCat(
      tuned_malloc ? "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:"
                     "glibc.malloc.trim_threshold=1073741824 "
                   : "",
      ".venv/bin/python tools/bench/train_reference.py --steps ", FLAGS_steps, " --warmup ",
      FLAGS_warmup, " --threads ", FLAGS_threads, " --batch ", kBatch,
      RecipeUsesChannelsLast() ? " --channels_last" : "", " --stem_stride ",
      RecipeValue("stem_stride", "4"), " --widths ", RecipeValue("widths", "48,96,192"),
      RecipeValue("hflip", "false") == "true" ? " --hflip" : "", " --label_smoothing ",
      RecipeValue("label_smoothing", "0"),
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

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
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
  return 0;
}
