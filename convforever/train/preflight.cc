// The preflight runner: the checks in order, each guarded, and the table. The flags and time
// checks live here (they are a few lines each); the others have a file each.
#include "convforever/train/preflight.h"

#include <algorithm>
#include <cstdio>
#include <functional>

#include <c10/util/Exception.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "convforever/http/headers.h"
#include "convforever/train/flags_config.h"
#include "convforever/train/preflight_checks.h"
#include "convforever/train/run_setup.h"
#include "glog/logging.h"

namespace cf::train {

const char* CheckStatusName(CheckStatus s) {
  switch (s) {
    case CheckStatus::kOk: return "ok";
    case CheckStatus::kFail: return "FAIL";
    case CheckStatus::kWarn: return "warn";
    case CheckStatus::kSkip: return "skip";
  }
  return "?";
}

namespace preflight {

std::string Bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrFormat("%.0f B", bytes) : absl::StrFormat("%.3g %s", bytes, units[u]);
}

std::string Duration(double seconds) {
  if (seconds < 60) return absl::StrFormat("%.0f s", seconds);
  const int64_t minutes = static_cast<int64_t>(seconds / 60 + 0.5);
  if (minutes < 60) return absl::StrFormat("%d min", minutes);
  if (minutes < 48 * 60) return absl::StrFormat("%d h %d min", minutes / 60, minutes % 60);
  return absl::StrFormat("%.1f days", seconds / 86400);
}

CheckRow CheckFlags(Context& c) {
  std::vector<std::string> parts;
  if (!c.preflight.deepspeed_config.empty()) {
    if (absl::Status s = ApplyDeepSpeedConfig(c.preflight.deepspeed_config, &c.options); !s.ok()) {
      c.flags_ok = false;
      return {"flags", CheckStatus::kFail,
              absl::StrCat("--deepspeed_config: ", http::RedactUrlsInText(std::string(s.message())))};
    }
    parts.push_back(absl::StrCat("DeepSpeed config ", c.preflight.deepspeed_config, " applied"));
  }
  if (absl::Status s = ValidateOptions(c.options); !s.ok()) {
    c.flags_ok = false;
    return {"flags", CheckStatus::kFail, http::RedactUrlsInText(std::string(s.message()))};
  }
  const TrainerOptions& o = c.options;
  parts.insert(parts.begin(),
               absl::StrFormat("valid: %s, %s, micro-batch %d x %d accumulation, %s on %s", o.model,
                               o.data, o.micro_batch_size, o.gradient_accumulation_steps,
                               o.precision, o.device));
  return {"flags", CheckStatus::kOk, absl::StrJoin(parts, "; ")};
}

// The learning-rate schedule as RunSetup builds it for the run's real step counts (which only the
// data knows): a warmup longer than the run is found here, not after the job starts.
CheckRow CheckSchedule(Context& c) {
  if (!c.epoch_steps) return {"schedule", CheckStatus::kSkip, "the run's step count is unknown (data check)"};
  absl::StatusOr<optim::ScheduleOptions> s = RunSchedule(c.options, *c.epoch_steps, c.steps_per_epoch, c.total_steps);
  if (!s.ok()) {
    return {"schedule", CheckStatus::kFail,
            absl::StrCat(s.status().message(), " (", c.total_steps, " steps at world size ", c.world_size, ")")};
  }
  std::string warmup = "no warmup";
  if (s->warmup_steps > 0) warmup = absl::StrCat("warmup ", s->warmup_steps, " steps");
  if (s->warmup_epochs > 0) warmup = absl::StrCat("warmup ", s->warmup_epochs, " epochs");
  return {"schedule", CheckStatus::kOk,
          absl::StrFormat("%s over %d steps, %s, lr %g to %g", s->type, s->total_steps, warmup, s->base_lr, s->min_lr)};
}

// Optimizer steps x seconds per step at the measured rate (the slower of the step and the
// loader); every rank runs its steps at once, so the world size is in the step count.
CheckRow CheckTime(Context& c) {
  if (c.total_steps <= 0) return {"time", CheckStatus::kSkip, "the run's step count is unknown (data check)"};
  if (c.step_images_per_s <= 0) return {"time", CheckStatus::kSkip, "no step rate was measured (microbatch check)"};
  const TrainerOptions& o = c.options;
  double rate = c.step_images_per_s;
  std::string limit = "step";
  if (c.loader_images_per_s > 0 && c.loader_images_per_s < rate) {
    rate = c.loader_images_per_s;
    limit = "loader";
  }
  const double images_per_step = static_cast<double>(o.micro_batch_size * o.gradient_accumulation_steps);
  const double step_seconds = images_per_step / rate;
  const double total = step_seconds * static_cast<double>(c.total_steps);
  return {"time", CheckStatus::kOk,
          absl::StrFormat("%s: %d steps x %.3g s (%.0f images/s per rank, %s-bound, world size %d); "
                          "training steps only, evaluation not counted",
                          Duration(total), c.total_steps, step_seconds, rate, limit, c.world_size)};
}

}  // namespace preflight

