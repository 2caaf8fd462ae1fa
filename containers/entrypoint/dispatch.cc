#include "containers/entrypoint/dispatch.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cf::entrypoint {
namespace {

constexpr char kDefaultRecipe[] = "fashion_mnist";

// One subcommand that runs the trainer with a recipe; `mode` is the trainer flag that selects
// what it does (none: train).
struct TrainerCommand {
  const char* name;
  const char* mode;
};
constexpr TrainerCommand kTrainerCommands[] = {
    {"train", nullptr}, {"evaluate", "--eval_only"}, {"estimate", "--estimate"},
    {"preflight", "--preflight"}};

// Subcommands that run one of the other binaries with the arguments as given.
struct PlainCommand {
  const char* name;
  const char* binary;
};
constexpr PlainCommand kPlainCommands[] = {
    {"classify", "classify"}, {"hub", "hub"}, {"models", "models"}, {"report", "report"}};

bool IsHelp(const std::string& a) { return a == "--help" || a == "-h" || a == "-help" || a == "help"; }

// Splits --recipe=NAME / --recipe NAME out of `args`; the recipe's flagfile comes first, so every
// other flag overrides it (as `tools/cf train` does).
absl::StatusOr<std::vector<std::string>> RecipeArgs(const std::vector<std::string>& args,
                                                    const Paths& paths) {
  std::string recipe = kDefaultRecipe;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (absl::StartsWith(args[i], "--recipe=")) {
      recipe = args[i].substr(9);
    } else if (args[i] == "--recipe") {
      if (i + 1 == args.size()) return absl::InvalidArgumentError("--recipe needs a name");
      recipe = args[++i];
    } else {
      rest.push_back(args[i]);
    }
  }
  const std::string flagfile = paths.recipes_dir + "/" + recipe + ".flags";
  std::error_code ec;
  if (recipe.empty() || recipe.find('/') != std::string::npos ||
      !std::filesystem::is_regular_file(flagfile, ec)) {
    return absl::NotFoundError(absl::StrCat("no recipe '", recipe, "' in ", paths.recipes_dir,
                                            " (have: ", absl::StrJoin(RecipeNames(paths.recipes_dir), " "),
                                            ")"));
  }
  std::vector<std::string> out = {"--flagfile=" + flagfile};
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

std::vector<std::string> Tail(const std::vector<std::string>& args) {
  return std::vector<std::string>(args.begin() + 1, args.end());
}

absl::StatusOr<Plan> PlanTrainer(const TrainerCommand& command, const std::vector<std::string>& args,
                                 const Paths& paths) {
  Plan plan;
  plan.binary = paths.bin_dir + "/train";
  // `train --help` is the trainer's own help (no recipe needed to print it).
  if (std::any_of(args.begin(), args.end(), [](const std::string& a) { return IsHelp(a) && a != "help"; })) {
    plan.args = {"--help"};
    return plan;
  }
  if (command.mode != nullptr) plan.args.push_back(command.mode);
  absl::StatusOr<std::vector<std::string>> recipe = RecipeArgs(args, paths);
  if (!recipe.ok()) return recipe.status();
  plan.args.insert(plan.args.end(), recipe->begin(), recipe->end());
  return plan;
}

// launch [-n N] [--master_port P] -- [--recipe=NAME] [trainer flags]
// or     launch [-n N] -- /abs/path/PROGRAM [args]   (what `sweep --launch` passes)
absl::StatusOr<Plan> PlanLaunch(const std::vector<std::string>& args, const Paths& paths) {
  Plan plan;
  plan.kind = Plan::Kind::kLaunch;
  auto dash = std::find(args.begin(), args.end(), "--");
  plan.launch_args.assign(args.begin(), dash);
  std::vector<std::string> rest;
  if (dash != args.end()) rest.assign(dash + 1, args.end());
  if (!rest.empty() && absl::StartsWith(rest[0], "/")) {
    plan.launch_command = rest[0];
    plan.args.assign(rest.begin() + 1, rest.end());
    return plan;
  }
  plan.launch_command = paths.bin_dir + "/train";
  absl::StatusOr<std::vector<std::string>> recipe = RecipeArgs(rest, paths);
  if (!recipe.ok()) return recipe.status();
  plan.args = *std::move(recipe);
  return plan;
}

}  // namespace

