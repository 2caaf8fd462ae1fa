#include "convforever/models/name_map.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace cf::models {
namespace {

absl::Status Unknown(const std::string& name, WeightFormat f) {
  return absl::InvalidArgumentError(absl::StrCat("no ", WeightFormatName(f), " name for ConvNeXt parameter '", name, "'"));
}

// Everything after the first `skip` dot-separated parts.
std::string Tail(const std::vector<std::string>& parts, size_t skip) {
  return absl::StrJoin(parts.begin() + std::min(skip, parts.size()), parts.end(), ".");
}

absl::StatusOr<std::string> ConvNeXtBlockPart(const std::string& part, const std::string& rest,
                                              WeightFormat f) {
  const bool tv = f == WeightFormat::kTorchvision;
  if (part == "conv_dw") return absl::StrCat(tv ? "block.0." : "dwconv.", rest);
  if (part == "norm") return absl::StrCat(tv ? "block.2." : "layernorm.", rest);
  if (part == "mlp" && absl::StartsWith(rest, "fc1.")) return absl::StrCat(tv ? "block.3." : "pwconv1.", rest.substr(4));
  if (part == "mlp" && absl::StartsWith(rest, "fc2.")) return absl::StrCat(tv ? "block.5." : "pwconv2.", rest.substr(4));
  if (part == "gamma" && rest.empty()) return std::string(tv ? "layer_scale" : "layer_scale_parameter");
  return absl::InvalidArgumentError(part);
}

absl::StatusOr<std::string> MapConvNeXt(const std::string& name, WeightFormat f) {
  const bool tv = f == WeightFormat::kTorchvision;
  std::vector<std::string> p = absl::StrSplit(name, '.');
  if (p.size() >= 3 && p[0] == "stem" && (p[1] == "0" || p[1] == "1")) {
    if (tv) return absl::StrCat("features.0.", p[1], ".", Tail(p, 2));
    return absl::StrCat(p[1] == "0" ? "convnext.embeddings.patch_embeddings." : "convnext.embeddings.layernorm.", Tail(p, 2));
  }
  if (p.size() >= 3 && p[0] == "head" && (p[1] == "norm" || p[1] == "fc")) {
    if (tv) return absl::StrCat(p[1] == "norm" ? "classifier.0." : "classifier.2.", Tail(p, 2));
    return absl::StrCat(p[1] == "norm" ? "convnext.layernorm." : "classifier.", Tail(p, 2));
  }
  int stage = 0, block = 0;
  if (p.size() >= 5 && p[0] == "stages" && absl::SimpleAtoi(p[1], &stage) && p[2] == "downsample") {
    if (tv) return absl::StrCat("features.", 2 * stage, ".", Tail(p, 3));
    return absl::StrCat("convnext.encoder.stages.", stage, ".downsampling_layer.", Tail(p, 3));
  }
  if (p.size() >= 5 && p[0] == "stages" && absl::SimpleAtoi(p[1], &stage) && p[2] == "blocks" &&
      absl::SimpleAtoi(p[3], &block)) {
    auto part = ConvNeXtBlockPart(p[4], Tail(p, 5), f);
    if (!part.ok()) return Unknown(name, f);
    if (tv) return absl::StrCat("features.", 2 * stage + 1, ".", block, ".", *part);
    return absl::StrCat("convnext.encoder.stages.", stage, ".layers.", block, ".", *part);
  }
  return Unknown(name, f);
}

}  // namespace

const char* WeightFormatName(WeightFormat format) {
  switch (format) {
    case WeightFormat::kTimm: return "timm";
    case WeightFormat::kTransformers: return "transformers";
    case WeightFormat::kTorchvision: return "torchvision";
  }
  return "?";
}

absl::StatusOr<WeightFormat> ParseWeightFormat(const std::string& name) {
  if (name == "timm") return WeightFormat::kTimm;
  if (name == "transformers") return WeightFormat::kTransformers;
  if (name == "torchvision") return WeightFormat::kTorchvision;
  return absl::InvalidArgumentError(absl::StrCat("unknown weight format '", name, "' (timm, transformers, torchvision)"));
}

absl::StatusOr<std::string> MapName(const std::string& family, const std::string& timm_name,
                                    WeightFormat format) {
  if (format == WeightFormat::kTimm) return timm_name;
  if (family == "convnext") return MapConvNeXt(timm_name, format);
  if (family == "resnet" && format == WeightFormat::kTorchvision) return timm_name;
  return absl::UnimplementedError(absl::StrCat("no ", WeightFormatName(format), " layout for the '", family,
                                               "' family (only timm names; transformers/torchvision maps cover ConvNeXt",
                                               family == "resnet" ? "" : " and torchvision ResNet", ")"));
}

}  // namespace cf::models
