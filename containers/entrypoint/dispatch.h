// The container image's entrypoint: one program with the same subcommands as `tools/cf`, so that
// `podman run IMAGE train --recipe=NAME [flags]` does what `tools/cf train --recipe=NAME [flags]`
// does on a checkout. The image has no shell, so this is the only thing that maps a command to a
// binary: PlanCommand turns the arguments after the image name into the program to exec and its
// arguments (a pure function of the arguments and the image's paths, tested without an image).
//
// Layout it expects (containers/image/ builds it): the binaries in `bin_dir` (train, classify,
// hub, models, report, sweep, pack and this one, `cf`) and the recipes' gflags flagfiles in
// `recipes_dir` (NAME.flags). The image's working directory is laid out like a checkout's root
// for the files the programs read by relative path (the recipes, the 50 categories, the GPU
// table), so their defaults hold there too.
#ifndef CONVFOREVER_CONTAINERS_ENTRYPOINT_DISPATCH_H_
#define CONVFOREVER_CONTAINERS_ENTRYPOINT_DISPATCH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cf::entrypoint {

struct Paths {
  std::string bin_dir;      // /opt/convforever/bin in the image
  std::string recipes_dir;  // /opt/convforever/convforever/train/recipes
};

// What to do for one invocation.
struct Plan {
  enum class Kind { kExec, kLaunch, kHelp };
  Kind kind = Kind::kExec;
  std::string binary;              // kExec: absolute path of the program to exec
  std::vector<std::string> args;   // kExec: its arguments (argv[1..]); kLaunch: the trainer's
  std::vector<std::string> launch_args;  // kLaunch: the launcher's own options (-n N ...)
  std::string launch_command;      // kLaunch: the program each rank runs
};

// `args` are the arguments after the entrypoint (argv[1..]). Errors name the unknown command or
// recipe and list the known ones.
absl::StatusOr<Plan> PlanCommand(const std::vector<std::string>& args, const Paths& paths);

// The recipes' names in `recipes_dir` (files NAME.flags), sorted.
std::vector<std::string> RecipeNames(const std::string& recipes_dir);

// The `help` text: every subcommand, one line each.
std::string HelpText();

}  // namespace cf::entrypoint

#endif  // CONVFOREVER_CONTAINERS_ENTRYPOINT_DISPATCH_H_
