#include "convforever/hub/sha256.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace cf::hub {
namespace {

// FIPS 180-4 example vectors (NIST CSRC "SHA256.pdf" / "SHA2_Additional.pdf").
TEST(Sha256Test, NistVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                      "klmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Lengths around the padding boundaries (values from Python's hashlib).
TEST(Sha256Test, PaddingBoundaries) {
  EXPECT_EQ(Sha256Hex(std::string(55, 'x')),
            "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
  EXPECT_EQ(Sha256Hex(std::string(56, 'x')),
            "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e");
  EXPECT_EQ(Sha256Hex(std::string(63, 'x')),
            "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2");
  EXPECT_EQ(Sha256Hex(std::string(64, 'x')),
            "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c");
  EXPECT_EQ(Sha256Hex(std::string(119, 'x')),
            "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c");
}

TEST(Sha256Test, IncrementalEqualsOneShotForAnySplit) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  const std::string want = Sha256Hex(data);
  for (size_t split : {0, 1, 63, 64, 65, 127, 500, 999, 1000}) {
    Sha256 h;
    h.Update(data.substr(0, split));
    h.Update(data.substr(split));
    EXPECT_EQ(h.FinishHex(), want) << split;
  }
}

TEST(Sha256Test, FileStreamsAcrossReadChunks) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/big.bin";
  std::string data;
  for (int i = 0; i < 3 * (1 << 20) + 17; ++i) data.push_back(static_cast<char>(i * 31 + (i >> 9)));
  std::ofstream(path, std::ios::binary) << data;
  auto digest = Sha256File(path);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(digest->size, static_cast<int64_t>(data.size()));
  EXPECT_EQ(digest->sha256, Sha256Hex(data));
}

TEST(Sha256Test, MissingFileNamesPath) {
  auto digest = Sha256File("/nonexistent/dir/model.safetensors");
  ASSERT_FALSE(digest.ok());
  EXPECT_NE(digest.status().message().find("/nonexistent/dir/model.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace cf::hub
