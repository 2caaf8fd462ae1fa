#include "convforever/models/export.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "convforever/models/convnext.h"
#include "convforever/models/resnet.h"
#include "convforever/models/simple_cnn.h"
#include "convforever/models/vit.h"

namespace cf::models {
namespace {

using Json = nlohmann::ordered_json;

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::Status MakeDirs(const std::string& dir) {
  std::string partial;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || (dir[i] == '/' && i > 0)) {
      partial = dir.substr(0, i);
      if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return absl::InternalError(absl::StrCat("cannot create directory ", partial, ": ", std::strerror(errno)));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Labels(const Model& model, const std::vector<std::string>& names) {
  if (names.empty()) {
    std::vector<std::string> out;
    for (int64_t i = 0; i < model.num_classes(); ++i) out.push_back(absl::StrCat("LABEL_", i));
    return out;
  }
  if (int64_t(names.size()) != model.num_classes()) {
    return absl::InvalidArgumentError(absl::StrCat("class_names has ", names.size(), " entries but the model has ",
                                                   model.num_classes(), " classes"));
  }
  return names;
}

// timm architecture + model_args reproducing our configuration with timm's constructors.
absl::StatusOr<std::pair<std::string, Json>> TimmArchitecture(const Model& model, int64_t* num_features,
                                                               int64_t* in_chans) {
  Json args = Json::object();
  if (const auto* c = dynamic_cast<const ConvNeXt*>(&model)) {
    const auto& o = c->options();
    const std::string& reg = model.registry_name();
    const bool preset = reg.rfind("convnext_", 0) == 0 && reg.find("fmnist") == std::string::npos;
    args["depths"] = o.depths();
    args["dims"] = o.dims();
    args["in_chans"] = o.in_chans();
    args["patch_size"] = o.stem_stride();
    args["ls_init_value"] = o.layer_scale_init() > 0 ? Json(o.layer_scale_init()) : Json(nullptr);
    *num_features = o.dims().back();
    *in_chans = o.in_chans();
    return std::make_pair(preset ? reg : std::string("convnext_tiny"), args);
  }
  if (const auto* r = dynamic_cast<const ResNet*>(&model)) {
    const auto& o = r->options();
    if (o.blur_pool() || o.conv_head() || o.stem_stride() != 4 || o.widths() != std::vector<int64_t>{64, 128, 256, 512}) {
      return absl::UnimplementedError("timm export of ResNet supports the standard stem, widths and FC head only "
                                      "(no blur_pool, conv_head, stem_stride or widths)");
    }
    args["in_chans"] = o.in_chans();
    *num_features = o.widths().back() * (o.bottleneck() ? 4 : 1);
    *in_chans = o.in_chans();
    std::string arch = model.registry_name().empty() ? "resnet50" : model.registry_name();
    return std::make_pair(arch, args);
  }
  if (const auto* v = dynamic_cast<const ViT*>(&model)) {
    const auto& o = v->options();
    args["img_size"] = o.image_size();
    args["patch_size"] = o.patch_size();
    args["in_chans"] = o.in_chans();
    args["embed_dim"] = o.dim();
    args["depth"] = o.depth();
    args["num_heads"] = o.heads();
    args["mlp_ratio"] = double(o.mlp_dim()) / double(o.dim());
    *num_features = o.dim();
    *in_chans = o.in_chans();
    return std::make_pair(std::string("vit_tiny_patch16_224"), args);
  }
  if (const auto* s = dynamic_cast<const SimpleCnn*>(&model)) {
    *num_features = 128;
    *in_chans = s->in_chans();
    return std::make_pair(std::string("simple_cnn"), args);  // ours; timm has no such model
  }
  return absl::UnimplementedError("unknown model class");
}

absl::StatusOr<std::string> TimmConfig(const Model& model, const std::vector<std::string>& labels, int64_t size) {
  int64_t num_features = 0, in_chans = 3;
  ASSIGN_OR_RETURN(auto arch, TimmArchitecture(model, &num_features, &in_chans));
  Json j;
  j["architecture"] = arch.first;
  j["num_classes"] = model.num_classes();
  j["num_features"] = num_features;
  j["global_pool"] = model.family() == "vit" ? "token" : "avg";
  j["model_args"] = arch.second;
  Json cfg;
  cfg["input_size"] = {in_chans, size, size};
  cfg["num_classes"] = model.num_classes();
  cfg["interpolation"] = "bicubic";
  cfg["crop_pct"] = 1.0;
  cfg["mean"] = {0.485, 0.456, 0.406};
  cfg["std"] = {0.229, 0.224, 0.225};
  if (in_chans != 3) {
    cfg["mean"] = std::vector<double>(in_chans, 0.5);
    cfg["std"] = std::vector<double>(in_chans, 0.5);
  }
  cfg["first_conv"] = model.family() == "convnext" ? "stem.0" : model.family() == "vit" ? "patch_embed.proj" : "conv1";
  cfg["classifier"] = model.family() == "convnext" ? "head.fc" : model.family() == "vit" ? "head" : "fc";
  j["pretrained_cfg"] = cfg;
  j["label_names"] = labels;
  return j.dump(2) + "\n";
}

absl::StatusOr<std::string> TransformersConfig(const Model& model, const std::vector<std::string>& labels,
                                               int64_t size) {
  const auto* c = dynamic_cast<const ConvNeXt*>(&model);
  if (!c) return absl::UnimplementedError(absl::StrCat("transformers export covers ConvNeXt only, not ", model.family()));
  const auto& o = c->options();
  Json j;
  j["architectures"] = {"ConvNextForImageClassification"};
  j["model_type"] = "convnext";
  j["num_channels"] = o.in_chans();
  j["patch_size"] = o.stem_stride();
  j["num_stages"] = o.depths().size();
  j["hidden_sizes"] = o.dims();
  j["depths"] = o.depths();
  j["hidden_act"] = "gelu";
  j["initializer_range"] = 0.02;
  j["layer_norm_eps"] = 1e-6;  // timm's head norm; transformers' default 1e-12 would differ
  j["layer_scale_init_value"] = o.layer_scale_init() > 0 ? o.layer_scale_init() : 0.0;
  j["drop_path_rate"] = 0.0;
  j["image_size"] = size;
  Json id2label = Json::object(), label2id = Json::object();
  for (size_t i = 0; i < labels.size(); ++i) {
    id2label[std::to_string(i)] = labels[i];
    label2id[labels[i]] = i;
  }
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  j["torch_dtype"] = "float32";
  return j.dump(2) + "\n";
}

std::string ShapeString(const at::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ","), "]");
}

std::string FirstFew(const std::vector<std::string>& names) {
  std::vector<std::string> head(names.begin(), names.begin() + std::min<size_t>(names.size(), 5));
  return absl::StrCat(names.size(), " (", absl::StrJoin(head, ", "), names.size() > 5 ? ", ..." : "", ")");
}

}  // namespace

