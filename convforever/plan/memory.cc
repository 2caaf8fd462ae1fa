#include "convforever/plan/memory.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace cf::plan {
namespace {

// Bytes of the activations autocast runs in (matmul/conv inputs) and of fp32 ones (norms).
double LowBytes(const ActivationOptions& o) { return o.precision == "fp32" ? 4.0 : 2.0; }

// Saved bytes of one block at `positions` x `c` (the table in memory.h).
double BlockBytes(double positions, double c, bool layer_scale, const ActivationOptions& o) {
  const double low = LowBytes(o), nc = positions * c;
  double bytes = low * nc        // depthwise conv input
                 + 4.0 * nc      // LayerNorm input (fp32)
                 + 8.0 * positions  // mean + rstd
                 + low * nc      // fc1 input
                 + low * 4 * nc  // GELU input
                 + low * 4 * nc; // fc2 input
  if (layer_scale) bytes += low * nc;
  return bytes;
}

struct StageBytes {
  double input = 0;    // the stage's input tensor (what checkpointing keeps), fp32
  double saved = 0;    // everything the stage saves when run with grad (downsample + blocks)
  double transient = 0;
};

std::vector<StageBytes> Stages(const ConvNeXtShape& s, const ActivationOptions& o) {
  std::vector<StageBytes> out;
  const double b = static_cast<double>(o.batch);
  int64_t r = o.image_size / s.stem_stride;
  for (size_t i = 0; i < s.depths.size(); ++i) {
    StageBytes st;
    const double c = static_cast<double>(s.dims[i]);
    if (i > 0) {
      const double prev = b * r * r, cp = static_cast<double>(s.dims[i - 1]);
      st.input = 4.0 * prev * cp;
      // downsample: LayerNorm2d input + stats, then the 2x2 conv's input (the norm's output).
      st.saved += 4.0 * prev * cp + 8.0 * prev + LowBytes(o) * prev * cp;
      r /= 2;
    } else {
      st.input = 4.0 * b * r * r * c;
    }
    const double positions = b * r * r;
    st.saved += static_cast<double>(s.depths[i]) * BlockBytes(positions, c, s.layer_scale, o);
    st.transient = 2.0 * LowBytes(o) * 4.0 * positions * c;
    out.push_back(st);
  }
  return out;
}

double StemBytes(const ConvNeXtShape& s, const ActivationOptions& o) {
  const double b = static_cast<double>(o.batch);
  const double image = 4.0 * b * s.in_chans * o.image_size * o.image_size;
  const int64_t r = o.image_size / s.stem_stride;
  const double positions = b * r * r;
  // The conv's input: the image itself (fp32) or autocast's copy of it in addition.
  const double conv_input = o.precision == "fp32" ? 0.0 : 2.0 * b * s.in_chans * o.image_size * o.image_size;
  return image + conv_input + 4.0 * positions * s.dims[0] + 8.0 * positions;
}

double HeadBytes(const ConvNeXtShape& s, const ActivationOptions& o) {
  // pooled [B, C] (norm input, stats, fc input) and the logits: small.
  const double b = static_cast<double>(o.batch), c = static_cast<double>(s.dims.back());
  return b * (3.0 * 4.0 * c + 8.0 + 2.0 * 4.0 * s.num_classes);
}

}  // namespace

double ConvNeXtSavedBytes(const ConvNeXtShape& shape, const ActivationOptions& options) {
  double bytes = StemBytes(shape, options) + HeadBytes(shape, options);
  for (const StageBytes& st : Stages(shape, options)) {
    bytes += options.gradient_checkpointing ? st.input : st.saved;
  }
  return bytes;
}

double ConvNeXtPeakActivationBytes(const ConvNeXtShape& shape, const ActivationOptions& options) {
  const std::vector<StageBytes> stages = Stages(shape, options);
  if (stages.empty()) return 0;
  double peak = ConvNeXtSavedBytes(shape, options);
  if (options.gradient_checkpointing) {
    double recompute = 0;
    for (const StageBytes& st : stages) recompute = std::max(recompute, st.saved + st.transient);
    return peak + recompute;
  }
  return peak + stages.back().transient;
}

absl::StatusOr<double> OptimizerStateBytes(const std::string& optimizer, int64_t params,
                                           double momentum) {
  const double p = static_cast<double>(params);
  if (optimizer == "adamw" || optimizer == "lamb") return 8.0 * p;
  if (optimizer == "lion") return 4.0 * p;
  if (optimizer == "sgd") return momentum != 0.0 ? 4.0 * p : 0.0;
  return absl::InvalidArgumentError(
      absl::StrCat("optimizer '", optimizer, "': the memory model knows adamw, lamb, sgd, lion"));
}

absl::StatusOr<MemoryResult> EstimateMemory(const MemoryInput& in) {
  MemoryResult m;
  const double p = static_cast<double>(in.params);
  m.weights = 4.0 * p;
  m.gradients = 4.0 * p;
  m.ema = in.ema ? 4.0 * p : 0.0;
  auto state = OptimizerStateBytes(in.optimizer, in.params, in.momentum);
  if (!state.ok()) return state.status();
  m.optimizer_state = *state;
  if (in.world_size > 1 && in.zero_stage > 0) {
    const double n = static_cast<double>(in.world_size);
    m.optimizer_state = in.zero_offload ? 0.0 : *state / n;
    m.master = in.zero_offload ? 0.0 : 4.0 * p / n;
  }
  m.activations = in.activation_bytes;
  m.total = m.weights + m.gradients + m.optimizer_state + m.master + m.ema + m.activations;
  return m;
}

bool FitsInMemory(double total_bytes, double memory_gb) {
  return total_bytes <= memory_gb * 1e9 * kUsableMemoryFraction;
}

}  // namespace cf::plan
