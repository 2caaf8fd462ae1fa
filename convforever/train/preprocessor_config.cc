#include "convforever/train/preprocessor_config.h"

#include <vector>

#include "convforever/data/transforms.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

// Data kinds whose every image already has the training size (no resize in EvalTransform).
bool FixedSizeData(const std::string& kind) {
  return kind == "fashion_mnist" || kind == "idx" || kind == "cifar10" || kind == "cifar100" ||
         kind == "synthetic";
}

}  // namespace

std::string PreprocessorConfigJson(const TrainerOptions& options, int channels) {
  data::TransformOptions t;  // the loader's defaults: bilinear, the standard mean/std
  std::vector<float> mean, std;
  data::ResolveNormalization(t, channels, &mean, &std);
  nlohmann::ordered_json j;
  j["image_processor_type"] = "ConvNextImageProcessor";
  j["do_resize"] = true;
  j["size"] = {{"shortest_edge", options.image_size}};
  j["crop_pct"] = FixedSizeData(options.data) ? 1.0 : options.crop_pct;
  j["resample"] = t.interpolation == "bicubic" ? 3 : 2;  // PIL.Image.BICUBIC / BILINEAR
  j["do_rescale"] = true;
  j["rescale_factor"] = 1.0 / 255.0;
  j["do_normalize"] = true;
  j["image_mean"] = mean;
  j["image_std"] = std;
  return j.dump(2) + "\n";
}

}  // namespace cf::train
