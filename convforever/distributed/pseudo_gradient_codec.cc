#include "convforever/distributed/pseudo_gradient_codec.h"

#include "absl/strings/str_cat.h"

namespace cf::distributed {
namespace {

int64_t NumChunks(int64_t numel, int64_t chunk) { return (numel + chunk - 1) / chunk; }

}  // namespace

absl::StatusOr<WireDtype> ParseWireDtype(absl::string_view name) {
  if (name == "fp32") return WireDtype::kFp32;
  if (name == "bf16") return WireDtype::kBf16;
  if (name == "int8") return WireDtype::kInt8;
  return absl::InvalidArgumentError(
      absl::StrCat("pseudo-gradient dtype '", name, "' is not one of fp32|bf16|int8"));
}

const char* WireDtypeName(WireDtype dtype) {
  switch (dtype) {
    case WireDtype::kFp32: return "fp32";
    case WireDtype::kBf16: return "bf16";
    case WireDtype::kInt8: return "int8";
  }
  return "?";
}

Int8Chunks QuantizeInt8(const at::Tensor& x, int64_t chunk) {
  TORCH_CHECK(chunk >= 1 && x.dim() == 1 && x.scalar_type() == at::kFloat, "QuantizeInt8: bad input");
  const int64_t n = x.numel();
  const int64_t c = NumChunks(n, chunk);
  at::Tensor padded = at::zeros({c * chunk}, x.options());
  padded.narrow(0, 0, n).copy_(x);
  at::Tensor rows = padded.view({c, chunk});
  Int8Chunks q;
  q.scales = std::get<0>(rows.abs().max(/*dim=*/1)) / 127.0;  // [C]
  // An all-zero chunk has scale 0 and values 0 (no division by zero).
  at::Tensor inv = at::where(q.scales > 0, q.scales.reciprocal(), at::zeros_like(q.scales));
  q.values = (rows * inv.unsqueeze(1)).round().clamp(-127, 127).to(at::kChar).view({c * chunk});
  return q;
}

at::Tensor DequantizeInt8(const Int8Chunks& q, int64_t numel) {
  const int64_t c = q.scales.numel();
  at::Tensor rows = q.values.to(at::kFloat).view({c, -1}) * q.scales.unsqueeze(1);
  return rows.view({-1}).narrow(0, 0, numel).contiguous();
}

int64_t Int8WireBytes(int64_t numel, int64_t chunk) {
  const int64_t c = NumChunks(numel, chunk);
  return c * static_cast<int64_t>(sizeof(float)) + c * chunk;
}

at::Tensor PackInt8(const Int8Chunks& q) {
  return at::cat({q.scales.contiguous().view(at::kByte), q.values.view(at::kByte)});
}

Int8Chunks UnpackInt8(const at::Tensor& wire, int64_t numel, int64_t chunk) {
  const int64_t c = NumChunks(numel, chunk);
  TORCH_CHECK(wire.numel() == Int8WireBytes(numel, chunk), "UnpackInt8: wrong wire size");
  Int8Chunks q;
  // clone(): a slice of a gathered buffer may start at an offset a float view cannot take.
  q.scales = wire.narrow(0, 0, c * 4).clone().view(at::kFloat);
  q.values = wire.narrow(0, c * 4, c * chunk).clone().view(at::kChar);
  return q;
}

at::Tensor EncodePseudoGradient(WireDtype dtype, const at::Tensor& delta, at::Tensor* residual,
                                int64_t chunk) {
  if (dtype == WireDtype::kFp32) return delta.clone();
  at::Tensor x = residual != nullptr ? delta + *residual : delta;
  at::Tensor wire;
  at::Tensor decoded;
  if (dtype == WireDtype::kBf16) {
    wire = x.to(at::kBFloat16);
    decoded = wire.to(at::kFloat);
  } else {
    Int8Chunks q = QuantizeInt8(x, chunk);
    decoded = DequantizeInt8(q, x.numel());
    wire = PackInt8(q);
  }
  if (residual != nullptr) residual->copy_(x - decoded);
  return wire;
}

at::Tensor DecodePseudoGradient(WireDtype dtype, const at::Tensor& wire, int64_t numel, int64_t chunk) {
  switch (dtype) {
    case WireDtype::kFp32: return wire.to(at::kFloat);
    case WireDtype::kBf16: return wire.to(at::kFloat);
    case WireDtype::kInt8: return DequantizeInt8(UnpackInt8(wire, numel, chunk), numel);
  }
  return at::Tensor();
}

}  // namespace cf::distributed
