#include "convforever/train/tensorboard.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace cf::train {
namespace {

constexpr char kPython[] = "/usr/bin/python3";
constexpr char kReader[] = "tools/golden/tfevents_reader.py";  // runfiles-relative

std::string TempDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(root ? root : "/tmp") + "/tb_XXXXXX";
  return mkdtemp(tmpl.data());
}

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

std::string F64(double v) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &v, 8);  // the build machine is little-endian, as the format is
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  // RFC 3720 (iSCSI) appendix B.4.
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32c, ContinuesARunningChecksum) {
  EXPECT_EQ(Crc32c("456789", Crc32c("123")), 0xE3069283u);
}

TEST(Crc32c, Mask) {
  const uint32_t crc = 0xE3069283u;
  EXPECT_EQ(MaskCrc32c(crc), (((crc >> 15) | (crc << 17)) + 0xa282ead8u));
  EXPECT_NE(MaskCrc32c(0), 0u);
}

TEST(TensorBoardEncoding, ScalarEventMatchesTheFormatsExample) {
  // FORMATS.md: tag "loss" = 0.5 at step 10 is
  //   09 <f64> 10 0A 2A 0D 0A 0B 0A 04 6C 6F 73 73 15 00 00 00 3F
  const double wall_time = 1763784000.25;
  const std::string expected = Bytes({0x09}) + F64(wall_time) +
                               Bytes({0x10, 0x0A, 0x2A, 0x0D, 0x0A, 0x0B, 0x0A, 0x04, 0x6C, 0x6F,
                                      0x73, 0x73, 0x15, 0x00, 0x00, 0x00, 0x3F});
  EXPECT_EQ(EncodeScalarsEvent(wall_time, 10, {{"loss", 0.5}}), expected);
}

TEST(TensorBoardEncoding, FileVersionEventOmitsDefaultStep) {
  const std::string expected = Bytes({0x09}) + F64(2.0) + Bytes({0x1A, 13}) + "brain.Event:2";
  EXPECT_EQ(EncodeFileVersionEvent(2.0), expected);
}

TEST(TensorBoardEncoding, SessionStart) {
  EXPECT_EQ(EncodeSessionStartEvent(2.0, 7),
            Bytes({0x09}) + F64(2.0) + Bytes({0x10, 7, 0x3A, 2, 0x08, 1}));
}

TEST(TensorBoardEncoding, LargeStepIsAMultiByteVarint) {
  const std::string event = EncodeScalarsEvent(0.0, 300, {});
  // 300 = 0b10_0101100 -> AC 02
  EXPECT_EQ(event.substr(9, 3), Bytes({0x10, 0xAC, 0x02}));
}

TEST(TensorBoardEncoding, RecordFraming) {
  const std::string data = "hello";
  const std::string record = EncodeTfRecord(data);
  ASSERT_EQ(record.size(), 8u + 4 + data.size() + 4);
  EXPECT_EQ(record.substr(0, 8), Bytes({5, 0, 0, 0, 0, 0, 0, 0}));
  uint32_t length_crc, data_crc;
  std::memcpy(&length_crc, record.data() + 8, 4);
  std::memcpy(&data_crc, record.data() + 17, 4);
  EXPECT_EQ(length_crc, MaskCrc32c(Crc32c(record.substr(0, 8))));
  EXPECT_EQ(record.substr(12, 5), data);
  EXPECT_EQ(data_crc, MaskCrc32c(Crc32c(data)));
}

TEST(TensorBoardSink, FileNameFollowsTheConvention) {
  const std::string dir = TempDir();
  auto sink = TensorBoardSink::Open(dir + "/tb");
  ASSERT_TRUE(sink.ok()) << sink.status();
  const std::string name = (*sink)->path().substr((*sink)->path().rfind('/') + 1);
  std::vector<std::string> parts = absl::StrSplit(name, '.');
  ASSERT_GE(parts.size(), 6u) << name;
  EXPECT_EQ(parts[0], "events");
  EXPECT_EQ(parts[1], "out");
  EXPECT_EQ(parts[2], "tfevents");
  EXPECT_EQ(parts[3].size(), 10u);
  EXPECT_EQ(parts[parts.size() - 2], std::to_string(::getpid()));
  EXPECT_TRUE(absl::StartsWith(EventFileName(0), "events.out.tfevents.0000000000."));
}

