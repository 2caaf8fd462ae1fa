// The `models export` / `models forward` subcommands: the files interop checks hand to timm,
// torchvision and transformers (tools/interop/), and our logits on files those libraries wrote.
//
// Export builds a registry entry with its default options, gives it deterministic non-trivial
// weights from `seed` (norm scales, layer scales and BatchNorm statistics away from their
// identity init, so a swapped or misnamed tensor changes the logits), and writes into `out_dir`:
//   model.safetensors  the weights under `format`'s names
//   config.json        timm's or transformers' config (not for torchvision, which has none)
//   input.safetensors  "input"  [batch, C, S, S] float32, standard normal from `seed`
//   logits.safetensors "logits" [batch, num_classes] float32, our eval-mode forward of "input"
// Forward loads any layout strictly (see export.h LoadModelWeights; safetensors or torch.save,
// see state_dict_file.h) and writes our eval-mode logits of the file's "input".
#ifndef CONVFOREVER_MODELS_INTEROP_H_
#define CONVFOREVER_MODELS_INTEROP_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "convforever/models/name_map.h"

namespace cf::models {

struct ExportOptions {
  std::string model;                 // registry name
  std::string out_dir;
  WeightFormat format = WeightFormat::kTimm;
  uint64_t seed = 0;
  int64_t image_size = 0;            // 0 = the entry's native size
  int64_t batch = 2;
};

struct ForwardOptions {
  std::string model;                 // registry name
  int64_t num_classes = 0;           // 0 = the entry's default
  int64_t in_chans = 0;              // 0 = the entry's default
  int64_t image_size = 0;            // 0 = the entry's native size (ViT's patch grid)
  double layer_scale_init = -1;      // ConvNeXt: 0 = no layer scale; < 0 = the entry's default
  std::string weights;               // file or directory (see state_dict_file.h)
  std::string input;                 // safetensors file with "input" [B, C, H, W]
  std::string out;                   // safetensors file to write with "logits" [B, N]
};

absl::Status ExportForInterop(const ExportOptions& options);
absl::Status ForwardForInterop(const ForwardOptions& options);

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_INTEROP_H_
