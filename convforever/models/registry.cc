#include "convforever/models/registry.h"

#include <cmath>
#include <exception>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convforever/base/status_macros.h"
#include "convforever/models/convnext.h"
#include "convforever/models/resnet.h"
#include "convforever/models/simple_cnn.h"
#include "convforever/models/vit.h"

namespace cf::models {
namespace {

struct ConvNeXtPreset {
  std::vector<int64_t> depths, dims;
  int64_t stem_stride;
  const char* description;
};

const std::map<std::string, ConvNeXtPreset>& ConvNeXtPresets() {
  static const auto* presets = new std::map<std::string, ConvNeXtPreset>{
      {"convnext_tiny", {{3, 3, 9, 3}, {96, 192, 384, 768}, 4, "ConvNeXt-T (Liu et al. 2022)"}},
      {"convnext_small", {{3, 3, 27, 3}, {96, 192, 384, 768}, 4, "ConvNeXt-S"}},
      {"convnext_base", {{3, 3, 27, 3}, {128, 256, 512, 1024}, 4, "ConvNeXt-B"}},
      {"convnext_large", {{3, 3, 27, 3}, {192, 384, 768, 1536}, 4, "ConvNeXt-L"}},
      {"convnext_xlarge", {{3, 3, 27, 3}, {256, 512, 1024, 2048}, 4, "ConvNeXt-XL"}},
      {"convforever", {{}, {96, 192, 384, 768}, 4, "ConvNeXt, depth = ModelOptions.depth"}},
      // 28x28 -> 14x14 stem, three narrow stages (14, 7, 3): ~10 MMACs, fast on 2 CPU cores.
      {"convnext_nano_fmnist",
       {{2, 2, 2}, {32, 64, 128}, 2, "small ConvNeXt for 28x28 Fashion-MNIST on CPU"}},
      // Half the blocks of nano: about twice the images/s on a CPU.
      {"convnext_pico_fmnist",
       {{1, 1, 1}, {32, 64, 128}, 2, "smaller ConvNeXt for 28x28 Fashion-MNIST on CPU"}},
  };
  return *presets;
}

absl::Status ValidateCommon(const std::string& name, const ModelOptions& o) {
  if (o.num_classes < 1) return absl::InvalidArgumentError(absl::StrCat(name, ": num_classes must be >= 1, got ", o.num_classes));
  if (o.in_channels < 1) return absl::InvalidArgumentError(absl::StrCat(name, ": in_channels must be >= 1, got ", o.in_channels));
  if (o.image_size < 4) return absl::InvalidArgumentError(absl::StrCat(name, ": image_size must be >= 4, got ", o.image_size));
  if (!(o.drop_path_rate >= 0.0 && o.drop_path_rate < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": drop_path_rate must be in [0, 1), got ", o.drop_path_rate));
  }
  if (o.stem_stride != 0 && o.stem_stride != 1 && o.stem_stride != 2 && o.stem_stride != 4) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": stem_stride must be 0 (default), 1, 2 or 4, got ", o.stem_stride));
  }
  if (!(o.width_multiplier > 0.0)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": width_multiplier must be > 0, got ", o.width_multiplier));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> Widths(const std::string& name, const ModelOptions& o,
                                            std::vector<int64_t> defaults) {
  if (!o.widths.empty()) {
    if (o.widths.size() != defaults.size()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": widths needs ", defaults.size(), " entries (one per stage), got ", o.widths.size()));
    }
    for (int64_t w : o.widths) {
      if (w < 1) return absl::InvalidArgumentError(absl::StrCat(name, ": widths must be >= 1, got ", w));
    }
    return o.widths;
  }
  for (int64_t& w : defaults) {
    // Round scaled widths to a multiple of 8 (friendly to vector units and tensor cores).
    w = std::max<int64_t>(8, std::llround(w * o.width_multiplier / 8.0) * 8);
  }
  return defaults;
}

absl::StatusOr<ConvNeXtOptions> ConvNeXtConfig(const std::string& name, const ModelOptions& o) {
  const ConvNeXtPreset& p = ConvNeXtPresets().at(name);
  std::vector<int64_t> depths = p.depths;
  if (name == "convforever") {
    if (o.depth < 4) {
      return absl::InvalidArgumentError(absl::StrCat("convforever: ModelOptions.depth must be >= 4 (one block per stage at least), got ", o.depth));
    }
    depths = SplitDepth(o.depth, 4);
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> dims, Widths(name, o, p.dims));
  ConvNeXtOptions c(depths, dims);
  c.in_chans(o.in_channels).num_classes(o.num_classes).drop_path_rate(o.drop_path_rate);
  c.layer_scale_init(o.layer_scale_init).stem_stride(o.stem_stride ? o.stem_stride : p.stem_stride);
  return c;
}

absl::StatusOr<ResNetOptions> ResNetConfig(const std::string& name, const ModelOptions& o) {
  ResNetOptions r = name == "resnet18"   ? ResNetOptions({2, 2, 2, 2}, false)
                    : name == "resnet34" ? ResNetOptions({3, 4, 6, 3}, false)
                                         : ResNetOptions({3, 4, 6, 3}, true);
  ASSIGN_OR_RETURN(std::vector<int64_t> widths, Widths(name, o, r.widths()));
  r.widths(widths).in_chans(o.in_channels).num_classes(o.num_classes);
  r.stem_stride(o.stem_stride ? o.stem_stride : 4).drop_path_rate(o.drop_path_rate);
  r.blur_pool(o.blur_pool).conv_head(o.conv_head);
  return r;
}