TEST(TensorBoardSink, OpenFailsNamingThePath) {
  auto sink = TensorBoardSink::Open("/proc/cannot/create");
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("/proc/cannot/create"), std::string::npos);
}

// Runs the independent Python reader; returns its exit status and output.
int RunReader(const std::string& file, std::string* output) {
  const std::string cmd = std::string(kPython) + " " + kReader + " '" + file + "' 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) output->append(buf, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(TensorBoardSink, IndependentPythonReaderAgrees) {
  if (::access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " not installed";
  ASSERT_EQ(::access(kReader, R_OK), 0) << kReader << " missing from runfiles";
  const std::string dir = TempDir();
  auto sink = TensorBoardSink::Open(dir);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Log(1, {{"train/loss", 2.25}, {"lr", 0.125}}).ok());
  ASSERT_TRUE((*sink)->Log(200, {{"train/loss", std::nan("")}}).ok());
  ASSERT_TRUE((*sink)->LogConfig({{"lr", 0.004}, {"api_key", "secret"}}).ok());
  ASSERT_TRUE((*sink)->LogSystem({{"cpu/utilization", 50}}).ok());
  ASSERT_TRUE((*sink)->DiscardAfter(150).ok());
  ASSERT_TRUE((*sink)->Close().ok());

  std::string output;
  ASSERT_EQ(RunReader((*sink)->path(), &output), 0) << output;
  std::vector<nlohmann::json> events;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    events.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(events.size(), 6u) << output;
  EXPECT_EQ(events[0]["file_version"], "brain.Event:2");
  EXPECT_GT(events[0]["wall_time"].get<double>(), 1.6e9);
  EXPECT_EQ(events[1]["step"], 1);
  EXPECT_EQ(events[1]["values"][0]["tag"], "train/loss");
  EXPECT_EQ(events[1]["values"][0]["simple_value"], 2.25);
  EXPECT_EQ(events[1]["values"][1]["tag"], "lr");
  EXPECT_EQ(events[1]["values"][1]["simple_value"], 0.125);
  EXPECT_EQ(events[2]["step"], 200);
  EXPECT_EQ(events[2]["values"][0]["simple_value"], "nan");
  EXPECT_EQ(events[3]["values"][0]["tag"], "config/text_summary");
  EXPECT_EQ(events[3]["values"][0]["plugin"], "text");
  const std::string text = events[3]["values"][0]["text"];
  EXPECT_NE(text.find("\"lr\": 0.004"), std::string::npos) << text;
  EXPECT_EQ(text.find("secret"), std::string::npos) << text;
  EXPECT_EQ(events[4]["step"], 200);  // system metrics land at the last step
  EXPECT_EQ(events[4]["values"][0]["tag"], "cpu/utilization");
  EXPECT_EQ(events[5]["step"], 151);
  EXPECT_EQ(events[5]["session_status"], 1);

  // The reader really checks CRCs: flip one payload byte of the last record.
  std::string bytes = ReadAll((*sink)->path());
  bytes[bytes.size() - 6] ^= 0x01;
  const std::string corrupt = dir + "/corrupt.tfevents";
  std::ofstream(corrupt, std::ios::binary) << bytes;
  output.clear();
  EXPECT_EQ(RunReader(corrupt, &output), 1) << output;
  EXPECT_NE(output.find("record 5"), std::string::npos) << output;
  EXPECT_NE(output.find("bad data CRC"), std::string::npos) << output;
}

TEST(TensorBoardSink, ClosedSinkRefusesWrites) {
  auto sink = TensorBoardSink::Open(TempDir());
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ((*sink)->Log(1, {{"a", 1}}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*sink)->Close().ok());
}

}  // namespace
}  // namespace cf::train
