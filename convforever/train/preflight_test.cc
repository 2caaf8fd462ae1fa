// `train --preflight` end to end through the binary with the recipes' own flagfiles (only the
// data location, the failure's own ingredient and the preflight's flags change): one test per
// failure the preflight must catch, each checking the exit code, the failed check's row, and that
// the other checks still ran; an all-green run on synthetic data; and a 2-host all-reduce.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "convforever/data/decode.h"
#include "convforever/data/test_util.h"
#include "convforever/hub/testing/fake_hub.h"
#include "convforever/train/testing/trainer_harness.h"
#include "gtest/gtest.h"

namespace cf::train {
namespace {

using testing::Outcome;

const std::vector<std::string> kChecks = {"flags", "data", "schedule", "classes", "heldout", "microbatch",
                                          "input", "disk", "hub",      "hosts",   "allreduce", "time"};

std::string Recipe(const std::string& name) { return "--flagfile=convforever/train/recipes/" + name + ".flags"; }

struct Row {
  std::string status;
  std::string detail;
};

// The table's rows by check name (lines "<name>  <status>  <detail>").
std::map<std::string, Row> Rows(const std::string& output) {
  std::map<std::string, Row> rows;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (parts.size() != 2) continue;
    bool known = false;
    for (const std::string& c : kChecks) known |= parts[0] == c;
    if (!known) continue;
    absl::string_view rest = absl::StripLeadingAsciiWhitespace(parts[1]);
    std::vector<std::string> sd = absl::StrSplit(rest, absl::MaxSplits(' ', 1));
    if (sd.size() != 2) continue;
    rows[parts[0]] = {sd[0], std::string(absl::StripLeadingAsciiWhitespace(sd[1]))};
  }
  return rows;
}

// Every check has a row, so none was stopped by another's failure.
void ExpectEveryCheckRan(const std::map<std::string, Row>& rows, const std::string& output) {
  for (const std::string& c : kChecks) EXPECT_TRUE(rows.count(c)) << "no row for " << c << ":\n" << output;
}

std::string LastLine(const std::string& output) {
  std::vector<std::string> lines = absl::StrSplit(output, '\n', absl::SkipEmpty());
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (absl::StartsWith(*it, "preflight:")) return *it;
  }
  return "";
}

Outcome Preflight(const std::string& name, std::vector<std::string> args, const std::vector<std::string>& env = {}) {
  const std::string dir = testing::TempDir(name);
  args.insert(args.begin(), "--preflight");
  args.push_back("--run_dir=" + dir + "/run");
  std::vector<std::string> argv = {testing::kTrainBinary};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::Wait(testing::Spawn(argv, dir + "/preflight.log", env), dir + "/preflight.log");
}

// A loopback port nothing listens on (bound, then closed).
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

TEST(Preflight, AllGreenOnSyntheticData) {
  auto hub = hub::testing::FakeHub::Start();
  ASSERT_TRUE(hub.ok()) << hub.status();
  const std::string dir = testing::TempDir("preflight_green_hosts");
  data::testing::WriteFile(dir + "/hostfile", "localhost slots=1\n127.0.0.1 slots=1\n");
  // fashion_mnist_cnn: the default recipe's 200 warmup steps are more than its whole run on the
  // 2,048 synthetic samples (160 steps), which the schedule check rightly fails.
  Outcome o = Preflight("preflight_green",
                        {Recipe("fashion_mnist_cnn"), "--data=synthetic", "--hub_repo=convforever/preflight-green",
                         "--hostfile=" + dir + "/hostfile"},
                        {"HF_ENDPOINT=" + (*hub)->endpoint(), "HF_TOKEN=" + hub::testing::FakeHubOptions().token});
  EXPECT_EQ(o.exit_code, 0) << o.output;
  const auto rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  for (const auto& [name, row] : rows) EXPECT_EQ(row.status, "ok") << name << ": " << row.detail;
  EXPECT_TRUE(absl::StartsWith(LastLine(o.output), "preflight: passed (12 ok")) << o.output;
  EXPECT_FALSE(absl::StrContains(o.output, hub::testing::FakeHubOptions().token));
}

