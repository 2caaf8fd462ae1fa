#include "convforever/train/rng_state.h"

#include <ATen/ATen.h>

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cf::train {
namespace {

std::vector<float> Draw() {
  // normal, uniform and a bernoulli (dropout's draw) all come from the default CPU generator.
  at::Tensor t = at::cat({at::randn({64}), at::rand({64}), at::bernoulli(at::full({64}, 0.3))});
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

TEST(RngState, TorchCpuRestoreReproducesTheSameNumbers) {
  at::manual_seed(1234);
  Draw();  // move away from the seed's initial state
  auto state = CaptureTorchCpuRngState();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_FALSE(state->empty());
  const std::vector<float> first = Draw();
  Draw();
  at::manual_seed(99);  // a different stream entirely
  ASSERT_TRUE(RestoreTorchCpuRngState(*state).ok());
  EXPECT_EQ(Draw(), first);
}

TEST(RngState, BadTorchStateIsAClearError) {
  absl::Status s = RestoreTorchCpuRngState("short");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("torch/cpu"), std::string::npos) << s;
}

TEST(RngState, EngineRoundTrip) {
  std::mt19937_64 engine(7);
  engine.discard(1000);
  const std::string saved = SaveEngine(engine);
  std::vector<uint64_t> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(engine());
  std::mt19937_64 restored(1);
  ASSERT_TRUE(LoadEngine(saved, &restored).ok());
  for (uint64_t v : expected) EXPECT_EQ(restored(), v);
  EXPECT_EQ(LoadEngine("1 2 3", &restored).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RngState, CaptureEncodeDecodeRestoreEverything) {
  at::manual_seed(5);
  std::mt19937_64 shuffle(11), augment(12);
  shuffle.discard(17);
  auto state = CaptureRngState({{"shuffle", &shuffle}, {"augment", &augment}});
  ASSERT_TRUE(state.ok()) << state.status();
  const std::vector<float> torch_numbers = Draw();
  const uint64_t s1 = shuffle(), a1 = augment();

  const std::string blob = EncodeRngState(*state);
  auto decoded = DecodeRngState(blob);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->sections, state->sections);
  EXPECT_EQ(decoded->sections.count("torch/cpu"), 1u);
  EXPECT_EQ(decoded->sections.count("mt/shuffle"), 1u);

  at::manual_seed(0);
  std::mt19937_64 shuffle2, augment2;
  ASSERT_TRUE(RestoreRngState(*decoded, {{"shuffle", &shuffle2}, {"augment", &augment2}}).ok());
  EXPECT_EQ(Draw(), torch_numbers);
  EXPECT_EQ(shuffle2(), s1);
  EXPECT_EQ(augment2(), a1);

  std::mt19937_64 other;
  absl::Status missing = RestoreRngState(*decoded, {{"mixup", &other}});
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("mixup"), std::string::npos);
}

TEST(RngState, DecodeRejectsCorruptBlobs) {
  RngState state;
  state.sections["mt/a"] = "12345";
  const std::string blob = EncodeRngState(state);
  ASSERT_TRUE(DecodeRngState(blob).ok());
  auto message = [](absl::string_view b) {
    auto r = DecodeRngState(b);
    EXPECT_FALSE(r.ok());
    return std::string(r.status().message());
  };
  EXPECT_NE(message("garbage!").find("bad magic"), std::string::npos);
  EXPECT_NE(message(blob.substr(0, 10)).find("header"), std::string::npos);
  EXPECT_NE(message(blob.substr(0, blob.size() - 1)).find("section 0 at byte 12"),
            std::string::npos);
  EXPECT_NE(message(blob + "x").find("trailing"), std::string::npos);
  std::string twice = blob;
  twice[8] = 2;  // count 2, then the same section again
  twice += blob.substr(12);
  EXPECT_NE(message(twice).find("twice"), std::string::npos);
  EXPECT_EQ(RestoreRngState(RngState{}, {}).code(), absl::StatusCode::kNotFound);
}

TEST(RngState, CpuBuildHasNoCudaStates) {
  auto cuda = CaptureTorchCudaRngStates();
  ASSERT_TRUE(cuda.ok());
#ifndef CF_WITH_CUDA
  EXPECT_TRUE(cuda->empty());
#endif
  EXPECT_TRUE(RestoreTorchCudaRngStates(*cuda).ok());
}

}  // namespace
}  // namespace cf::train