absl::StatusOr<NamedTensors> ExportStateDict(const Model& model, WeightFormat format) {
  NamedTensors out;
  for (const auto& [name, t] : model.StateDict()) {
    ASSIGN_OR_RETURN(std::string mapped, MapName(model.family(), name, format));
    at::Tensor v = t.detach().to(at::kCPU).contiguous();
    if (format == WeightFormat::kTorchvision && name.size() > 6 && name.substr(name.size() - 6) == ".gamma") {
      v = v.reshape({v.size(0), 1, 1});
    }
    out.emplace_back(mapped, v);
  }
  return out;
}

absl::StatusOr<std::string> ConfigJson(const Model& model, WeightFormat format,
                                       const std::vector<std::string>& class_names, int64_t image_size) {
  ASSIGN_OR_RETURN(std::vector<std::string> labels, Labels(model, class_names));
  if (format == WeightFormat::kTimm) return TimmConfig(model, labels, image_size);
  if (format == WeightFormat::kTransformers) return TransformersConfig(model, labels, image_size);
  return absl::UnimplementedError("no config.json for the torchvision layout (it has none)");
}

absl::Status SaveModel(const Model& model, const std::string& dir, WeightFormat format,
                       const std::vector<std::string>& class_names, int64_t image_size) {
  ASSIGN_OR_RETURN(std::string config, ConfigJson(model, format, class_names, image_size));
  ASSIGN_OR_RETURN(NamedTensors tensors, ExportStateDict(model, format));
  RETURN_IF_ERROR(MakeDirs(dir));
  RETURN_IF_ERROR(WriteSafetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}}));
  return base::WriteFileAtomically(dir + "/config.json", config);
}

