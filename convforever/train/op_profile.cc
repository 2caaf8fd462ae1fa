#include "convforever/train/op_profile.h"

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include <torch/csrc/autograd/profiler_kineto.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "glog/logging.h"  // after LibTorch's headers: c10's LOG macros must not win
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

namespace prof = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

absl::StatusOr<ProfileWindow> ParseProfileSteps(const std::string& spec) {
  const std::vector<std::string> parts = absl::StrSplit(spec, ':');
  ProfileWindow w;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &w.first) ||
      !absl::SimpleAtoi(parts[1], &w.end) || w.first < 0 || w.end <= w.first) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--profile_steps=", spec, ": expected FIRST:END with 0 <= FIRST < END (steps [FIRST, END))"));
  }
  return w;
}

std::vector<OpTime> AggregateOpTimes(std::vector<OpEvent> events) {
  // Per thread, in start order; an enclosing event sorts before the events it contains (same
  // start: the longer one first).
  std::sort(events.begin(), events.end(), [](const OpEvent& a, const OpEvent& b) {
    if (a.thread != b.thread) return a.thread < b.thread;
    if (a.start_ns != b.start_ns) return a.start_ns < b.start_ns;
    return a.end_ns > b.end_ns;
  });
  std::map<std::string, OpTime> by_name;
  std::vector<double> self(events.size());
  std::vector<size_t> open;  // indices of the enclosing events, innermost last
  for (size_t i = 0; i < events.size(); ++i) {
    const OpEvent& e = events[i];
    while (!open.empty() && (events[open.back()].thread != e.thread ||
                             events[open.back()].end_ns <= e.start_ns)) {
      open.pop_back();
    }
    const double us = static_cast<double>(e.end_ns - e.start_ns) / 1e3;
    self[i] = us;
    if (!open.empty()) self[open.back()] -= us;
    open.push_back(i);
  }
  for (size_t i = 0; i < events.size(); ++i) {
    OpTime& t = by_name[events[i].name];
    t.name = events[i].name;
    ++t.calls;
    t.total_us += static_cast<double>(events[i].end_ns - events[i].start_ns) / 1e3;
    t.self_us += self[i];
  }
  std::vector<OpTime> out;
  out.reserve(by_name.size());
  for (auto& [name, t] : by_name) out.push_back(std::move(t));
  std::sort(out.begin(), out.end(), [](const OpTime& a, const OpTime& b) {
    return a.self_us != b.self_us ? a.self_us > b.self_us : a.name < b.name;
  });
  return out;
}

OpProfiler::OpProfiler(ProfileWindow window, std::string dir)
    : window_(window), dir_(std::move(dir)) {}

OpProfiler::~OpProfiler() {
  if (!running_) return;
  (void)prof::disableProfiler();
  LOG(WARNING) << "--profile_steps=" << window_.first << ":" << window_.end
               << ": the run ended inside the window, no profile written to " << dir_;
}

void OpProfiler::BeforeStep(int64_t step) {
  if (running_ || step != window_.first) return;
  const ProfilerConfig config(ProfilerState::KINETO);
  const std::set<ActivityType> activities = {ActivityType::CPU};
  // Kineto logs an error when it finds no GPU; only CPU ops are asked for here.
  setenv("KINETO_LOG_LEVEL", "5", /*overwrite=*/0);
  prof::prepareProfiler(config, activities);
  prof::enableProfiler(config, activities);
  running_ = true;
  start_ns_ = NowNs();
}

absl::Status OpProfiler::AfterStep(int64_t step) {
  if (!running_ || step + 1 != window_.end) return absl::OkStatus();
  const double wall_us = static_cast<double>(NowNs() - start_ns_) / 1e3;
  std::unique_ptr<prof::ProfilerResult> result = prof::disableProfiler();
  running_ = false;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return absl::InternalError(absl::StrCat("--profile_steps: cannot create ", dir_, ": ", ec.message()));

  std::vector<OpEvent> events;
  for (const auto& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CPU || e.endNs() < e.startNs()) continue;
    events.push_back({e.name(), e.startThreadId(), e.startNs(), e.endNs()});
  }
  const std::vector<OpTime> ops = AggregateOpTimes(std::move(events));
  const int64_t steps = window_.end - window_.first;
  nlohmann::json j = {{"steps", steps}, {"wall_us", wall_us}, {"ops", nlohmann::json::array()}};
  for (const OpTime& t : ops) {
    j["ops"].push_back({{"name", t.name}, {"calls", t.calls}, {"self_us", t.self_us},
                        {"total_us", t.total_us}});
  }
  const std::string trace = dir_ + "/trace.json";
  result->save(trace);
  if (!std::filesystem::exists(trace)) {
    return absl::InternalError(absl::StrCat("--profile_steps: the profiler wrote no ", trace));
  }
  RETURN_IF_ERROR(base::WriteFileAtomically(dir_ + "/ops.json", j.dump(1) + "\n"));

  std::string table = absl::StrFormat("profile of steps %d..%d: %.2f ms/step wall; top ops by self "
                                      "time per step:",
                                      window_.first, window_.end - 1, wall_us / 1e3 / steps);
  for (size_t i = 0; i < ops.size() && i < 15; ++i) {
    absl::StrAppendFormat(&table, "\n  %8.3f ms  %6.1f calls  %s", ops[i].self_us / 1e3 / steps,
                          static_cast<double>(ops[i].calls) / steps, ops[i].name);
  }
  LOG(INFO) << table << "\n  (all ops: " << dir_ << "/ops.json, trace: " << trace << ")";
  return absl::OkStatus();
}

}  // namespace cf::train