ViTOptions ViTConfig(const ModelOptions& o) {
  ViTOptions v;
  v.image_size(o.image_size).in_chans(o.in_channels).num_classes(o.num_classes);
  v.drop_path_rate(o.drop_path_rate);
  return v;
}

bool IsResNet(const std::string& n) { return n == "resnet18" || n == "resnet34" || n == "resnet50"; }

absl::Status CheckKnown(const std::string& name) {
  for (const std::string& n : ModelNames()) {
    if (n == name) return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("unknown model '", name, "'; known: ", absl::StrJoin(ModelNames(), ", ")));
}

absl::StatusOr<std::shared_ptr<Model>> Build(const std::string& name, const ModelOptions& o) {
  if (ConvNeXtPresets().count(name)) {
    ASSIGN_OR_RETURN(ConvNeXtOptions c, ConvNeXtConfig(name, o));
    return std::shared_ptr<Model>(std::make_shared<ConvNeXt>(c));
  }
  if (IsResNet(name)) {
    ASSIGN_OR_RETURN(ResNetOptions r, ResNetConfig(name, o));
    return std::shared_ptr<Model>(std::make_shared<ResNet>(r));
  }
  if (name == "simple_cnn") {
    return std::shared_ptr<Model>(std::make_shared<SimpleCnn>(o.in_channels, o.image_size, o.num_classes));
  }
  if (o.image_size % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": image_size must be a multiple of the patch size 4, got ", o.image_size));
  }
  return std::shared_ptr<Model>(std::make_shared<ViT>(ViTConfig(o)));
}

}  // namespace

std::vector<std::string> ModelNames() {
  return {"convnext_tiny", "convnext_small", "convnext_base",  "convnext_large",
          "convnext_xlarge", "convforever", "convnext_nano_fmnist", "convnext_pico_fmnist", "resnet18",
          "resnet34", "resnet50", "simple_cnn", "vit_tiny_32"};
}

ModelOptions DefaultOptions(const std::string& name) {
  ModelOptions o;
  if (name == "simple_cnn" || name == "convnext_nano_fmnist" || name == "convnext_pico_fmnist") {
    o.num_classes = 10;
    o.in_channels = 1;
    o.image_size = 28;
  } else if (name == "vit_tiny_32") {
    o.num_classes = 100;
    o.image_size = 32;
  } else if (name == "convforever") {
    o.depth = 12;
  }
  return o;
}

absl::StatusOr<std::shared_ptr<Model>> CreateModel(const std::string& name, const ModelOptions& o) {
  RETURN_IF_ERROR(CheckKnown(name));
  RETURN_IF_ERROR(ValidateCommon(name, o));
  try {
    ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Build(name, o));
    model->SetGradientCheckpointing(o.gradient_checkpointing);
    model->set_registry_name(name);
    return model;
  } catch (const std::exception& e) {
    // c10::Error from a shape LibTorch refuses (e.g. an image too small for the stem).
    return absl::InvalidArgumentError(absl::StrCat(name, ": cannot build: ", e.what()));
  }
}

int64_t CountParameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const at::Tensor& p : module.parameters(/*recurse=*/true)) n += p.numel();
  return n;
}

absl::StatusOr<double> ForwardFlops(const std::string& name, const ModelOptions& o, int64_t image_size) {
  RETURN_IF_ERROR(CheckKnown(name));
  RETURN_IF_ERROR(ValidateCommon(name, o));
  if (image_size < 1) return absl::InvalidArgumentError(absl::StrCat("image_size must be >= 1, got ", image_size));
  if (ConvNeXtPresets().count(name)) {
    ASSIGN_OR_RETURN(ConvNeXtOptions c, ConvNeXtConfig(name, o));
    return ConvNeXtMacs(c, image_size);
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Model> model, CreateModel(name, o));
  return model->ForwardMacs(image_size);
}

std::vector<ModelInfo> ListModels() {
  std::vector<ModelInfo> out;
  for (const std::string& name : ModelNames()) {
    ModelOptions o = DefaultOptions(name);
    ModelInfo info;
    info.name = name;
    info.native_size = o.image_size;
    if (ConvNeXtPresets().count(name)) {
      ConvNeXtOptions c = ConvNeXtConfig(name, o).value();
      info.description = ConvNeXtPresets().at(name).description;
      info.params = ConvNeXtParameterCount(c);
      info.gmacs_native = ConvNeXtMacs(c, o.image_size) / 1e9;
      info.gmacs_224 = ConvNeXtMacs(c, 224) / 1e9;
    } else {
      std::shared_ptr<Model> model = CreateModel(name, o).value();
      info.description = IsResNet(name) ? "ResNet v1.5 (He et al. 2016)"
                         : name == "simple_cnn" ? "basic CNN (2 conv + 2 FC)"
                                                : "ViT-Tiny, patch 4 (Dosovitskiy et al. 2021)";
      info.params = CountParameters(*model);
      info.gmacs_native = model->ForwardMacs(o.image_size) / 1e9;
      info.gmacs_224 = name == "simple_cnn" ? 0.0 : model->ForwardMacs(224) / 1e9;
    }
    out.push_back(info);
  }
  return out;
}

}  // namespace cf::models
