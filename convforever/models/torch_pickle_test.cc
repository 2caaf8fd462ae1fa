// The pickle machine on hand-built pickles: what torch.save writes, and what a hostile file could.
#include "convforever/models/torch_pickle.h"

#include <cstdint>
#include <string>
#include <string_view>

#include <ATen/ATen.h>

#include "gtest/gtest.h"

namespace cf::models {
namespace {

std::string Le32(uint32_t v) {
  std::string out(4, '\0');
  for (int k = 0; k < 4; ++k) out[k] = static_cast<char>((v >> (8 * k)) & 0xff);
  return out;
}
std::string Str(const std::string& s) { return "X" + Le32(s.size()) + s; }  // BINUNICODE
std::string Int(int32_t v) { return "J" + Le32(static_cast<uint32_t>(v)); }  // BININT

// ('storage', torch.FloatStorage, key, 'cpu', numel) loaded with BINPERSID.
std::string FloatStorage(const std::string& key, int numel) {
  return "(" + Str("storage") + "ctorch\nFloatStorage\n" + Str(key) + Str("cpu") + Int(numel) + "tQ";
}

// _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()).
std::string Tensor(const std::string& storage, int offset, int size, int stride) {
  return "ctorch._utils\n_rebuild_tensor_v2\n(" + storage + Int(offset) + "(" + Int(size) + "t(" +
         Int(stride) + "t\x89" + "ccollections\nOrderedDict\n)Rt" + "R";
}

// {name: tensor}, protocol 2.
std::string StateDict(const std::string& name, const std::string& tensor) {
  return std::string("\x80\x02}(") + Str(name) + tensor + "u.";
}

// Storage "0" holds four floats 1, 2, 3, 4.
absl::StatusOr<std::string_view> FourFloats(const std::string& key) {
  static const float kData[4] = {1, 2, 3, 4};
  if (key != "0") return absl::NotFoundError("no record data/" + key);
  return std::string_view(reinterpret_cast<const char*>(kData), sizeof(kData));
}

TEST(TorchPickleTest, ReadsAStridedViewOfAStorage) {
  // Every other element, starting at the second: {2, 4}.
  auto tensors = ParseTorchPickleStateDict(StateDict("w", Tensor(FloatStorage("0", 4), 1, 2, 2)), FourFloats, "t");
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  ASSERT_EQ(tensors->size(), 1u);
  EXPECT_EQ((*tensors)[0].first, "w");
  EXPECT_TRUE(at::equal((*tensors)[0].second, at::tensor({2.0f, 4.0f})));
}

TEST(TorchPickleTest, RejectsAViewBeyondItsStorage) {
  auto tensors = ParseTorchPickleStateDict(StateDict("w", Tensor(FloatStorage("0", 4), 2, 2, 2)), FourFloats, "t");
  ASSERT_FALSE(tensors.ok());
  EXPECT_NE(tensors.status().message().find("beyond its storage"), std::string::npos) << tensors.status();
}

TEST(TorchPickleTest, RejectsNegativeSizesAndStrides) {
  for (const auto& [size, stride] : {std::pair{-1, 1}, std::pair{2, -1}}) {
    auto tensors =
        ParseTorchPickleStateDict(StateDict("w", Tensor(FloatStorage("0", 4), 3, size, stride)), FourFloats, "t");
    EXPECT_FALSE(tensors.ok()) << size << " " << stride;
  }
}

TEST(TorchPickleTest, RejectsABroadcastViewLargerThanItsStorage) {
  // Stride 0 over one element: a few bytes of pickle asking for a 2^30-element tensor.
  auto tensors =
      ParseTorchPickleStateDict(StateDict("w", Tensor(FloatStorage("0", 4), 0, 1 << 30, 0)), FourFloats, "t");
  ASSERT_FALSE(tensors.ok());
  EXPECT_NE(tensors.status().message().find("beyond its storage"), std::string::npos) << tensors.status();
}

TEST(TorchPickleTest, RejectsManyCopiesOfOneStorage) {
  // The same storage (memoized) rebuilt into tensors again and again: bounded by twice its bytes.
  std::string pickle = std::string("\x80\x02}(") + FloatStorage("0", 4) + "q\x01" + "0";
  for (int i = 0; i < 3; ++i) pickle += Str("w" + std::to_string(i)) + Tensor("h\x01", 0, 4, 1);
  pickle += "u.";
  auto tensors = ParseTorchPickleStateDict(pickle, FourFloats, "t");
  ASSERT_FALSE(tensors.ok());
  EXPECT_NE(tensors.status().message().find("twice the bytes"), std::string::npos) << tensors.status();
}

TEST(TorchPickleTest, RejectsAStorageWhoseSizeDisagreesWithItsRecord) {
  auto tensors = ParseTorchPickleStateDict(StateDict("w", Tensor(FloatStorage("0", 5), 0, 4, 1)), FourFloats, "t");
  ASSERT_FALSE(tensors.ok());
  EXPECT_EQ(tensors.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tensors.status().message().find("storage data/0 has 16 bytes"), std::string::npos) << tensors.status();
}

TEST(TorchPickleTest, AListThatContainsItselfIsNotAStateDict) {
  // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND: a cycle, which shared ownership would leak.
  using namespace std::string_literals;  // the pickle holds NUL bytes
  auto tensors = ParseTorchPickleStateDict("\x80\x02]q\x00h\x00" "a."s, FourFloats, "t");
  ASSERT_FALSE(tensors.ok());
  EXPECT_NE(tensors.status().message().find("does not hold a dict"), std::string::npos) << tensors.status();
}

TEST(TorchPickleTest, AHugeLengthDoesNotWrapAround) {
  // BINUNICODE8 claiming 2^64 - 1 bytes: the machine must run off the end, not back to the start.
  const std::string pickle = std::string("\x80\x02\x8d") + std::string(8, '\xff') + "}.";
  auto tensors = ParseTorchPickleStateDict(pickle, FourFloats, "t");
  ASSERT_FALSE(tensors.ok());
  EXPECT_NE(tensors.status().message().find("no STOP"), std::string::npos) << tensors.status();
}

TEST(TorchPickleTest, AGlobalCutShortIsAnErrorNotAnException) {
  // GLOBAL's module line runs to the end of the input; its name line starts past it.
  auto tensors = ParseTorchPickleStateDict("\x80\x02" "ctorch", FourFloats, "t");
  ASSERT_FALSE(tensors.ok());
  EXPECT_NE(tensors.status().message().find("no STOP"), std::string::npos) << tensors.status();
}

}  // namespace
}  // namespace cf::models
