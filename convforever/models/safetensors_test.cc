#include "convforever/models/safetensors.h"

#include <cstdlib>
#include <fstream>
#include <random>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace cf::models {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

NamedTensors Sample() {
  return {{"a.weight", at::arange(12, at::kFloat).reshape({3, 4})},
          {"b", at::arange(5, at::kLong)},
          {"half", at::ones({2, 2}, at::kHalf)},
          {"bf", at::full({3}, 1.5, at::kBFloat16)},
          {"mask", at::tensor({1, 0, 1}, at::kInt).to(at::kBool)},
          {"bytes", at::arange(4, at::kByte)},
          {"scalar", at::scalar_tensor(3.25, at::kDouble)},
          {"empty", at::zeros({0, 7}, at::kFloat)},
          {"i8", at::tensor({-1, 2}, at::kChar)},
          {"i16", at::tensor({-300, 2}, at::kShort)},
          {"i32", at::tensor({-70000}, at::kInt)}};
}

// Builds a file from a raw header string and a data buffer.
std::string Raw(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t(header.size()) >> (8 * i)) & 0xff);
  return out + header + data;
}

TEST(SafetensorsTest, RoundTripsEveryDtypeAndMetadata) {
  const std::string path = TempPath("round.safetensors");
  NamedTensors in = Sample();
  ASSERT_TRUE(WriteSafetensors(path, in, {{"format", "pt"}, {"note", "x"}}).ok());
  auto file = ReadSafetensorsFile(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->metadata.at("format"), "pt");
  EXPECT_EQ(file->metadata.at("note"), "x");
  ASSERT_EQ(file->tensors.size(), in.size());
  for (const auto& [name, t] : in) {
    bool found = false;
    for (const auto& [n2, t2] : file->tensors) {
      if (n2 != name) continue;
      found = true;
      EXPECT_EQ(t2.scalar_type(), t.scalar_type()) << name;
      EXPECT_EQ(t2.sizes(), t.sizes()) << name;
      EXPECT_TRUE(at::equal(t2, t)) << name;
    }
    EXPECT_TRUE(found) << name;
  }
}

