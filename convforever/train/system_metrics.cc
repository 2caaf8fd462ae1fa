#include "convforever/train/system_metrics.h"

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convforever/base/status_macros.h"
#include "glog/logging.h"

namespace cf::train {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "MemTotal:       16318480 kB" -> {"MemTotal", 16318480 * 1024}.
absl::StatusOr<std::map<std::string, int64_t>> ReadKbFields(const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(path));
  std::map<std::string, int64_t> fields;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<absl::string_view> parts =
        absl::StrSplit(lines[i], absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (parts.size() < 2 || !absl::EndsWith(parts[0], ":")) continue;
    int64_t value;
    if (!absl::SimpleAtoi(parts[1], &value)) continue;  // non-numeric fields (Name:, State:)
    if (parts.size() >= 3 && parts[2] == "kB") value *= 1024;
    parts[0].remove_suffix(1);
    fields[std::string(parts[0])] = value;
  }
  return fields;
}

}  // namespace

absl::StatusOr<CpuTimes> ReadCpuTimes(const std::string& proc_stat_path) {
  ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(proc_stat_path));
  CpuTimes times;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!absl::StartsWith(lines[i], "cpu")) continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(lines[i], absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const bool aggregate = parts[0] == "cpu";
    if (aggregate != times.total.empty()) {
      return absl::DataLossError(
          absl::StrCat(proc_stat_path, ":", i + 1, ": the aggregate \"cpu\" line must come first"));
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already
    // inside user/nice, so only the first eight count.
    if (parts.size() < 5) {
      return absl::DataLossError(
          absl::StrCat(proc_stat_path, ":", i + 1, ": too few fields: ", lines[i]));
    }
    uint64_t values[8] = {0};
    for (size_t f = 1; f < parts.size() && f <= 8; ++f) {
      if (!absl::SimpleAtoi(parts[f], &values[f - 1])) {
        return absl::DataLossError(
            absl::StrCat(proc_stat_path, ":", i + 1, ": bad number \"", parts[f], "\""));
      }
    }
    uint64_t total = 0;
    for (uint64_t v : values) total += v;
    const uint64_t idle = values[3] + values[4];  // idle + iowait
    times.total.push_back(total);
    times.busy.push_back(total - idle);
  }
  if (times.total.empty()) {
    return absl::DataLossError(absl::StrCat(proc_stat_path, ": no \"cpu\" line"));
  }
  return times;
}

Scalars CpuUtilization(const CpuTimes& before, const CpuTimes& after) {
  auto percent = [&](size_t i) {
    if (i >= before.total.size() || i >= after.total.size()) return 0.0;
    const double total = static_cast<double>(after.total[i]) - before.total[i];
    const double busy = static_cast<double>(after.busy[i]) - before.busy[i];
    return total > 0 ? 100.0 * busy / total : 0.0;
  };
  Scalars out = {{"cpu/utilization", percent(0)}};
  if (before.total.size() == after.total.size()) {
    for (size_t i = 1; i < after.total.size(); ++i) {
      out.emplace_back(absl::StrCat("cpu/", i - 1, "/utilization"), percent(i));
    }
  }
  return out;
}

absl::StatusOr<Scalars> ReadMemoryMetrics(const std::string& meminfo_path) {
  ASSIGN_OR_RETURN(auto fields, ReadKbFields(meminfo_path));
  for (const char* needed : {"MemTotal", "MemFree"}) {
    if (!fields.count(needed)) {
      return absl::DataLossError(absl::StrCat(meminfo_path, ": no ", needed, " field"));
    }
  }
  const double total = fields["MemTotal"], free = fields["MemFree"];
  const double cached = fields["Cached"] + fields["SReclaimable"];
  // Kernels before 3.14 lack MemAvailable: psutil then estimates; free + cached is close enough.
  const double available = fields.count("MemAvailable") ? fields["MemAvailable"] : free + cached;
  double used = total - free - fields["Buffers"] - cached;
  if (used < 0) used = total - free;
  return Scalars{{"memory/used", used / kGiB},
                 {"memory/total", total / kGiB},
                 {"memory/available", available / kGiB},
                 {"memory/percent", total > 0 ? 100.0 * (total - available) / total : 0.0}};
}

absl::StatusOr<int64_t> ReadRssBytes(const std::string& status_path) {
  ASSIGN_OR_RETURN(auto fields, ReadKbFields(status_path));
  if (!fields.count("VmRSS")) return absl::DataLossError(absl::StrCat(status_path, ": no VmRSS"));
  return fields["VmRSS"];
}

SystemMetricsSampler::SystemMetricsSampler(SystemMetricsOptions options, MetricSink* sink)
    : options_(std::move(options)), sink_(sink) {}

SystemMetricsSampler::~SystemMetricsSampler() { Stop(); }

absl::Status SystemMetricsSampler::Start() {
  ASSIGN_OR_RETURN(CpuTimes first, ReadCpuTimes(options_.proc_root + "/stat"));
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return absl::FailedPreconditionError("sampler already started");
  previous_cpu_ = std::move(first);
  has_previous_cpu_ = true;
  stop_ = false;
  thread_ = std::thread(&SystemMetricsSampler::Run, this);
  return absl::OkStatus();
}

void SystemMetricsSampler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<Scalars> SystemMetricsSampler::SampleOnce() {
  Scalars out;
  ASSIGN_OR_RETURN(CpuTimes cpu, ReadCpuTimes(options_.proc_root + "/stat"));
  {
    absl::MutexLock lock(&mu_);
    if (has_previous_cpu_) {
      Scalars util = CpuUtilization(previous_cpu_, cpu);
      if (!options_.per_core) util.resize(1);
      out = std::move(util);
    }
    previous_cpu_ = std::move(cpu);
    has_previous_cpu_ = true;
  }
  ASSIGN_OR_RETURN(Scalars memory, ReadMemoryMetrics(options_.proc_root + "/meminfo"));
  out.insert(out.end(), memory.begin(), memory.end());
  ASSIGN_OR_RETURN(int64_t rss, ReadRssBytes(options_.proc_root + "/self/status"));
  out.emplace_back("process/rss", rss / kGiB);
  if (options_.extra) {
    Scalars extra = options_.extra();
    out.insert(out.end(), extra.begin(), extra.end());
  }
  return out;
}

void SystemMetricsSampler::Run() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.interval);
      if (stop_) return;
    }
    absl::StatusOr<Scalars> sample = SampleOnce();
    absl::Status status = sample.ok() ? sink_->LogSystem(*sample) : sample.status();
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      ++samples_logged_;
    } else if (errors_++ == 0) {
      LOG(WARNING) << "system metrics: " << status << " (further errors are counted, not logged)";
    }
  }
}

int64_t SystemMetricsSampler::samples_logged() const {
  absl::MutexLock lock(&mu_);
  return samples_logged_;
}

int64_t SystemMetricsSampler::errors() const {
  absl::MutexLock lock(&mu_);
  return errors_;
}

}  // namespace cf::train
