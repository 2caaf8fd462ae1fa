#include "convforever/train/tensorboard.h"

#include <sys/wait.h>
#include <unistd.h>

#include <climits>
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

constexpr char kDump[] = "tools/interop/tfevents_dump.py";  // runfiles-relative

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

// The project venv's python, found through the real path of a runfile that is a source file
// (tools/interop/run_py.sh does the same); empty when there is no venv.
std::string VenvPython(std::string* root) {
  char real[PATH_MAX];
  if (::realpath(kDump, real) == nullptr) return "";
  *root = std::string(real).substr(0, std::strlen(real) - std::strlen(kDump));
  const std::string python = *root + ".venv/bin/python";
  return ::access(python.c_str(), X_OK) == 0 ? python : "";
}

// Runs TensorBoard's EventAccumulator over `path` (tools/interop/tfevents_dump.py).
int RunDump(const std::string& python, const std::string& script, const std::string& path, std::string* output) {
  const std::string cmd = python + " " + script + " '" + path + "' 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) output->append(buf, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(TensorBoardSink, TensorBoardsEventAccumulatorReadsIt) {
  std::string root;
  const std::string python = VenvPython(&root);
  if (python.empty()) {
    const char* ci = std::getenv("CI");
    ASSERT_FALSE(ci != nullptr && std::string(ci) == "true") << "no project venv (.venv; tools/cf setup)";
    GTEST_SKIP() << "no project venv at the workspace root (tools/cf setup); needs the real tensorboard";
  }
  const std::string dir = TempDir();
  auto sink = TensorBoardSink::Open(dir);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Log(1, {{"train/loss", 2.25}, {"lr", 0.125}}).ok());
  ASSERT_TRUE((*sink)->Log(100, {{"train/loss", std::nan("")}}).ok());
  ASSERT_TRUE((*sink)->LogSystem({{"cpu/utilization", 50}}).ok());  // lands at the last step
  ASSERT_TRUE((*sink)->LogConfig({{"lr", 0.004}, {"api_key", "secret"}}).ok());
  ASSERT_TRUE((*sink)->Log(200, {{"train/loss", 3.0}}).ok());
  ASSERT_TRUE((*sink)->DiscardAfter(150).ok());  // a resumed run: TensorBoard must drop step 200
  ASSERT_TRUE((*sink)->Log(151, {{"train/loss", 1.5}}).ok());
  ASSERT_TRUE((*sink)->Close().ok());

  std::string output;
  ASSERT_EQ(RunDump(python, root + kDump, dir, &output), 0) << output;
  // TensorBoard logs notes (e.g. purging the discarded steps) before the JSON, the last line.
  const std::string last = output.substr(output.find_last_of('\n', output.size() - 2) + 1);
  const nlohmann::json got = nlohmann::json::parse(last, nullptr, false);
  ASSERT_TRUE(got.is_object()) << output;
  EXPECT_EQ(got["scalars"]["train/loss"], nlohmann::json::parse(R"([[1, 2.25], [100, "nan"], [151, 1.5]])")) << output;
  EXPECT_EQ(got["scalars"]["lr"], nlohmann::json::parse("[[1, 0.125]]")) << output;
  EXPECT_EQ(got["scalars"]["cpu/utilization"], nlohmann::json::parse("[[100, 50.0]]")) << output;
  ASSERT_EQ(got["text"]["config/text_summary"].size(), 1u) << output;
  const std::string text = got["text"]["config/text_summary"][0][1];
  EXPECT_NE(text.find("\"lr\": 0.004"), std::string::npos) << text;
  EXPECT_EQ(text.find("secret"), std::string::npos) << text;
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
