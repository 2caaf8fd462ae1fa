#include "convforever/sweep/plan_report.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "convforever/sweep/run_status.h"
#include "convforever/sweep/slurm_script.h"

namespace cf::sweep {
namespace {

bool IsDone(const PlannedRun& run) {
  absl::StatusOr<std::optional<nlohmann::json>> summary = ReadRunSummary(run.run_dir);
  return summary.ok() && IsCompleted(*summary);
}

}  // namespace

void PrintPlan(const SweepOptions& options, const SweepPlan& plan, std::FILE* out) {
  int done = 0;
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
  }
  std::fprintf(out, "%zu rows, %d DONE, %zu to run (dry run: nothing started) in %s\n",
               plan.runs.size(), done, plan.runs.size() - done, options.out_dir.c_str());
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
