#include "convforever/sweep/plan.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "convforever/base/status_macros.h"
#include "convforever/sweep/run_name.h"

namespace cf::sweep {

absl::StatusOr<std::vector<FlagValue>> ParseOverrides(const std::vector<std::string>& args,
                                                      const TrainerFlags& trainer_flags) {
  std::vector<FlagValue> out;
  for (const std::string& arg : args) {
    absl::string_view a = arg;
    if (!absl::ConsumePrefix(&a, "--") && !absl::ConsumePrefix(&a, "-")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trainer flags after --: '", arg, "' is not a flag (write --name=value)"));
    }
    std::string name(a.substr(0, a.find('=')));
    const bool has_value = a.find('=') != absl::string_view::npos;
    std::string value = has_value ? std::string(a.substr(a.find('=') + 1)) : "";
    auto type = trainer_flags.find(name);
    if (!has_value && type == trainer_flags.end() && absl::StartsWith(name, "no")) {
      auto negated = trainer_flags.find(name.substr(2));
      if (negated != trainer_flags.end() && negated->second == "bool") {
        name = name.substr(2);
        type = negated;
        value = "false";
      }
    }
    if (type == trainer_flags.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trainer flags after --: the trainer has no flag --", name, " (in '", arg,
          "'; `train --help` lists them)"));
    }
    if (name == "run_dir" || name == "resume" || name == "flagfile") {
      return absl::InvalidArgumentError(absl::StrCat(
          "trainer flags after --: --", name,
          " is set by the sweep (use --out for the sweep directory, --recipe for the flagfile)"));
    }
    if (!has_value && value.empty()) {
      if (type->second != "bool") {
        return absl::InvalidArgumentError(absl::StrCat(
            "trainer flags after --: '", arg, "' needs a value: write --", name, "=VALUE"));
      }
      value = "true";
    }
    absl::StatusOr<std::string> v = NormalizeValue(name, type->second, value);
    if (!v.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("trainer flags after --: ", v.status().message()));
    }
    out.push_back({name, *std::move(v)});
  }
  return out;
}

int LaunchRanks(const std::vector<std::string>& launch_args) {
  for (size_t i = 0; i < launch_args.size(); ++i) {
    const std::string& a = launch_args[i];
    int n = 0;
    for (const char* opt : {"-n", "--nproc_per_node", "--nprocs"}) {
      if (a == opt && i + 1 < launch_args.size() && absl::SimpleAtoi(launch_args[i + 1], &n) &&
          n > 0) {
        return n;
      }
      const std::string eq = absl::StrCat(opt, "=");
      if (absl::StartsWith(a, eq) && absl::SimpleAtoi(a.substr(eq.size()), &n) && n > 0) return n;
    }
  }
  return 1;
}

std::string ShellJoin(const std::vector<std::string>& argv) {
  std::vector<std::string> quoted;
  for (const std::string& a : argv) {
    const bool safe = !a.empty() && a.find_first_not_of(
                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789_-+=/.,:@%") == std::string::npos;
    if (safe) {
      quoted.push_back(a);
      continue;
    }
    std::string q = "'";
    for (char c : a) {
      if (c == '\'') {
        q += "'\\''";
      } else {
        q.push_back(c);
      }
    }
    quoted.push_back(q + "'");
  }
  return absl::StrJoin(quoted, " ");
}

absl::StatusOr<SweepPlan> BuildPlan(const SweepOptions& options, const TrainerFlags& trainer_flags) {
  SweepPlan plan;
  ASSIGN_OR_RETURN(plan.table, ReadCsvFile(options.csv_path));
  if (plan.table.rows.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.csv_path, ": no rows under the header, nothing to sweep"));
  }
  for (const ColumnScale& scale : options.scales) {
    RETURN_IF_ERROR(ApplyColumnScale(scale, &plan.table, options.csv_path));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> flag_for_column,
                   MapColumns(plan.table.header, trainer_flags, options.csv_path));
  ASSIGN_OR_RETURN(std::vector<FlagValue> overrides,
                   ParseOverrides(options.overrides, trainer_flags));
  plan.ranks = options.launch_args.empty() ? 1 : LaunchRanks(options.launch_args);
  std::set<std::string> override_names;
  for (const FlagValue& f : overrides) override_names.insert(f.name);
  const std::string recipe_name =
      std::filesystem::path(options.recipe_flagfile).filename().string();

  for (size_t r = 0; r < plan.table.rows.size(); ++r) {
    PlannedRun run;
    run.row = r;
    run.line = plan.table.row_lines[r];
    run.input_values = plan.table.rows[r];
    ASSIGN_OR_RETURN(run.row_flags,
                     RowFlags(plan.table, r, flag_for_column, trainer_flags, options.csv_path));
    std::vector<FlagValue> effective = run.row_flags;
    effective.insert(effective.end(), overrides.begin(), overrides.end());

    std::vector<std::string> identity = {"recipe=" + recipe_name};
    for (const FlagValue& f : effective) identity.push_back(f.Arg());
    if (!options.launch_args.empty()) {
      identity.push_back("launch=" + absl::StrJoin(options.launch_args, " "));
    }
    run.name = RunName(r, effective, absl::StrJoin(identity, "\n"));
    run.run_dir = (std::filesystem::path(options.out_dir) / "runs" / run.name).string();

    std::vector<std::string> train = {options.train_binary,
                                      "--flagfile=" + options.recipe_flagfile};
    if (options.parallel > 1) {
      std::set<std::string> set_here = override_names;
      for (const FlagValue& f : run.row_flags) set_here.insert(f.name);
      const int threads = std::max(1, options.cores / (options.parallel * plan.ranks));
      if (set_here.count("threads") == 0) train.push_back(absl::StrCat("--threads=", threads));
      if (set_here.count("num_workers") == 0) train.push_back("--num_workers=1");
    }
    for (const FlagValue& f : effective) train.push_back(f.Arg());
    train.push_back("--run_dir=" + run.run_dir);
    train.push_back("--resume=auto");
    if (!options.launch_args.empty()) {
      run.command = {options.launcher};
      run.command.insert(run.command.end(), options.launch_args.begin(), options.launch_args.end());
      run.command.push_back("--");
    }
    run.command.insert(run.command.end(), train.begin(), train.end());
    plan.runs.push_back(std::move(run));
  }
  return plan;
}

}  // namespace cf::sweep
