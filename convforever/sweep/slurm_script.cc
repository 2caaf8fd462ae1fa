#include "convforever/sweep/slurm_script.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cf::sweep {

std::string SlurmScript(const SweepOptions& options, const std::vector<const PlannedRun*>& runs,
                        const std::string& workdir) {
  std::vector<std::string> indices;
  for (const PlannedRun* run : runs) indices.push_back(absl::StrCat(run->row));
  const std::string stem = std::filesystem::path(options.csv_path).stem().string();
  std::string s = "#!/bin/bash\n";
  absl::StrAppend(&s, "# Written by the ConvForever sweep runner for ", options.csv_path, ": one array task\n",
                  "# per row not yet DONE (task id = row). Add the resources your cluster needs\n",
                  "# (#SBATCH --gres=gpu:N, --cpus-per-task, --time, --partition) below.\n",
                  "#SBATCH --job-name=sweep-", stem, "\n",
                  "#SBATCH --array=", absl::StrJoin(indices, ","), "\n",
                  "#SBATCH --output=", options.out_dir, "/runs/slurm-%A_%a.out\n",
                  "set -euo pipefail\n",
                  "cd ", ShellJoin({workdir}), "\n",
                  "case \"${SLURM_ARRAY_TASK_ID:?run this script with sbatch}\" in\n");
  for (const PlannedRun* run : runs) {
    const std::string dir = ShellJoin({run->run_dir});
    absl::StrAppend(&s, "  ", run->row, ")  # ", run->name, " (line ", run->line, ")\n",
                    "    mkdir -p ", dir, "\n",
                    "    exec ", ShellJoin(run->command), " >>", dir, "/train.log 2>&1 ;;\n");
  }
  absl::StrAppend(&s, "  *) echo \"no row $SLURM_ARRAY_TASK_ID in this sweep\" >&2; exit 2 ;;\n",
                  "esac\n");
  return s;
}

}  // namespace cf::sweep