namespace {

// A check that throws (a LibTorch error escaping a library) still gives its row.
CheckRow Guarded(const std::string& name, const std::function<CheckRow()>& check) {
  try {
    return check();
  } catch (const c10::Error& e) {
    return {name, CheckStatus::kFail, http::RedactUrlsInText(e.what_without_backtrace())};
  } catch (const std::exception& e) {
    return {name, CheckStatus::kFail, http::RedactUrlsInText(e.what())};
  }
}

}  // namespace

std::vector<CheckRow> RunPreflight(const TrainerOptions& options, const PreflightOptions& p) {
  preflight::Context c;
  c.options = options;
  c.preflight = p;
  if (!p.hostfile.empty()) {
    absl::StatusOr<std::vector<preflight::Host>> hosts = preflight::ReadHostfile(p.hostfile);
    if (hosts.ok()) {
      c.hosts = *std::move(hosts);
      c.world_size = 0;
      c.local_ranks = 0;
      for (const preflight::Host& h : c.hosts) {
        c.world_size += h.slots;
        if (h.local) c.local_ranks += h.slots;
      }
      c.local_ranks = std::max(1, c.local_ranks);
    } else {
      c.hostfile_error = std::string(hosts.status().message());
    }
  }
  using Check = CheckRow (*)(preflight::Context&);
  const std::pair<const char*, Check> checks[] = {
      {"flags", preflight::CheckFlags},       {"data", preflight::CheckData},
      {"schedule", preflight::CheckSchedule},
      {"classes", preflight::CheckClasses},   {"heldout", preflight::CheckHeldOut},
      {"microbatch", preflight::CheckMicroBatch}, {"input", preflight::CheckInput},
      {"disk", preflight::CheckDisk},         {"hub", preflight::CheckHub},
      {"hosts", preflight::CheckHosts},       {"allreduce", preflight::CheckAllReduce},
      {"time", preflight::CheckTime},
  };
  std::vector<CheckRow> rows;
  for (const auto& [name, check] : checks) {
    LOG(INFO) << "preflight: " << name;
    rows.push_back(Guarded(name, [&, check = check] { return check(c); }));
  }
  return rows;
}

std::string FormatPreflightTable(const std::vector<CheckRow>& rows) {
  size_t name_width = 5;  // "check"
  for (const CheckRow& r : rows) name_width = std::max(name_width, r.name.size());
  std::string out = absl::StrFormat("%-*s  %-6s  %s\n", name_width, "check", "status", "detail");
  out += absl::StrCat(std::string(name_width, '-'), "  ------  ", std::string(40, '-'), "\n");
  std::vector<std::string> failed;
  int counts[4] = {0, 0, 0, 0};
  for (const CheckRow& r : rows) {
    out += absl::StrFormat("%-*s  %-6s  %s\n", name_width, r.name, CheckStatusName(r.status), r.detail);
    ++counts[static_cast<int>(r.status)];
    if (r.status == CheckStatus::kFail) failed.push_back(r.name);
  }
  if (failed.empty()) {
    absl::StrAppendFormat(&out, "preflight: passed (%d ok, %d warn, %d skip)\n", counts[0], counts[2],
                          counts[3]);
  } else {
    absl::StrAppend(&out, "preflight: FAILED: ", absl::StrJoin(failed, ", "), "\n");
  }
  return out;
}

int PreflightMain(const TrainerOptions& options, const PreflightOptions& preflight) {
  const std::vector<CheckRow> rows = RunPreflight(options, preflight);
  const std::string table = FormatPreflightTable(rows);
  std::fputs(table.c_str(), stdout);
  std::fflush(stdout);
  for (const CheckRow& r : rows) {
    if (r.status == CheckStatus::kFail) return 1;
  }
  return 0;
}

}  // namespace cf::train