TEST(Preflight, TwoLocalHostsAllReduce) {
  const std::string dir = testing::TempDir("preflight_two_hosts_file");
  data::testing::WriteFile(dir + "/hostfile", "# two ranks on this machine\nlocalhost slots=1\n127.0.0.1 slots=1\n");
  Outcome o = Preflight("preflight_two_hosts", {Recipe("fashion_mnist_cnn"), "--data=synthetic", "--hostfile=" + dir + "/hostfile"});
  EXPECT_EQ(o.exit_code, 0) << o.output;
  const auto rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  EXPECT_EQ(rows.at("hosts").status, "ok") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("hosts").detail, "world size 2")) << o.output;
  EXPECT_EQ(rows.at("allreduce").status, "ok") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("allreduce").detail, "2 ranks (gloo)")) << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("allreduce").detail, "GB/s")) << o.output;
  // Two ranks halve each rank's share of the data: the step count is the 2-rank run's.
  EXPECT_TRUE(absl::StrContains(rows.at("time").detail, "world size 2")) << o.output;
}

TEST(Preflight, InvalidFlagsAndDeepSpeedConfig) {
  Outcome o = Preflight("preflight_flags", {Recipe("fashion_mnist_cnn"), "--data=synthetic", "--lr=-1"});
  EXPECT_EQ(o.exit_code, 1) << o.output;
  auto rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  EXPECT_EQ(rows.at("flags").status, "FAIL") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("flags").detail, "--lr: must be > 0")) << o.output;
  EXPECT_EQ(rows.at("data").status, "ok") << o.output;  // the data side does not need valid flags

  const std::string dir = testing::TempDir("preflight_deepspeed_file");
  data::testing::WriteFile(dir + "/ds.json", "{\"train_micro_batch_size_per_gpu\": 64,\n");
  o = Preflight("preflight_deepspeed", {Recipe("fashion_mnist_cnn"), "--data=synthetic",
                                        "--deepspeed_config=" + dir + "/ds.json"});
  EXPECT_EQ(o.exit_code, 1) << o.output;
  rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  EXPECT_EQ(rows.at("flags").status, "FAIL") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("flags").detail, dir + "/ds.json")) << o.output;
  EXPECT_EQ(rows.at("heldout").status, "ok") << o.output;
}

// The recipe's 200 warmup steps leave nothing of a 100-step run: RunSetup would refuse to start.
TEST(Preflight, WarmupLongerThanTheRun) {
  Outcome o = Preflight("preflight_schedule", {Recipe("fashion_mnist"), "--max_steps=100"});
  EXPECT_EQ(o.exit_code, 1) << o.output;
  const auto rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  EXPECT_EQ(rows.at("schedule").status, "FAIL") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("schedule").detail, "warmup_steps")) << o.output;
  EXPECT_EQ(rows.at("flags").status, "ok") << o.output;
  EXPECT_EQ(rows.at("microbatch").status, "ok") << o.output;
  EXPECT_TRUE(absl::StrContains(LastLine(o.output), "FAILED: schedule")) << o.output;
}

TEST(Preflight, MissingDataDirectory) {
  Outcome o = Preflight("preflight_missing_dir", {Recipe("fashion_mnist"), "--data_dir=/nonexistent/fashion-mnist"});
  EXPECT_EQ(o.exit_code, 1) << o.output;
  const auto rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  EXPECT_EQ(rows.at("data").status, "FAIL") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("data").detail, "/nonexistent/fashion-mnist")) << o.output;
  EXPECT_EQ(rows.at("microbatch").status, "ok") << o.output;  // the others still ran
  EXPECT_EQ(rows.at("disk").status, "ok") << o.output;
  EXPECT_TRUE(absl::StrContains(LastLine(o.output), "FAILED: data")) << o.output;
}

