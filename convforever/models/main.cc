// `models`: prints the registry (name, parameters, GMACs at the native size and at 224), or
//   models export NAME --out DIR [--format timm|transformers|torchvision] [--seed S] [--image_size N]
//   models forward NAME --weights PATH --input X --out Y [--num_classes N] [--in_chans C] [--image_size N]
// (see interop.h: the files tools/interop/ hands to timm, torchvision and transformers).
#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "convforever/base/cli_help.h"
#include "convforever/models/interop.h"
#include "convforever/models/registry.h"
#include "gflags/gflags.h"

DEFINE_string(out, "", "export: output directory; forward: logits safetensors file");
DEFINE_string(format, "timm", "export: weight names, timm|transformers|torchvision");
DEFINE_uint64(seed, 0, "export: seed of the weights and the input");
DEFINE_int64(image_size, 0, "input size (0 = the entry's native size)");
DEFINE_string(weights, "", "forward: safetensors, torch.save file or checkpoint directory");
DEFINE_string(input, "", "forward: safetensors file with 'input' [B, C, H, W]");
DEFINE_int64(num_classes, 0, "forward: classes (0 = the entry's default)");
DEFINE_int64(in_chans, 0, "forward: input channels (0 = the entry's default)");
DEFINE_double(layer_scale_init, -1, "forward: ConvNeXt layer scale (0 = none, as --layer_scale_init=0 trained; < 0 = default)");

namespace {

void PrintRegistry() {
  std::printf("%-22s %12s %8s %14s %12s  %s\n", "name", "params", "native", "GMACs@native",
              "GMACs@224", "description");
  for (const cf::models::ModelInfo& m : cf::models::ListModels()) {
    std::printf("%-22s %12lld %8lld %14.4f %12.3f  %s\n", m.name.c_str(),
                static_cast<long long>(m.params), static_cast<long long>(m.native_size),
                m.gmacs_native, m.gmacs_224, m.description.c_str());
  }
}

absl::Status Run(const std::string& command, const std::string& model) {
  if (command == "export") {
    cf::models::ExportOptions o;
    o.model = model;
    o.out_dir = FLAGS_out;
    auto format = cf::models::ParseWeightFormat(FLAGS_format);
    if (!format.ok()) return format.status();
    o.format = *format;
    o.seed = FLAGS_seed;
    o.image_size = FLAGS_image_size;
    return cf::models::ExportForInterop(o);
  }
  cf::models::ForwardOptions o;
  o.model = model;
  o.num_classes = FLAGS_num_classes;
  o.in_chans = FLAGS_in_chans;
  o.image_size = FLAGS_image_size;
  o.layer_scale_init = FLAGS_layer_scale_init;
  o.weights = FLAGS_weights;
  o.input = FLAGS_input;
  o.out = FLAGS_out;
  return cf::models::ForwardForInterop(o);
}

}  // namespace

int main(int argc, char** argv) {
  constexpr char kUsage[] = "models [export|forward NAME --flags]";
  if (cf::base::PrintHelpIfAsked(argc, argv, kUsage, "convforever/models/main.cc")) return 0;
  gflags::SetUsageMessage(kUsage);
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (argc == 1) {
    PrintRegistry();
    return 0;
  }
  const std::string command = argv[1];
  if (argc != 3 || (command != "export" && command != "forward") || FLAGS_out.empty()) {
    std::fprintf(stderr, "usage: models [export NAME --out DIR | forward NAME --weights F --input X --out Y]\n");
    return 2;
  }
  absl::Status s = Run(command, argv[2]);
  if (!s.ok()) {
    std::fprintf(stderr, "models %s: %s\n", command.c_str(), std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
