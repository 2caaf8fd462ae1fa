#include "convforever/optim/param_groups.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace cf::optim {
namespace {

// "stages.<i>.<rest>" -> i and the remaining fields, or -1.
int StageOf(const std::vector<std::string>& parts) {
  int stage = -1;
  if (parts.size() >= 2 && parts[0] == "stages" && absl::SimpleAtoi(parts[1], &stage)) return stage;
  return -1;
}

}  // namespace

int ConvNextLayerId(const std::string& name, const std::vector<int>& block_offsets,
                    int num_blocks) {
  const int top = num_blocks + 1;
  if (absl::StartsWith(name, "stem.") || name == "stem") return 0;
  std::vector<std::string> parts = absl::StrSplit(name, '.');
  const int stage = StageOf(parts);
  if (stage < 0 || stage >= static_cast<int>(block_offsets.size())) return top;
  int block = 0;
  if (parts.size() >= 4 && parts[2] == "blocks" && absl::SimpleAtoi(parts[3], &block)) {
    return 1 + block_offsets[stage] + block;
  }
  return 1 + block_offsets[stage];  // downsample (and anything else in the stage)
}

std::vector<ParamGroup> MakeParamGroups(
    const std::vector<std::pair<std::string, at::Tensor>>& named_params,
    const ParamGroupOptions& options) {
  // Blocks per stage, from the names themselves (the models package is not a dependency).
  std::map<int, int> blocks_in_stage;
  for (const auto& [name, _] : named_params) {
    std::vector<std::string> parts = absl::StrSplit(name, '.');
    const int stage = StageOf(parts);
    int block = 0;
    if (stage >= 0 && parts.size() >= 4 && parts[2] == "blocks" &&
        absl::SimpleAtoi(parts[3], &block)) {
      blocks_in_stage[stage] = std::max(blocks_in_stage[stage], block + 1);
    }
  }
  const int num_stages = blocks_in_stage.empty() ? 0 : blocks_in_stage.rbegin()->first + 1;
  std::vector<int> offsets(num_stages, 0);
  int total = 0;
  for (int s = 0; s < num_stages; ++s) {
    offsets[s] = total;
    total += blocks_in_stage.count(s) ? blocks_in_stage[s] : 0;
  }
  const bool layered = options.layer_decay != 1.0;

  // key: (layer, no_decay) -> group
  std::map<std::pair<int, bool>, ParamGroup> groups;
  for (const auto& [name, p] : named_params) {
    if (!p.requires_grad()) continue;
    const bool no_decay =
        (!options.decay_1d && (p.dim() <= 1 || absl::EndsWith(name, ".bias"))) ||
        std::find(options.no_decay_names.begin(), options.no_decay_names.end(), name) !=
            options.no_decay_names.end();
    const int layer = layered ? ConvNextLayerId(name, offsets, total) : 0;
    ParamGroup& g = groups[{layer, no_decay}];
    if (g.params.empty()) {
      g.weight_decay = no_decay ? 0.0 : options.weight_decay;
      g.lr_scale = layered ? std::pow(options.layer_decay, total + 1 - layer) : 1.0;
    }
    g.names.push_back(name);
    g.params.push_back(p);
  }
  std::vector<ParamGroup> out;
  out.reserve(groups.size());
  for (auto& [key, g] : groups) out.push_back(std::move(g));
  return out;
}

}  // namespace cf::optim