TEST(SafetensorsTest, HeaderIsPaddedToEightAndStartsWithBrace) {
  auto bytes = SerializeSafetensors(Sample(), {{"format", "pt"}});
  ASSERT_TRUE(bytes.ok());
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>((*bytes)[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ((*bytes)[8], '{');
  EXPECT_TRUE(ParseSafetensors(*bytes).ok());
}

TEST(SafetensorsTest, NonContiguousInputIsWrittenInCOrder) {
  at::Tensor t = at::arange(6, at::kFloat).reshape({2, 3}).t();
  auto bytes = SerializeSafetensors({{"t", t}}, {});
  ASSERT_TRUE(bytes.ok());
  auto back = ParseSafetensors(*bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(at::equal(back->tensors[0].second, t));
}

TEST(SafetensorsTest, WriterRejectsBadNames) {
  EXPECT_FALSE(SerializeSafetensors({{"x", at::ones({1})}, {"x", at::ones({1})}}, {}).ok());
  EXPECT_FALSE(SerializeSafetensors({{"", at::ones({1})}}, {}).ok());
  EXPECT_FALSE(SerializeSafetensors({{"__metadata__", at::ones({1})}}, {}).ok());
  EXPECT_FALSE(SerializeSafetensors({{"c", at::ones({1}, at::kComplexFloat)}}, {}).ok());
}

void ExpectError(const std::string& bytes, const std::string& fragment) {
  auto r = ParseSafetensors(bytes, "test.safetensors");
  ASSERT_FALSE(r.ok()) << "accepted input expected to fail with: " << fragment;
  EXPECT_NE(std::string(r.status().message()).find(fragment), std::string::npos) << r.status();
  EXPECT_NE(std::string(r.status().message()).find("test.safetensors"), std::string::npos);
}

TEST(SafetensorsTest, RejectsMalformedFilesWithClearErrors) {
  const std::string f4(16, '\0');  // room for [2, 2] F32... or less
  ExpectError("", "too short");
  ExpectError(std::string("\x10\0\0\0\0\0\0\0{}", 10), "runs past the end");
  ExpectError(std::string("\0\0\0\0\0\0\x01\0", 8), "100 MB");
  ExpectError(Raw("[1]", ""), "does not start with '{'");
  ExpectError(Raw("{\"a\":", ""), "not valid JSON");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", f4),
              "duplicate tensor name 'a'");
  ExpectError(Raw(R"({"a":3})", ""), "tensor 'a': entry is not an object");
  ExpectError(Raw(R"({"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", "abcd"), "unsupported dtype 'F33'");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"), "non-negative integers");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "abcd"), "non-negative integers");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", "abcd"), "overflows");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"), "need 8");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "abcd"), "tensor 'a'");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[1]}})", "abcd"), "data_offsets");
  ExpectError(Raw(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", "abcd"), "dtype");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", "abcd"), "unexpected field 'x'");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                  std::string(12, '\0')), "overlap");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                  std::string(12, '\0')), "hole");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0')), "hole");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd"), "truncated");
  ExpectError(Raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcdefgh"), "trailing bytes");
  ExpectError(Raw(R"({"__metadata__":{"format":1}})", ""), "not a string");
  ExpectError(Raw(R"({"__metadata__":[1]})", ""), "__metadata__ is not an object");
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  auto r = ReadSafetensors(TempPath("does_not_exist.safetensors"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(r.status().message()).find("does_not_exist"), std::string::npos);
}

TEST(SafetensorsTest, TruncatedFileOnDiskIsRejected) {
  const std::string path = TempPath("trunc.safetensors");
  auto bytes = SerializeSafetensors(Sample(), {});
  ASSERT_TRUE(bytes.ok());
  for (size_t cut : {size_t(3), size_t(20), bytes->size() - 1}) {
    std::ofstream(path, std::ios::binary).write(bytes->data(), cut);
    EXPECT_FALSE(ReadSafetensors(path).ok()) << cut;
  }
}

// Randomized robustness: mutations of a valid file (byte flips, truncation, insertion, a forged
// header length) and headers spliced from valid fragments must never crash the reader; whatever
// it accepts must be self-consistent (re-serializable).
TEST(SafetensorsTest, FuzzedInputsNeverCrash) {
  auto valid = SerializeSafetensors(Sample(), {{"format", "pt"}});
  ASSERT_TRUE(valid.ok());
  std::mt19937_64 rng(1234);
  int accepted = 0, rejected = 0;
  const std::vector<std::string> pieces = {"{", "}", "[", "]", ",", ":", "\"a\"", "\"dtype\"", "\"F32\"",
                                           "\"shape\"", "\"data_offsets\"", "0", "4", "18446744073709551615",
                                           "-1", "1e30", "\"__metadata__\"", " ", "null", "\"\\u0000\""};
  for (int iter = 0; iter < 4000; ++iter) {
    std::string bytes = *valid;
    switch (iter % 5) {
      case 0:
        for (int k = 0; k < 1 + int(rng() % 4); ++k) bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
        break;
      case 1: bytes.resize(rng() % bytes.size()); break;
      case 2: bytes.insert(rng() % bytes.size(), std::string(1 + rng() % 8, static_cast<char>(rng()))); break;
      case 3: {
        const uint64_t n = rng() % (bytes.size() + 64);
        for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
        break;
      }
      default: {
        std::string header;
        for (int k = 0; k < 1 + int(rng() % 30); ++k) header += pieces[rng() % pieces.size()];
        bytes = Raw(header, std::string(rng() % 16, 'x'));
      }
    }
    auto r = ParseSafetensors(bytes);
    if (r.ok()) {
      ++accepted;
      EXPECT_TRUE(SerializeSafetensors(r->tensors, r->metadata).ok());
    } else {
      ++rejected;
      EXPECT_FALSE(r.status().message().empty());
    }
  }
  EXPECT_GT(rejected, 1000);
  std::printf("fuzz: %d accepted, %d rejected\n", accepted, rejected);
}

}  // namespace
}  // namespace cf::models
