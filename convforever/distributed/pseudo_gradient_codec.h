// Wire formats of DiLoCo's pseudo-gradients (diloco.h): what one rank puts on the wire for a
// flat fp32 delta [N], and what every rank decodes back to fp32.
//
//   fp32  the delta itself ([N] float32, all-reduced by sum).
//   bf16  the delta rounded to bfloat16 ([N] bfloat16, all-reduced by sum in bfloat16).
//   int8  chunks of `chunk` elements, each with one fp32 scale = max|x| / 127 and values
//         round(x / scale) in [-127, 127] (the int8 format of OpenDiLoCo / INTELLECT-1's
//         pseudo-gradients). Ranks have different scales and an int8 sum would overflow, so int8
//         is all-gathered, never summed: the wire tensor is uint8 [Int8WireBytes(N, chunk)], the
//         scales' bytes first (fp32 [C], C = ceil(N / chunk)) then the values (int8 [C * chunk],
//         the last chunk zero-padded).
// Error feedback (Seide et al. 2014; Karimireddy et al. 2019, "Error Feedback Fixes SignSGD"):
// the part of (delta + residual) the lossy format drops becomes the next round's residual, so
// over many rounds the decoded sum tracks the true sum of deltas within one round's error.
// Pure functions on tensors of one device; no communication. Thread-compatible.
#ifndef CONVFOREVER_DISTRIBUTED_PSEUDO_GRADIENT_CODEC_H_
#define CONVFOREVER_DISTRIBUTED_PSEUDO_GRADIENT_CODEC_H_

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cf::distributed {

enum class WireDtype { kFp32, kBf16, kInt8 };

// "fp32" | "bf16" | "int8"; anything else is an error naming the value.
absl::StatusOr<WireDtype> ParseWireDtype(absl::string_view name);
const char* WireDtypeName(WireDtype dtype);
inline bool IsLossy(WireDtype dtype) { return dtype != WireDtype::kFp32; }

struct Int8Chunks {
  at::Tensor scales;  // [C] float32, max|x| / 127 per chunk (0 for an all-zero chunk)
  at::Tensor values;  // [C * chunk] int8
};

// x: [N] float32 -> chunks; chunk >= 1. |x - Dequantize(Quantize(x))| <= scale / 2 elementwise.
Int8Chunks QuantizeInt8(const at::Tensor& x, int64_t chunk);
// -> [numel] float32.
at::Tensor DequantizeInt8(const Int8Chunks& q, int64_t numel);

// Bytes of one rank's int8 wire tensor for `numel` elements.
int64_t Int8WireBytes(int64_t numel, int64_t chunk);
at::Tensor PackInt8(const Int8Chunks& q);                      // -> uint8 [Int8WireBytes]
Int8Chunks UnpackInt8(const at::Tensor& wire, int64_t numel, int64_t chunk);

// The wire tensor of `delta` ([N] float32) in `dtype`. For the lossy formats with a `residual`
// ([N] float32, updated in place): encodes delta + residual and leaves in `residual` what the
// encoding lost. `residual` may be null (fp32, or no error feedback).
at::Tensor EncodePseudoGradient(WireDtype dtype, const at::Tensor& delta, at::Tensor* residual,
                                int64_t chunk);
// One rank's wire tensor back to [numel] float32.
at::Tensor DecodePseudoGradient(WireDtype dtype, const at::Tensor& wire, int64_t numel, int64_t chunk);

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_PSEUDO_GRADIENT_CODEC_H_
