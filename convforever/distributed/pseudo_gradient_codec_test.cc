// The pseudo-gradient wire formats: int8 round-trip error within half a chunk's scale, the wire
// layout's size, error feedback keeping the decoded running sum near the true one, bf16.
#include "convforever/distributed/pseudo_gradient_codec.h"

#include <ATen/ATen.h>

#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

TEST(PseudoGradientCodec, Int8RoundTripWithinHalfAScalePerChunk) {
  at::manual_seed(1);
  const int64_t chunk = 64;
  // Chunks of very different magnitudes, a zero chunk, and a partial last chunk.
  at::Tensor x = at::randn({5 * chunk + 17});
  x.narrow(0, 0, chunk).mul_(1e-4);
  x.narrow(0, chunk, chunk).mul_(100);
  x.narrow(0, 2 * chunk, chunk).zero_();
  Int8Chunks q = QuantizeInt8(x, chunk);
  ASSERT_EQ(q.scales.numel(), 6);
  at::Tensor back = DequantizeInt8(q, x.numel());
  ASSERT_EQ(back.numel(), x.numel());
  for (int64_t c = 0; c < 6; ++c) {
    const int64_t n = std::min(chunk, x.numel() - c * chunk);
    at::Tensor xs = x.narrow(0, c * chunk, n);
    const double scale = xs.abs().max().item<double>() / 127;
    EXPECT_NEAR(q.scales[c].item<double>(), scale, 1e-6 * scale + 1e-30) << "chunk " << c;
    const double err = (back.narrow(0, c * chunk, n) - xs).abs().max().item<double>();
    EXPECT_LE(err, scale / 2 * (1 + 1e-5) + 1e-30) << "chunk " << c;
  }
  EXPECT_EQ(back.narrow(0, 2 * chunk, chunk).abs().max().item<float>(), 0.0f);
  // The largest element of each chunk is exact up to float rounding (it maps to +-127).
  EXPECT_NEAR(back.narrow(0, chunk, chunk).abs().max().item<double>(),
              x.narrow(0, chunk, chunk).abs().max().item<double>(), 1e-4);
}

TEST(PseudoGradientCodec, Int8WireIsScalesThenValuesAndUnpacks) {
  at::Tensor x = at::randn({1000});
  const int64_t chunk = 256;
  at::Tensor wire = EncodePseudoGradient(WireDtype::kInt8, x, nullptr, chunk);
  EXPECT_EQ(wire.scalar_type(), at::kByte);
  EXPECT_EQ(wire.numel(), Int8WireBytes(1000, chunk));
  EXPECT_EQ(Int8WireBytes(1000, chunk), 4 * 4 + 4 * 256);  // 4 chunks: 4 scales + padded values
  // A copy at an odd offset (as in a gathered buffer) decodes the same.
  at::Tensor shifted = at::zeros({wire.numel() + 3}, wire.options());
  shifted.narrow(0, 3, wire.numel()).copy_(wire);
  at::Tensor a = DecodePseudoGradient(WireDtype::kInt8, wire, 1000, chunk);
  at::Tensor b = DecodePseudoGradient(WireDtype::kInt8, shifted.narrow(0, 3, wire.numel()), 1000, chunk);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_TRUE(at::equal(a, DequantizeInt8(QuantizeInt8(x, chunk), 1000)));
}