std::vector<std::string> RecipeNames(const std::string& recipes_dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(recipes_dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (absl::EndsWith(file, ".flags")) names.push_back(file.substr(0, file.size() - 6));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string HelpText() {
  return R"(usage: <image> <command> [args...]     (the same commands as tools/cf on a checkout)

  train [--recipe=NAME] [flags...]      train with a recipe (default fashion_mnist); flags override it
  evaluate [--recipe=NAME] --checkpoint=DIR|latest|best [flags...]
                                        top-1/top-5/loss of a checkpoint on the recipe's eval data
  estimate [--recipe=NAME] [flags...]   GPU-hours, dollars and per-GPU memory of a run
  preflight [--recipe=NAME] [flags...] [--hostfile F]
                                        the checks before paying for GPUs; one table, non-zero on failure
  launch -n N [--nnodes K --node_rank I --master_addr HOST --master_port P] -- [--recipe=NAME] [flags...]
                                        N ranks here with torchrun's variables, output prefixed [rank K];
                                        several nodes: one container per node, the same command with
                                        its --node_rank (or set RANK, WORLD_SIZE, MASTER_ADDR,
                                        MASTER_PORT per container and run `train`)
  classify [flags...]                   label captions with an LLM (OpenAI-compatible endpoint)
  hub upload PATH --repo ORG/NAME | hub whoami
                                        the Hugging Face Hub (token from HF_TOKEN or a mounted file)
  models                                the model registry
  report RUN_DIR... | SWEEP_DIR [--out FILE.html]
                                        one self-contained HTML report
  sweep FILE.csv [--out DIR] [-- trainer flags]
                                        one training run per row of a sweep table
  data pack --data=KIND --out DIR --format wds|parquet [...]
                                        turn any data kind into WebDataset or Parquet shards
  help                                  this text

`<command> --help` prints that command's own flags. Volumes: /data (inputs), /runs (run dirs; the
default --run_dir runs/NAME lands there), /cache/huggingface (HF_HOME). Secrets come from the
environment (HF_TOKEN, OPENROUTER_API_KEY) or mounted files (--api_key_file, HF_TOKEN_PATH), never flags.
)";
}

absl::StatusOr<Plan> PlanCommand(const std::vector<std::string>& args, const Paths& paths) {
  if (args.empty() || IsHelp(args[0])) {
    Plan plan;
    plan.kind = Plan::Kind::kHelp;
    return plan;
  }
  const std::string& name = args[0];
  for (const TrainerCommand& c : kTrainerCommands) {
    if (name == c.name) return PlanTrainer(c, Tail(args), paths);
  }
  for (const PlainCommand& c : kPlainCommands) {
    if (name == c.name) {
      Plan plan;
      plan.binary = paths.bin_dir + "/" + c.binary;
      plan.args = Tail(args);
      return plan;
    }
  }
  if (name == "launch") return PlanLaunch(Tail(args), paths);
  if (name == "data") {
    if (args.size() < 2 || args[1] != "pack") {
      return absl::InvalidArgumentError("usage: data pack --data=KIND ... --out DIR --format wds|parquet");
    }
    Plan plan;
    plan.binary = paths.bin_dir + "/pack";
    plan.args.assign(args.begin() + 2, args.end());
    return plan;
  }
  if (name == "sweep") {
    Plan plan;
    plan.binary = paths.bin_dir + "/sweep";
    std::vector<std::string> rest = Tail(args);
    const bool help = std::any_of(rest.begin(), rest.end(), [](const std::string& a) { return IsHelp(a); });
    if (!help) {
      plan.args = {"--train_binary=" + paths.bin_dir + "/train", "--launcher=" + paths.bin_dir + "/cf-launch",
                   "--recipes_dir=" + paths.recipes_dir};
    }
    plan.args.insert(plan.args.end(), rest.begin(), rest.end());
    return plan;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown command '", name,
                   "' (have: train evaluate estimate preflight launch classify hub models report sweep "
                   "data help)"));
}

}  // namespace cf::entrypoint
