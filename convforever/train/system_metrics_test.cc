#include "convforever/train/system_metrics.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace cf::train {
namespace {

std::string TempDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(root ? root : "/tmp") + "/sysm_XXXXXX";
  return mkdtemp(tmpl.data());
}

std::map<std::string, double> AsMap(const Scalars& scalars) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : scalars) out[k] = v;
  return out;
}

// A fake /proc with two cores.
std::string FakeProc(const std::string& stat) {
  const std::string root = TempDir();
  ::mkdir((root + "/self").c_str(), 0755);
  std::ofstream(root + "/stat") << stat;
  std::ofstream(root + "/meminfo") << "MemTotal:       16777216 kB\n"
                                      "MemFree:         4194304 kB\n"
                                      "MemAvailable:    8388608 kB\n"
                                      "Buffers:         1048576 kB\n"
                                      "Cached:          2097152 kB\n"
                                      "SReclaimable:    1048576 kB\n";
  std::ofstream(root + "/self/status") << "Name:\tcf\nState:\tR (running)\nVmRSS:\t  524288 kB\n";
  return root;
}

constexpr char kStat0[] =
    "cpu  100 0 100 800 0 0 0 0 0 0\n"
    "cpu0 50 0 50 400 0 0 0 0 0 0\n"
    "cpu1 50 0 50 400 0 0 0 0 0 0\n"
    "intr 12345\n";
// +100 jiffies on each core: core 0 75% busy, core 1 25% busy (iowait counts as idle).
constexpr char kStat1[] =
    "cpu  200 0 100 880 20 0 0 0 0 0\n"
    "cpu0 125 0 50 425 0 0 0 0 0 0\n"
    "cpu1 75 0 50 455 20 0 0 0 0 0\n";

TEST(ProcReaders, CpuUtilizationFromTwoReadings) {
  const std::string a = FakeProc(kStat0), b = FakeProc(kStat1);
  auto before = ReadCpuTimes(a + "/stat");
  auto after = ReadCpuTimes(b + "/stat");
  ASSERT_TRUE(before.ok() && after.ok()) << before.status() << after.status();
  ASSERT_EQ(before->total.size(), 3u);
  auto util = AsMap(CpuUtilization(*before, *after));
  EXPECT_DOUBLE_EQ(util["cpu/utilization"], 50.0);
  EXPECT_DOUBLE_EQ(util["cpu/0/utilization"], 75.0);
  EXPECT_DOUBLE_EQ(util["cpu/1/utilization"], 25.0);
  // No time passed: 0, not NaN.
  EXPECT_DOUBLE_EQ(AsMap(CpuUtilization(*after, *after))["cpu/utilization"], 0.0);
}

TEST(ProcReaders, MemoryFollowsPsutil) {
  auto memory = ReadMemoryMetrics(FakeProc(kStat0) + "/meminfo");
  ASSERT_TRUE(memory.ok()) << memory.status();
  auto m = AsMap(*memory);
  EXPECT_DOUBLE_EQ(m["memory/total"], 16.0);
  EXPECT_DOUBLE_EQ(m["memory/available"], 8.0);
  EXPECT_DOUBLE_EQ(m["memory/used"], 16.0 - 4 - 1 - 2 - 1);
  EXPECT_DOUBLE_EQ(m["memory/percent"], 50.0);
}

TEST(ProcReaders, Rss) {
  auto rss = ReadRssBytes(FakeProc(kStat0) + "/self/status");
  ASSERT_TRUE(rss.ok()) << rss.status();
  EXPECT_EQ(*rss, 512 << 20);
}

TEST(ProcReaders, BadInputsNameTheFileAndLine) {
  const std::string root = TempDir();
  std::ofstream(root + "/nocpu") << "intr 1\n";
  std::ofstream(root + "/badnum") << "cpu  1 2 x 4\n";
  std::ofstream(root + "/short") << "cpu  1 2\n";
  std::ofstream(root + "/order") << "cpu0 1 2 3 4\ncpu 1 2 3 4\n";
  std::ofstream(root + "/meminfo") << "MemFree: 1 kB\n";
  std::ofstream(root + "/status") << "Name:\tx\n";
  auto check = [](const absl::Status& s, const std::string& needle) {
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find(needle), std::string::npos) << s;
  };
  check(ReadCpuTimes(root + "/nocpu").status(), "nocpu: no \"cpu\" line");
  check(ReadCpuTimes(root + "/badnum").status(), "badnum:1: bad number \"x\"");
  check(ReadCpuTimes(root + "/short").status(), "short:1: too few fields");
  check(ReadCpuTimes(root + "/order").status(), "order:1: the aggregate");
  check(ReadCpuTimes(root + "/missing").status(), "missing");
  check(ReadMemoryMetrics(root + "/meminfo").status(), "no MemTotal");
  check(ReadRssBytes(root + "/status").status(), "no VmRSS");
}

