#include "convforever/sweep/plan_report.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "convforever/sweep/child_process.h"
#include "convforever/sweep/run_status.h"
#include "convforever/sweep/slurm_script.h"

namespace cf::sweep {
namespace {

bool IsDone(const PlannedRun& run) {
  absl::StatusOr<std::optional<nlohmann::json>> summary = ReadRunSummary(run.run_dir);
  return summary.ok() && IsCompleted(*summary);
}

// The row's trainer command (without the launcher) in estimate mode: one line of its cost, or why
// there is none. Adds the estimate's totals to `hours` and `usd`.
std::string EstimateRow(const SweepOptions& options, const SweepPlan& plan, const PlannedRun& run,
                        double* hours, double* usd) {
  std::vector<std::string> argv;
  bool in_trainer = false;
  for (const std::string& a : run.command) {
    in_trainer = in_trainer || a == options.train_binary;
    if (in_trainer && !absl::StartsWith(a, "--resume=")) argv.push_back(a);
  }
  if (argv.empty()) return "estimate: no trainer in the command";
  argv.push_back("--estimate");
  argv.push_back("--format=json");
  if (plan.ranks > 1) argv.push_back(absl::StrCat("--gpus=", plan.ranks));
  argv.insert(argv.end(), options.estimate_flags.begin(), options.estimate_flags.end());
  absl::StatusOr<Captured> r = RunAndCapture(argv);
  if (!r.ok()) return absl::StrCat("estimate: ", r.status().message());
  if (r->exit_code != 0) {
    std::string why = r->err;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    why = why.substr(why.rfind('\n') + 1);  // the last line: the trainer's error
    return absl::StrCat("estimate: unavailable (", why.empty() ? "exit code " + std::to_string(r->exit_code) : why, ")");
  }
  nlohmann::json j = nlohmann::json::parse(r->out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.contains("rows") || j["rows"].empty()) return "estimate: unreadable output";
  const nlohmann::json& row = j["rows"][0];
  const double gpu_hours = row.value("gpu_hours", 0.0);
  const double dollars = row.value("usd", 0.0);
  *hours += gpu_hours;
  *usd += dollars;
  std::string memory = "memory unknown";
  if (row["memory"].is_object()) {
    memory = absl::StrFormat("%.1f GB per GPU", row["memory"].value("total_gb", 0.0));
    if (row["fits"].is_boolean()) absl::StrAppend(&memory, row["fits"].get<bool>() ? " (fits)" : " (does NOT fit)");
  }
  return absl::StrFormat("estimate on %s: %.3g GPU-hours, $%.2f, %s",
                         j["target"].value("gpu", std::string("?")), gpu_hours, dollars, memory);
}

}  // namespace

void PrintPlan(const SweepOptions& options, const SweepPlan& plan, std::FILE* out) {
  int done = 0;
  double hours = 0, usd = 0;
  for (const PlannedRun& run : plan.runs) {
    std::string status = "PENDING (new)";
    if (IsDone(run)) {
      status = "DONE (skipped)";
      ++done;
    } else if (const std::string ckpt = LatestCheckpoint(run.run_dir); !ckpt.empty()) {
      status = "PENDING (resumes from " + std::filesystem::path(ckpt).filename().string() + ")";
    }
    std::fprintf(out, "row %zu (line %d)  %s  %s\n  %s\n", run.row, run.line, run.name.c_str(),
                 status.c_str(), ShellJoin(run.command).c_str());
    if (!IsDone(run)) {
      std::fprintf(out, "  %s\n", EstimateRow(options, plan, run, &hours, &usd).c_str());
    }
  }
  std::fprintf(out, "%zu rows, %d DONE, %zu to run (dry run: nothing started) in %s\n",
               plan.runs.size(), done, plan.runs.size() - done, options.out_dir.c_str());
  if (hours > 0) std::fprintf(out, "estimated for the rows to run: %.3g GPU-hours, $%.2f\n", hours, usd);
}

absl::Status WriteSlurmScript(const SweepOptions& options, const SweepPlan& plan, std::FILE* out) {
  std::vector<const PlannedRun*> todo;
  for (const PlannedRun& run : plan.runs) {
    if (!IsDone(run)) todo.push_back(&run);
  }
  if (todo.empty()) {
    std::fprintf(out, "every row of %s is DONE; nothing to submit\n", options.csv_path.c_str());
    return absl::OkStatus();
  }
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir + "/runs", ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", options.out_dir, "/runs: ", ec.message()));
  }
  const std::string path = options.out_dir + "/sweep.sbatch";
  const std::string cwd = std::filesystem::current_path(ec).string();
  RETURN_IF_ERROR(base::WriteFileAtomically(path, SlurmScript(options, todo, cwd)));
  std::filesystem::permissions(path, std::filesystem::perms::owner_exec,
                               std::filesystem::perm_options::add, ec);
  std::fprintf(out,
               "wrote %s: a job array of %zu task(s), one per row not DONE (of %zu)\n"
               "submit it with:  sbatch %s\n"
               "afterwards, `sweep` with the same arguments (add --dry_run to only look) skips "
               "the DONE rows and writes results.csv\n",
               path.c_str(), todo.size(), plan.runs.size(), path.c_str());
  return absl::OkStatus();
}

}  // namespace cf::sweep