TEST(Preflight, UnreachableDataUrl) {
  const std::string url = absl::StrCat("http://cfuser:pw-Secret42@127.0.0.1:", ClosedPort(), "/shards/train-{000..003}.tar");
  Outcome o = Preflight("preflight_url", {Recipe("convforever_depth"), "--data=wds", "--data_dir=" + url,
                                          "--eval_fraction=0.05", "--micro_batch_size=1", "--preflight_timeout_s=2"});
  EXPECT_EQ(o.exit_code, 1) << o.output;
  const auto rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  EXPECT_EQ(rows.at("data").status, "FAIL") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("data").detail, "does not answer")) << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("data").detail, "127.0.0.1")) << o.output;
  EXPECT_FALSE(absl::StrContains(o.output, "pw-Secret42")) << o.output;  // credentials redacted
  EXPECT_EQ(rows.at("disk").status, "ok") << o.output;
  EXPECT_TRUE(absl::StrContains(LastLine(o.output), "data")) << o.output;
}

TEST(Preflight, ClassListDisagreesWithJsonlLabels) {
  const std::string dir = testing::TempDir("preflight_classes_data");
  std::string lines;
  for (int i = 0; i < 24; ++i) {
    const std::string name = absl::StrCat("img", i, ".png");
    data::testing::WriteFile(dir + "/" + name, *data::EncodePng(data::testing::PatternImage(24, 24, 3, i)));
    // Record 7 (line 7) carries a label that is not one of the recipe's 50 categories.
    const std::string label = i == 6 ? "\"spaceship\"" : (i % 2 ? "\"cat\"" : "\"dog\"");
    lines += absl::StrCat("{\"path\": \"", name, "\", \"label\": ", label, "}\n");
  }
  data::testing::WriteFile(dir + "/records.jsonl", lines);
  Outcome o = Preflight("preflight_classes",
                        {Recipe("convforever_depth"), "--data_dir=" + dir + "/records.jsonl", "--eval_fraction=0.3",
                         "--micro_batch_size=2", "--precision=fp32"});
  EXPECT_EQ(o.exit_code, 1) << o.output;
  const auto rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  EXPECT_EQ(rows.at("classes").status, "FAIL") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("classes").detail, "'spaceship'")) << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("classes").detail, "records.jsonl:7")) << o.output;
  EXPECT_EQ(rows.at("data").status, "ok") << o.output;  // the data opens: only the labels disagree
  EXPECT_EQ(rows.at("heldout").status, "ok") << o.output;
  EXPECT_TRUE(absl::StrContains(LastLine(o.output), "FAILED: classes")) << o.output;
}

TEST(Preflight, MicroBatchDoesNotFit) {
  // The default recipe's micro-batch of 128 needs ~200 MiB of activations on the CPU; 64 MiB does
  // not hold it, while small micro-batches fit.
  Outcome o = Preflight("preflight_microbatch", {Recipe("fashion_mnist"), "--preflight_memory_gb=0.0625"});
  EXPECT_EQ(o.exit_code, 1) << o.output;
  const auto rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  const Row& m = rows.at("microbatch");
  EXPECT_EQ(m.status, "FAIL") << o.output;
  EXPECT_TRUE(absl::StrContains(m.detail, "--micro_batch_size=128 does not fit")) << o.output;
  EXPECT_TRUE(absl::StrContains(m.detail, "the largest that fits is ")) << o.output;
  EXPECT_TRUE(absl::StrContains(m.detail, "--gradient_accumulation_steps=")) << o.output;
  EXPECT_TRUE(absl::StrContains(m.detail, "for a global batch of 128 per rank")) << o.output;
  EXPECT_EQ(rows.at("data").status, "ok") << o.output;
  EXPECT_EQ(rows.at("disk").status, "ok") << o.output;
  EXPECT_TRUE(absl::StrContains(LastLine(o.output), "FAILED: microbatch")) << o.output;
}

