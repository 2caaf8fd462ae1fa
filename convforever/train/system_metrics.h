// System metrics (CPU, memory, process RSS, GPU through a hook) sampled on a clock into sinks.
//
// Readers parse Linux's /proc text files (/proc/stat, /proc/meminfo, /proc/self/status); the
// root is a parameter so tests feed their own files. Names and units follow Trackio's system
// metrics (trackio/cpu.py, which uses psutil), so its dashboard plots ours the same way:
//   cpu/utilization, cpu/<i>/utilization   percent busy over the last interval (all cores, each)
//   memory/used, memory/total, memory/available   GiB (used = total - free - buffers - cached,
//                                                   as psutil computes it)
//   memory/percent                          (total - available) / total * 100
//   process/rss                             GiB resident in this process (VmRSS)
// GPU metrics come from `SystemMetricsOptions::extra`, which a CUDA build sets (e.g. to report
// gpu/<i>/allocated_memory from LibTorch's caching allocator); this package stays free of CUDA.
//
// SystemMetricsSampler runs one background thread that wakes every `interval`, samples, and calls
// sink->LogSystem(). Stop() (and the destructor) wakes it at once and joins: no sample is logged
// after Stop() returns. A failing read or sink is logged once (glog) and counted; sampling goes on.
#ifndef CONVFOREVER_TRAIN_SYSTEM_METRICS_H_
#define CONVFOREVER_TRAIN_SYSTEM_METRICS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "convforever/train/metrics.h"

namespace cf::train {

// Cumulative jiffies from /proc/stat: index 0 is the aggregate "cpu" line, i+1 is core i.
struct CpuTimes {
  std::vector<uint64_t> busy;
  std::vector<uint64_t> total;
};

absl::StatusOr<CpuTimes> ReadCpuTimes(const std::string& proc_stat_path);
// Percent busy between two readings: cpu/utilization and cpu/<i>/utilization. A core whose
// counters did not advance reports 0. Mismatched readings (CPU hotplug) give only the aggregate.
Scalars CpuUtilization(const CpuTimes& before, const CpuTimes& after);
// memory/used, memory/total, memory/available (GiB) and memory/percent from /proc/meminfo.
absl::StatusOr<Scalars> ReadMemoryMetrics(const std::string& meminfo_path);
// VmRSS of a process in bytes, from /proc/<pid>/status.
absl::StatusOr<int64_t> ReadRssBytes(const std::string& status_path);

struct SystemMetricsOptions {
  absl::Duration interval = absl::Seconds(10);
  std::string proc_root = "/proc";
  bool per_core = true;  // also cpu/<i>/utilization
  // Extra metrics appended to every sample (GPU). Called on the sampler thread.
  std::function<Scalars()> extra;
};

class SystemMetricsSampler {
 public:
  // `sink` must outlive the sampler.
  SystemMetricsSampler(SystemMetricsOptions options, MetricSink* sink);
  ~SystemMetricsSampler();
  SystemMetricsSampler(const SystemMetricsSampler&) = delete;
  SystemMetricsSampler& operator=(const SystemMetricsSampler&) = delete;

  // Takes the first CPU reading and starts the thread. FailedPrecondition if already started;
  // an unreadable /proc/stat is an error here rather than a silent thread.
  absl::Status Start();
  // Wakes and joins the thread; idempotent.
  void Stop();

  // One sample: CPU use since the previous SampleOnce()/Start() (omitted on the very first
  // call), memory, RSS, extra. Used by the thread; callable directly when no thread runs.
  absl::StatusOr<Scalars> SampleOnce();

  int64_t samples_logged() const;
  int64_t errors() const;

 private:
  void Run();

  const SystemMetricsOptions options_;
  MetricSink* const sink_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  bool stop_ = false;
  int64_t samples_logged_ = 0;
  int64_t errors_ = 0;
  bool has_previous_cpu_ = false;
  CpuTimes previous_cpu_;
};

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_SYSTEM_METRICS_H_
