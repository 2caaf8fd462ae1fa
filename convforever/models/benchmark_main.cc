// models_benchmark: forward+backward steps (cross-entropy, train mode) of our ConvNeXt-T and
// ResNet-50 at 64x64, batch 32, and of the small Fashion-MNIST ConvNeXts at 28x28x1, batch 128,
// against the same steps in torch from the project venv (tools/bench/models_bench.py) with the same
// thread count, measured in the same run. Prints ms/step, images/s and the ratio
// python_ms / ours_ms (>= 1.0 means ours is at least as fast).
//
//   bazel run -c opt //convforever/models:models_benchmark -- --threads=2 --iters=5
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gflags/gflags.h>
#include <nlohmann/json.hpp>

#include "convforever/models/registry.h"

DEFINE_string(threads, "1,2", "comma-separated intra-op thread counts to measure");
DEFINE_int32(iters, 5, "timed steps per model (median reported), after 2 warm-up steps");
DEFINE_string(models, "convnext_tiny,resnet50,convnext_nano_fmnist,convnext_pico_fmnist", "models to time");
DEFINE_string(python, ".venv/bin/python", "interpreter with the reference torch (the project venv, from the workspace root)");
DEFINE_string(script, "", "reference script; default tools/bench/models_bench.py in the workspace");

namespace {

struct Case {
  std::string name;
  int64_t batch, channels, size, classes;
};

Case CaseFor(const std::string& name) {
  if (name.find("fmnist") != std::string::npos) return {name, 128, 1, 28, 10};
  return {name, 32, 3, 64, 1000};
}

double TimeOurs(const Case& c) {
  cf::models::ModelOptions o = cf::models::DefaultOptions(c.name);
  o.num_classes = c.classes;
  o.in_channels = c.channels;
  o.image_size = c.size;
  std::shared_ptr<cf::models::Model> model = cf::models::CreateModel(c.name, o).value();
  model->train();
  at::manual_seed(0);
  at::Tensor x = at::randn({c.batch, c.channels, c.size, c.size});
  at::Tensor target = at::randint(0, c.classes, {c.batch}, at::kLong);
  std::vector<double> ms;
  for (int i = 0; i < 2 + FLAGS_iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor loss = at::cross_entropy_loss(model->forward(x), target);
    model->zero_grad(/*set_to_none=*/true);
    loss.backward();
    auto t1 = std::chrono::steady_clock::now();
    if (i >= 2) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

std::map<std::string, double> TimePython(int threads) {
  std::string script = FLAGS_script;
  if (script.empty()) {
    const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
    script = std::string(ws ? ws : ".") + "/tools/bench/models_bench.py";
  }
  const std::string cmd = FLAGS_python + " " + script + " --threads " + std::to_string(threads) +
                          " --iters " + std::to_string(FLAGS_iters) + " --models " + FLAGS_models;
  std::map<std::string, double> out;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return out;
  std::string text;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), pipe)) text.append(buf, n);
  ::pclose(pipe);
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = it->get<double>();
  } else {
    std::fprintf(stderr, "reference failed: %s\noutput: %s\n", cmd.c_str(), text.c_str());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  std::vector<std::string> names;
  for (size_t s = 0, e; s <= FLAGS_models.size(); s = e + 1) {
    e = FLAGS_models.find(',', s);
    if (e == std::string::npos) e = FLAGS_models.size();
    if (e > s) names.push_back(FLAGS_models.substr(s, e - s));
  }
  std::printf("%-22s %7s %6s %12s %12s %10s %10s %7s\n", "model", "threads", "batch", "ours ms", "python ms",
              "ours img/s", "py img/s", "ratio");
  for (size_t s = 0, e; s <= FLAGS_threads.size(); s = e + 1) {
    e = FLAGS_threads.find(',', s);
    if (e == std::string::npos) e = FLAGS_threads.size();
    const int threads = std::atoi(FLAGS_threads.substr(s, e - s).c_str());
    if (threads < 1) continue;
    at::set_num_threads(threads);
    std::map<std::string, double> ours;
    for (const std::string& n : names) ours[n] = TimeOurs(CaseFor(n));
    std::map<std::string, double> py = TimePython(threads);
    for (const std::string& n : names) {
      const Case c = CaseFor(n);
      const double p = py.count(n) ? py[n] : 0.0;
      std::printf("%-22s %7d %6lld %12.1f %12.1f %10.1f %10.1f %6.2fx\n", n.c_str(), threads,
                  static_cast<long long>(c.batch), ours[n], p, 1000.0 * c.batch / ours[n],
                  p > 0 ? 1000.0 * c.batch / p : 0.0, p > 0 ? p / ours[n] : 0.0);
    }
  }
  return 0;
}
