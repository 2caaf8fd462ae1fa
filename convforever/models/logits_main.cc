// `logits`: runs a checkpoint's model on images from a safetensors file and writes the logits, so
// a peer (timm, ci/compare_logits.py) can load the same checkpoint, run the same images and
// compare. Used by ci/gpu_check.sh.
//
//   logits --model=NAME --num_classes=K --weights=CKPT_DIR_OR_FILE --input=IN.safetensors
//          --output=OUT.safetensors [--device=cpu|cuda] [--image_size=224]
//
// IN holds "images" [B, C, H, W] float32; OUT gets "logits" [B, K] float32. The forward runs in
// eval mode, fp32, with TF32 off on CUDA (so a strict comparison is meaningful).
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "convforever/models/export.h"
#include "convforever/models/registry.h"
#include "convforever/models/safetensors.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "logits: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args = {{"device", "cpu"}, {"image_size", "224"}};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) {
      return Fail("bad argument '" + a + "' (flags look like --name=value)");
    }
    args[a.substr(2, eq - 2)] = a.substr(eq + 1);
  }
  for (const char* required : {"model", "num_classes", "weights", "input", "output"}) {
    if (args[required].empty()) return Fail(std::string("--") + required + " is required");
  }
  try {
    auto file = cf::models::ReadSafetensors(args["input"]);
    if (!file.ok()) return Fail(file.status().ToString());
    at::Tensor images;
    for (const auto& [name, t] : *file) {
      if (name == "images") images = t;
    }
    if (!images.defined() || images.dim() != 4 || images.scalar_type() != at::kFloat) {
      return Fail(args["input"] + ": needs a float32 tensor \"images\" [B, C, H, W]");
    }
    cf::models::ModelOptions options = cf::models::DefaultOptions(args["model"]);
    options.num_classes = std::atoll(args["num_classes"].c_str());
    options.in_channels = images.size(1);
    options.image_size = std::atoll(args["image_size"].c_str());
    auto model = cf::models::CreateModel(args["model"], options);
    if (!model.ok()) return Fail(model.status().ToString());
    if (absl::Status s = cf::models::LoadModelWeights(**model, args["weights"]); !s.ok()) {
      return Fail(s.ToString());
    }
    const at::Device device(args["device"] == "cuda" ? at::kCUDA : at::kCPU);
    if (args["device"] != "cpu" && args["device"] != "cuda") return Fail("--device: cpu|cuda");
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
    (*model)->to(device);
    (*model)->eval();
    torch::NoGradGuard no_grad;
    at::Tensor logits = (*model)->forward(images.to(device)).to(at::kFloat).cpu().contiguous();
    auto written = cf::models::WriteSafetensors(args["output"], {{"logits", logits}}, {});
    if (!written.ok()) return Fail(written.ToString());
    std::printf("logits: %s [%lld, %lld] on %s -> %s\n", args["model"].c_str(),
                static_cast<long long>(logits.size(0)), static_cast<long long>(logits.size(1)),
                args["device"].c_str(), args["output"].c_str());
  } catch (const std::exception& e) {  // c10::Error from LibTorch (e.g. no CUDA device)
    std::string what = e.what();
    return Fail(what.substr(0, what.find('\n')));
  }
  return 0;
}
