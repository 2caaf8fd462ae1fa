// Parameter groups for the optimizers, built the way timm does it
// (timm.optim.optim_factory.param_groups_weight_decay / param_groups_layer_decay):
//  * no weight decay for 1-D parameters (norm weights and biases, layer-scale gamma), for names
//    ending in ".bias", and for names listed in `no_decay_names`;
//  * optional layer-wise learning-rate decay (BEiT, Bao et al. 2021; used by ConvNeXt fine-tuning,
//    Liu et al. 2022) over timm ConvNeXt names: `stem.*` is layer 0, `stages.i.blocks.j.*` is
//    layer 1 + (index of the block counting across stages), `stages.i.downsample.*` shares the
//    layer of its stage's first block, anything else (`head.*`, `norm_pre.*`) is the top layer
//    L = (number of blocks) + 1. A parameter at layer l gets lr_scale = layer_decay^(L - l).
// Tensors are shared (at::Tensor handles), not copied: the groups alias the model's parameters.
// Pure function; thread-compatible.
#ifndef CONVFOREVER_OPTIM_PARAM_GROUPS_H_
#define CONVFOREVER_OPTIM_PARAM_GROUPS_H_

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace cf::optim {

struct ParamGroup {
  std::vector<std::string> names;  // same length as params (may be empty: then named g<i>.p<j>)
  std::vector<at::Tensor> params;
  double weight_decay = 0.0;
  double lr_scale = 1.0;  // multiplies the step's lr (layer-wise decay)
};

struct ParamGroupOptions {
  double weight_decay = 0.05;
  std::vector<std::string> no_decay_names;  // exact names that get no weight decay
  bool decay_1d = false;                    // true: 1-D params and biases are decayed too
  double layer_decay = 1.0;                 // 1.0 = off; e.g. 0.8 for ConvNeXt fine-tuning
};

// Layer id of a timm ConvNeXt parameter name as described above; `block_offsets[i]` is the number
// of blocks before stage i, `num_blocks` their total.
int ConvNextLayerId(const std::string& name, const std::vector<int>& block_offsets, int num_blocks);

// Groups `named_params` (model order kept inside each group). Parameters that do not require grad
// are left out. Groups: one per (layer, decay / no decay), ordered by layer then decay first;
// empty groups are not emitted.
std::vector<ParamGroup> MakeParamGroups(
    const std::vector<std::pair<std::string, at::Tensor>>& named_params,
    const ParamGroupOptions& options);

}  // namespace cf::optim

#endif  // CONVFOREVER_OPTIM_PARAM_GROUPS_H_