// Rounds of small deltas: without feedback int8 loses the part below each chunk's resolution every
// round and the error of the sum grows with the rounds; with feedback the decoded running sum stays
// within one round's quantisation error of the true sum, and the residual stays bounded.
TEST(PseudoGradientCodec, ErrorFeedbackTracksTheRunningSum) {
  at::manual_seed(2);
  const int64_t n = 512, chunk = 128, rounds = 200;
  // One large element per chunk makes the scale coarse for the rest of the chunk, and a constant
  // bias below half a step that plain rounding drops every round.
  at::Tensor bias = at::full({n}, 0.003);
  for (int64_t c = 0; c < n / chunk; ++c) bias[c * chunk] = 1.0;
  at::Tensor residual = at::zeros({n});
  at::Tensor true_sum = at::zeros({n}), fed_sum = at::zeros({n}), plain_sum = at::zeros({n});
  double max_residual = 0;
  for (int64_t r = 0; r < rounds; ++r) {
    at::Tensor delta = bias + 1e-3 * at::randn({n});
    true_sum += delta;
    at::Tensor fed = EncodePseudoGradient(WireDtype::kInt8, delta, &residual, chunk);
    fed_sum += DecodePseudoGradient(WireDtype::kInt8, fed, n, chunk);
    at::Tensor plain = EncodePseudoGradient(WireDtype::kInt8, delta, nullptr, chunk);
    plain_sum += DecodePseudoGradient(WireDtype::kInt8, plain, n, chunk);
    max_residual = std::max(max_residual, residual.abs().max().item<double>());
  }
  const double step = 1.0 / 127;  // the quantisation step of a chunk whose max is ~1
  // The residual is at most half a step plus float noise, whatever the round count.
  EXPECT_LE(max_residual, 0.5 * step * 1.05);
  // The fed sum differs from the true one by exactly the final residual.
  EXPECT_LT((true_sum - fed_sum - residual).abs().max().item<double>(), 1e-3);
  EXPECT_LE((true_sum - fed_sum).abs().max().item<double>(), 0.5 * step * 1.05);
  // Plain rounding drifts by ~rounds x 0.003 on the biased elements.
  EXPECT_GT((true_sum - plain_sum).abs().max().item<double>(), 0.3);
}

TEST(PseudoGradientCodec, Bf16RoundsAndFeedsBack) {
  // bf16 has 8 significant bits: the spacing at 1 is 2^-7, so 1 + 2^-9 rounds to 1.
  at::Tensor x = at::tensor({1.0f, 1.0f + 1.0f / 512, -3.14159f, 1e-3f});
  at::Tensor residual = at::zeros({4});
  at::Tensor wire = EncodePseudoGradient(WireDtype::kBf16, x, &residual, 4096);
  EXPECT_EQ(wire.scalar_type(), at::kBFloat16);
  at::Tensor back = DecodePseudoGradient(WireDtype::kBf16, wire, 4, 4096);
  EXPECT_TRUE(at::allclose(back, x, /*rtol=*/1.0 / 256, /*atol=*/0));
  EXPECT_EQ(back[1].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(residual[1].item<float>(), 1.0f / 512);
  // Rounds of the same delta: the decoded sum equals the true sum minus the last residual, and
  // the residual stays within half a spacing, so the lost 2^-9 per round is carried, not dropped.
  at::Tensor decoded_sum = back.clone();
  for (int r = 2; r <= 16; ++r) {
    decoded_sum += DecodePseudoGradient(
        WireDtype::kBf16, EncodePseudoGradient(WireDtype::kBf16, x, &residual, 4096), 4, 4096);
    EXPECT_LE(residual[1].abs().item<float>(), 1.0f / 256) << "round " << r;
  }
  EXPECT_TRUE(at::allclose(decoded_sum + residual, 16 * x, 0, 1e-5));
  EXPECT_FLOAT_EQ(decoded_sum[1].item<float>() + residual[1].item<float>(), 16 + 16.0f / 512);
  EXPECT_GT(decoded_sum[1].item<float>(), 16.0f);  // without feedback it would be exactly 16
}

TEST(PseudoGradientCodec, Fp32IsExactAndNamesParse) {
  at::Tensor x = at::randn({33});
  EXPECT_TRUE(at::equal(DecodePseudoGradient(WireDtype::kFp32,
                                             EncodePseudoGradient(WireDtype::kFp32, x, nullptr, 8), 33, 8),
                        x));
  EXPECT_EQ(*ParseWireDtype("int8"), WireDtype::kInt8);
  EXPECT_EQ(WireDtypeName(WireDtype::kBf16), std::string("bf16"));
  absl::StatusOr<WireDtype> bad = ParseWireDtype("fp8");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'fp8'"), absl::string_view::npos);
}

}  // namespace
}  // namespace cf::distributed
