// The sweep binary: one training run per row of a sweep table (CSV). Run as
//   tools/cf sweep FILE.csv [--recipe=NAME] [--out DIR] [--parallel N | --launch "-n 2" | --slurm]
//                  [--dry_run] [--scale_column COL=FACTOR] [-- trainer flags for every row]
// See convforever/sweep/README.md.
#include <sched.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "convforever/base/cli_help.h"
#include "convforever/base/status_macros.h"
#include "convforever/sweep/plan.h"
#include "convforever/sweep/plan_report.h"
#include "convforever/sweep/runner.h"
#include "convforever/sweep/trainer_flags.h"
#include "gflags/gflags.h"

DEFINE_string(recipe, "convforever_depth",
              "recipe name (convforever/train/recipes/NAME.flags under --recipes_dir) or a path to "
              "a .flags file");
DEFINE_string(recipes_dir, "convforever/train/recipes", "where recipe names are looked up");
DEFINE_string(out, "", "sweep directory (default runs/sweep-<table's file stem>)");
DEFINE_int32(parallel, 1, "rows trained at once (each gets --threads=cores/N, --num_workers=1)");
DEFINE_string(launch, "", "launcher arguments, e.g. \"-n 2\": each row runs data-parallel through "
                          "--launcher");
DEFINE_bool(slurm, false, "write DIR/sweep.sbatch (a job array of the rows not DONE); run nothing");
DEFINE_bool(dry_run, false, "print each row's name, status, command and cost estimate (train --estimate); run nothing");
DEFINE_string(estimate_flags, "", "--dry_run: flags for each row's estimate, e.g. \"--gpu=rtx4090 --samples=3000000\" (see tools/cf estimate)");
DEFINE_string(scale_column, "", "COL=FACTOR[,COL=FACTOR]: multiply a numeric column (integers stay "
                                "integers, at least 1), e.g. approx_num_layers=0.1 for a CPU");
DEFINE_string(train_binary, "bazel-bin/convforever/train/train", "the trainer binary");
DEFINE_string(launcher, "convforever/distributed/launch.sh", "the launcher for --launch");

namespace {

int Cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string Absolute(const std::string& path) {
  return std::filesystem::absolute(path).lexically_normal().string();
}

absl::StatusOr<cf::sweep::SweepOptions> OptionsFromFlags(const std::string& csv,
                                                         std::vector<std::string> overrides) {
  cf::sweep::SweepOptions o;
  o.csv_path = csv;
  std::string recipe = FLAGS_recipe;
  if (!absl::EndsWith(recipe, ".flags") && recipe.find('/') == std::string::npos) {
    recipe = FLAGS_recipes_dir + "/" + recipe + ".flags";
  }
  if (!std::filesystem::is_regular_file(recipe)) {
    return absl::NotFoundError("--recipe: no recipe file " + recipe);
  }
  o.recipe_flagfile = Absolute(recipe);
  o.train_binary = Absolute(FLAGS_train_binary);
  o.launcher = Absolute(FLAGS_launcher);
  o.launch_args = absl::StrSplit(FLAGS_launch, ' ', absl::SkipWhitespace());
  if (!o.launch_args.empty() && !std::filesystem::is_regular_file(o.launcher)) {
    return absl::NotFoundError("--launch: no launcher " + o.launcher + " (see --launcher)");
  }
  o.out_dir = FLAGS_out.empty() ? "runs/sweep-" + std::filesystem::path(csv).stem().string()
                                : FLAGS_out;
  o.out_dir = Absolute(o.out_dir);
  if (FLAGS_parallel < 1) return absl::InvalidArgumentError("--parallel must be at least 1");
  if (FLAGS_slurm && FLAGS_parallel != 1) {
    return absl::InvalidArgumentError("--slurm and --parallel: pick one (slurm runs every row at once)");
  }
  o.parallel = FLAGS_parallel;
  o.cores = Cores();
  ASSIGN_OR_RETURN(o.scales, cf::sweep::ParseColumnScales(FLAGS_scale_column));
  o.overrides = std::move(overrides);
  o.estimate_flags = absl::StrSplit(FLAGS_estimate_flags, ' ', absl::SkipWhitespace());
  return o;
}

// The trainer's flags (from the binary), then the plan.
absl::StatusOr<cf::sweep::SweepPlan> Prepare(const cf::sweep::SweepOptions& options) {
  ASSIGN_OR_RETURN(cf::sweep::TrainerFlags trainer_flags,
                   cf::sweep::QueryTrainerFlags(options.train_binary));
  return cf::sweep::BuildPlan(options, trainer_flags);
}

}  // namespace

int main(int argc, char** argv) {
  constexpr char kUsage[] =
      "trains one run per row of a sweep table.\n  tools/cf sweep FILE.csv [--recipe=NAME] "
      "[--out DIR] [--parallel N | --launch \"-n 2\" | --slurm] [--dry_run] "
      "[--scale_column COL=FACTOR] [-- trainer flags for every row]";
  if (cf::base::PrintHelpIfAsked(argc, argv, kUsage, "convforever/sweep/main.cc")) return 0;
  gflags::SetUsageMessage(kUsage);
  // Everything after the first "--" belongs to the trainer; gflags never sees it.
  std::vector<std::string> overrides;
  int own = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--") {
      own = i;
      for (int j = i + 1; j < argc; ++j) overrides.push_back(argv[j]);
      break;
    }
  }
  gflags::ParseCommandLineFlags(&own, &argv, /*remove_flags=*/true);
  if (own != 2) {
    std::fprintf(stderr, "sweep: expected one sweep table (FILE.csv), got %d; see --help\n", own - 1);
    return 2;
  }
  absl::StatusOr<cf::sweep::SweepOptions> options = OptionsFromFlags(argv[1], overrides);
  absl::StatusOr<cf::sweep::SweepPlan> plan =
      options.ok() ? Prepare(*options) : absl::StatusOr<cf::sweep::SweepPlan>(options.status());
  if (!plan.ok()) {
    std::fprintf(stderr, "sweep: %s\n", std::string(plan.status().message()).c_str());
    return 2;
  }
  if (FLAGS_dry_run) {
    cf::sweep::PrintPlan(*options, *plan, stdout);
    return 0;
  }
  if (FLAGS_slurm) {
    const absl::Status written = cf::sweep::WriteSlurmScript(*options, *plan, stdout);
    if (!written.ok()) std::fprintf(stderr, "sweep: %s\n", std::string(written.message()).c_str());
    return written.ok() ? 0 : 1;
  }
  absl::StatusOr<int> code = cf::sweep::RunSweep(*options, *plan);
  if (!code.ok()) {
    std::fprintf(stderr, "sweep: %s\n", std::string(code.status().message()).c_str());
    return 1;
  }
  return *code;
}
