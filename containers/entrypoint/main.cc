// cf: the container image's entrypoint (see dispatch.h). Invoked as `cf-launch` (a link to it,
// what `sweep --launch` runs) it is the local launcher.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "containers/entrypoint/dispatch.h"
#include "containers/entrypoint/local_launch.h"

namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

cf::entrypoint::Paths ImagePaths() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string bin = ec ? std::string("/opt/convforever/bin") : exe.parent_path().string();
  const std::string prefix = std::filesystem::path(bin).parent_path().string();
  return {EnvOr("CF_BIN_DIR", bin), EnvOr("CF_RECIPES_DIR", prefix + "/convforever/train/recipes")};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (std::filesystem::path(argv[0]).filename() == "cf-launch") args.insert(args.begin(), "launch");
  absl::StatusOr<cf::entrypoint::Plan> plan = cf::entrypoint::PlanCommand(args, ImagePaths());
  if (!plan.ok()) {
    std::fprintf(stderr, "cf: %s\n", std::string(plan.status().message()).c_str());
    return 2;
  }
  switch (plan->kind) {
    case cf::entrypoint::Plan::Kind::kHelp:
      std::fputs(cf::entrypoint::HelpText().c_str(), stdout);
      return 0;
    case cf::entrypoint::Plan::Kind::kLaunch: {
      cf::entrypoint::LaunchOptions options;
      if (absl::Status s = cf::entrypoint::ParseLaunchArgs(plan->launch_args, &options); !s.ok()) {
        std::fprintf(stderr, "cf: %s\n", std::string(s.message()).c_str());
        return 2;
      }
      options.program = plan->launch_command;
      options.args = plan->args;
      absl::StatusOr<int> code = cf::entrypoint::RunLocalLaunch(options);
      if (!code.ok()) {
        std::fprintf(stderr, "cf launch: %s\n", std::string(code.status().message()).c_str());
        return 1;
      }
      return *code;
    }
    case cf::entrypoint::Plan::Kind::kExec: {
      std::vector<char*> exec_argv = {const_cast<char*>(plan->binary.c_str())};
      for (std::string& a : plan->args) exec_argv.push_back(a.data());
      exec_argv.push_back(nullptr);
      execv(plan->binary.c_str(), exec_argv.data());
      std::fprintf(stderr, "cf: cannot run %s: %s\n", plan->binary.c_str(), std::strerror(errno));
      return 127;
    }
  }
  return 1;
}