TEST(ProcReaders, RealProcWorks) {
  auto cpu = ReadCpuTimes("/proc/stat");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_GE(cpu->total.size(), 2u);
  auto memory = ReadMemoryMetrics("/proc/meminfo");
  ASSERT_TRUE(memory.ok());
  EXPECT_GT(AsMap(*memory)["memory/total"], 0.1);
  auto rss = ReadRssBytes("/proc/self/status");
  ASSERT_TRUE(rss.ok());
  EXPECT_GT(*rss, 0);
}

class CountingSink : public MetricSink {
 public:
  absl::Status Log(int64_t, const Scalars&) override { return absl::OkStatus(); }
  absl::Status LogConfig(const nlohmann::json&) override { return absl::OkStatus(); }
  absl::Status LogSystem(const Scalars& scalars) override {
    absl::MutexLock lock(&mu);
    last = scalars;
    ++count;
    return fail ? absl::InternalError("sink down") : absl::OkStatus();
  }
  absl::Status Flush() override { return absl::OkStatus(); }
  absl::Status Close() override { return absl::OkStatus(); }
  bool WaitFor(int n) {
    absl::MutexLock lock(&mu);
    target = n;
    // A generous bound only so that a broken sampler fails instead of hanging the test.
    return mu.AwaitWithTimeout(absl::Condition(
                                   +[](CountingSink* s) { return s->count >= s->target; }, this),
                               absl::Seconds(20));
  }
  absl::Mutex mu;
  Scalars last;
  int count = 0;
  int target = 0;
  bool fail = false;
};

TEST(SystemMetricsSampler, SamplesIntoTheSinkUntilStopped) {
  CountingSink sink;
  SystemMetricsOptions options;
  options.interval = absl::Milliseconds(5);
  options.proc_root = FakeProc(kStat0);
  options.extra = [] { return Scalars{{"gpu/0/utilization", 42.0}}; };
  SystemMetricsSampler sampler(options, &sink);
  ASSERT_TRUE(sampler.Start().ok());
  EXPECT_EQ(sampler.Start().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(sink.WaitFor(3));
  sampler.Stop();
  int after_stop;
  std::map<std::string, double> last;
  {
    absl::MutexLock lock(&sink.mu);
    after_stop = sink.count;
    last = AsMap(sink.last);
  }
  EXPECT_EQ(sampler.samples_logged(), after_stop);
  EXPECT_EQ(sampler.errors(), 0);
  EXPECT_DOUBLE_EQ(last["gpu/0/utilization"], 42.0);
  EXPECT_DOUBLE_EQ(last["process/rss"], 0.5);
  EXPECT_EQ(last.count("cpu/1/utilization"), 1u);
  sampler.Stop();  // idempotent
  absl::MutexLock lock(&sink.mu);
  EXPECT_EQ(sink.count, after_stop);  // nothing after Stop()
}

TEST(SystemMetricsSampler, StopWakesALongInterval) {
  CountingSink sink;
  SystemMetricsOptions options;
  options.interval = absl::Hours(1);
  SystemMetricsSampler sampler(options, &sink);
  ASSERT_TRUE(sampler.Start().ok());
  sampler.Stop();  // returns without waiting an hour
  EXPECT_EQ(sampler.samples_logged(), 0);
}

TEST(SystemMetricsSampler, ErrorsAreCountedAndSamplingContinues) {
  CountingSink sink;
  sink.fail = true;
  SystemMetricsOptions options;
  options.interval = absl::Milliseconds(5);
  options.proc_root = FakeProc(kStat0);
  SystemMetricsSampler sampler(options, &sink);
  ASSERT_TRUE(sampler.Start().ok());
  ASSERT_TRUE(sink.WaitFor(2));
  sampler.Stop();
  EXPECT_GE(sampler.errors(), 2);
  EXPECT_EQ(sampler.samples_logged(), 0);
}

TEST(SystemMetricsSampler, StartFailsOnUnreadableProc) {
  CountingSink sink;
  SystemMetricsOptions options;
  options.proc_root = TempDir() + "/nothing";
  SystemMetricsSampler sampler(options, &sink);
  absl::Status s = sampler.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nothing/stat"), std::string::npos) << s;
}

TEST(SystemMetricsSampler, FirstSampleHasNoCpuThenCpuAppears) {
  CountingSink sink;
  SystemMetricsOptions options;
  options.proc_root = FakeProc(kStat0);
  options.per_core = false;
  SystemMetricsSampler sampler(options, &sink);
  auto first = sampler.SampleOnce();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(AsMap(*first).count("cpu/utilization"), 0u);
  std::ofstream(options.proc_root + "/stat") << kStat1;
  auto second = sampler.SampleOnce();
  ASSERT_TRUE(second.ok());
  auto m = AsMap(*second);
  EXPECT_DOUBLE_EQ(m["cpu/utilization"], 50.0);
  EXPECT_EQ(m.count("cpu/0/utilization"), 0u);
}

}  // namespace
}  // namespace cf::train