absl::Status LoadStateDict(Model& model, const NamedTensors& tensors, WeightFormat format,
                           const std::string& source, const std::set<std::string>& keep) {
  std::map<std::string, at::Tensor> file(tensors.begin(), tensors.end());
  std::vector<std::string> missing, mismatched, unexpected;
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;
  for (const auto& [name, t] : model.StateDict()) {
    if (keep.count(name)) continue;
    ASSIGN_OR_RETURN(std::string mapped, MapName(model.family(), name, format));
    auto it = file.find(mapped);
    if (it == file.end()) {
      missing.push_back(mapped);
      continue;
    }
    at::Tensor src = it->second;
    file.erase(it);
    const bool same_kind = src.is_floating_point() == t.is_floating_point();
    if (src.numel() != t.numel() || !same_kind ||
        (src.sizes() != t.sizes() && !(format == WeightFormat::kTorchvision && src.dim() == 3))) {
      mismatched.push_back(absl::StrCat(mapped, " file ", c10::toString(src.scalar_type()), ShapeString(src),
                                        " vs model ", c10::toString(t.scalar_type()), ShapeString(t)));
      continue;
    }
    copies.emplace_back(t, src);
  }
  for (const auto& [name, t] : file) unexpected.push_back(name);
  if (!missing.empty() || !mismatched.empty() || !unexpected.empty()) {
    std::string msg = absl::StrCat(source, " (", WeightFormatName(format), " names) does not fit the ",
                                   model.registry_name().empty() ? model.family() : model.registry_name(), " model:");
    if (!missing.empty()) absl::StrAppend(&msg, " missing ", FirstFew(missing), ";");
    if (!unexpected.empty()) absl::StrAppend(&msg, " unexpected ", FirstFew(unexpected), ";");
    if (!mismatched.empty()) absl::StrAppend(&msg, " shape/dtype mismatch ", FirstFew(mismatched), ";");
    return absl::InvalidArgumentError(msg);
  }
  at::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src.reshape(dst.sizes()));
  return absl::OkStatus();
}

WeightFormat DetectWeightFormat(const Model& model, const NamedTensors& tensors) {
  std::set<std::string> present;
  for (const auto& [name, t] : tensors) present.insert(name);
  WeightFormat best = WeightFormat::kTimm;
  int best_hits = -1;
  for (WeightFormat f : {WeightFormat::kTimm, WeightFormat::kTransformers, WeightFormat::kTorchvision}) {
    int hits = 0;
    for (const auto& [name, t] : model.StateDict()) {
      auto mapped = MapName(model.family(), name, f);
      if (mapped.ok() && present.count(*mapped)) ++hits;
    }
    if (hits > best_hits) {
      best_hits = hits;
      best = f;
    }
  }
  return best;
}

absl::Status LoadModelWeights(Model& model, const std::string& path) {
  const std::string file = IsDirectory(path) ? path + "/model.safetensors" : path;
  ASSIGN_OR_RETURN(NamedTensors tensors, ReadSafetensors(file));
  try {
    return LoadStateDict(model, tensors, DetectWeightFormat(model, tensors), file);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": cannot load: ", e.what()));
  }
}

}  // namespace cf::models
