#include "convforever/models/interop.h"

#include <filesystem>

#include <ATen/ATen.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/models/export.h"
#include "convforever/models/registry.h"
#include "convforever/models/safetensors.h"
#include "convforever/models/state_dict_file.h"

namespace cf::models {
namespace {

// Moves every scale and statistic off its identity init (see interop.h), deterministically.
void PerturbWeights(Model& model, uint64_t seed) {
  at::NoGradGuard no_grad;
  at::manual_seed(seed);
  for (auto& [name, t] : model.StateDict()) {
    if (!t.is_floating_point()) continue;
    if (absl::EndsWith(name, "running_var")) {
      t.uniform_(0.5, 1.5);
    } else if (absl::EndsWith(name, "gamma") || (t.dim() == 1 && absl::EndsWith(name, ".weight"))) {
      t.uniform_(0.5, 1.0);  // layer scales and norm scales
    } else if (absl::EndsWith(name, "bias") || absl::EndsWith(name, "running_mean")) {
      t.normal_(0.0, 0.1);
    } else if (t.dim() == 3 && t.size(0) == 1) {
      t.normal_(0.0, 0.02);  // ViT class token and position embeddings (initialised to zero)
    }
  }
}

absl::StatusOr<at::Tensor> Logits(Model& model, const at::Tensor& input) {
  try {
    at::NoGradGuard no_grad;
    model.eval();
    return model.forward(input).contiguous();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("forward of ", model.registry_name(),
                                                   " on input ", c10::str(input.sizes()), " failed: ", e.what()));
  }
}

absl::Status WriteWeights(const Model& model, const ExportOptions& o, int64_t size) {
  if (o.format != WeightFormat::kTorchvision) return SaveModel(model, o.out_dir, o.format, {}, size);
  ASSIGN_OR_RETURN(NamedTensors tensors, ExportStateDict(model, o.format));
  return WriteSafetensors(o.out_dir + "/model.safetensors", tensors, {{"format", "pt"}});
}

}  // namespace

absl::Status ExportForInterop(const ExportOptions& o) {
  ModelOptions m = DefaultOptions(o.model);
  const int64_t size = o.image_size > 0 ? o.image_size : m.image_size;
  m.image_size = size;
  ASSIGN_OR_RETURN(std::shared_ptr<Model> model, CreateModel(o.model, m));
  PerturbWeights(*model, o.seed);
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", o.out_dir, ": ", ec.message()));
  RETURN_IF_ERROR(WriteWeights(*model, o, size));
  at::manual_seed(o.seed + 1);
  const at::Tensor input = at::randn({o.batch, m.in_channels, size, size});
  ASSIGN_OR_RETURN(at::Tensor logits, Logits(*model, input));
  RETURN_IF_ERROR(WriteSafetensors(o.out_dir + "/input.safetensors", {{"input", input}}, {{"format", "pt"}}));
  return WriteSafetensors(o.out_dir + "/logits.safetensors", {{"logits", logits}}, {{"format", "pt"}});
}

absl::Status ForwardForInterop(const ForwardOptions& o) {
  ModelOptions m = DefaultOptions(o.model);
  if (o.num_classes > 0) m.num_classes = o.num_classes;
  if (o.in_chans > 0) m.in_channels = o.in_chans;
  if (o.image_size > 0) m.image_size = o.image_size;
  if (o.layer_scale_init >= 0) m.layer_scale_init = o.layer_scale_init;
  ASSIGN_OR_RETURN(std::shared_ptr<Model> model, CreateModel(o.model, m));
  ASSIGN_OR_RETURN(StateDictFile weights, ReadStateDictFile(o.weights));
  try {
    RETURN_IF_ERROR(LoadStateDict(*model, weights.tensors, DetectWeightFormat(*model, weights.tensors),
                                  weights.path));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(weights.path, ": cannot load: ", e.what()));
  }
  ASSIGN_OR_RETURN(NamedTensors input, ReadSafetensors(o.input));
  const at::Tensor* x = nullptr;
  for (const auto& [name, t] : input) {
    if (name == "input") x = &t;
  }
  if (x == nullptr) return absl::InvalidArgumentError(absl::StrCat(o.input, " has no tensor named 'input'"));
  ASSIGN_OR_RETURN(at::Tensor logits, Logits(*model, x->to(at::kFloat)));
  return WriteSafetensors(o.out, {{"logits", logits}}, {{"format", "pt"}});
}

}  // namespace cf::models