TEST(Preflight, BadHubToken) {
  auto hub = hub::testing::FakeHub::Start();
  ASSERT_TRUE(hub.ok()) << hub.status();
  const std::string bad = "hf_NOTtheRIGHTtoken0123456789";
  Outcome o = Preflight("preflight_token", {Recipe("fashion_mnist"), "--hub_repo=convforever/preflight-token"},
                        {"HF_ENDPOINT=" + (*hub)->endpoint(), "HF_TOKEN=" + bad});
  EXPECT_EQ(o.exit_code, 1) << o.output;
  const auto rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  EXPECT_EQ(rows.at("hub").status, "FAIL") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("hub").detail, (*hub)->endpoint())) << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("hub").detail, "401")) << o.output;
  EXPECT_FALSE(absl::StrContains(o.output, bad)) << "the token reached the output";
  EXPECT_EQ(rows.at("data").status, "ok") << o.output;
  EXPECT_TRUE(absl::StrContains(LastLine(o.output), "FAILED: hub")) << o.output;
}

// A token the Hub accepts that still cannot push: read-only, or the repo in another namespace.
TEST(Preflight, HubTokenThatCannotWrite) {
  hub::testing::FakeHubOptions read_only;
  read_only.token_role = "read";
  auto hub = hub::testing::FakeHub::Start(read_only);
  ASSERT_TRUE(hub.ok()) << hub.status();
  const std::vector<std::string> env = {"HF_ENDPOINT=" + (*hub)->endpoint(), "HF_TOKEN=" + read_only.token};
  Outcome o = Preflight("preflight_read_token", {Recipe("fashion_mnist"), "--data=synthetic",
                                                 "--hub_repo=convforever/preflight-read"}, env);
  EXPECT_EQ(o.exit_code, 1) << o.output;
  auto rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  EXPECT_EQ(rows.at("hub").status, "FAIL") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("hub").detail, "read-only token")) << o.output;

  o = Preflight("preflight_foreign_repo", {Recipe("fashion_mnist"), "--data=synthetic",
                                           "--hub_repo=someone-else/model"}, env);
  EXPECT_EQ(o.exit_code, 1) << o.output;
  rows = Rows(o.output);
  EXPECT_EQ(rows.at("hub").status, "FAIL") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("hub").detail, "'someone-else' is neither the user nor one of its orgs"))
      << o.output;
  EXPECT_FALSE(absl::StrContains(o.output, read_only.token));
}

TEST(Preflight, UnreachableHosts) {
  const std::string dir = testing::TempDir("preflight_hosts_file");
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): routed nowhere; .invalid never resolves (RFC 2606).
  data::testing::WriteFile(dir + "/hostfile", "127.0.0.1 slots=1\n192.0.2.1 slots=1\nnode-b.invalid slots=2\n");
  Outcome o = Preflight("preflight_hosts", {Recipe("fashion_mnist_cnn"), "--data=synthetic",
                                            "--hostfile=" + dir + "/hostfile", "--preflight_timeout_s=1"});
  EXPECT_EQ(o.exit_code, 1) << o.output;
  const auto rows = Rows(o.output);
  ExpectEveryCheckRan(rows, o.output);
  EXPECT_EQ(rows.at("hosts").status, "FAIL") << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("hosts").detail, "192.0.2.1")) << o.output;
  EXPECT_TRUE(absl::StrContains(rows.at("hosts").detail, "node-b.invalid")) << o.output;
  EXPECT_FALSE(absl::StrContains(rows.at("hosts").detail, "127.0.0.1")) << o.output;
  EXPECT_EQ(rows.at("allreduce").status, "skip") << o.output;
  EXPECT_EQ(rows.at("microbatch").status, "ok") << o.output;
  EXPECT_TRUE(absl::StrContains(LastLine(o.output), "FAILED: hosts")) << o.output;
}

}  // namespace
}  // namespace cf::train
