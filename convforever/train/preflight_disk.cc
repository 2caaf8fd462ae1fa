// The preflight's disk check: room under --run_dir for the checkpoints the run keeps.
//
// A checkpoint holds the weights (model.safetensors), the optimizer state (optimizer.safetensors:
// AdamW and LAMB two tensors per parameter, Lion one, SGD one with momentum) and, with EMA, the
// shadow weights (ema.safetensors), all fp32; the run keeps --keep_checkpoints of them plus the
// best. The parameter count is the microbatch check's model's. Free space is statvfs's f_bavail
// (what an unprivileged writer may use) of the filesystem of --run_dir, or of its nearest existing
// parent when it does not exist yet.
#include <sys/statvfs.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/train/preflight_checks.h"

namespace cf::train::preflight {
namespace {

constexpr char kName[] = "disk";

int OptimizerTensorsPerParameter(const TrainerOptions& o) {
  const std::string type = o.optimizer_override ? o.optimizer_override->type : o.optimizer;
  const double momentum = o.optimizer_override ? o.optimizer_override->momentum : o.momentum;
  if (type == "adamw" || type == "lamb") return 2;
  if (type == "lion") return 1;
  return momentum > 0 ? 1 : 0;  // sgd
}

}  // namespace

CheckRow CheckDisk(Context& c) {
  const TrainerOptions& o = c.options;
  if (c.params <= 0) return {kName, CheckStatus::kSkip, "the parameter count is unknown (microbatch check)"};
  const int tensors = 1 + OptimizerTensorsPerParameter(o) + (o.ema_decay > 0 ? 1 : 0);
  const double per_checkpoint = 4.0 * static_cast<double>(c.params) * tensors;
  const int kept = std::max(1, o.keep_checkpoints) + 1;
  const double need = per_checkpoint * kept;
  std::filesystem::path dir = std::filesystem::absolute(o.run_dir.empty() ? "." : o.run_dir);
  std::error_code ec;
  while (!std::filesystem::exists(dir, ec) && dir.has_parent_path() && dir != dir.parent_path()) {
    dir = dir.parent_path();
  }
  struct statvfs fs;
  if (statvfs(dir.c_str(), &fs) != 0) {
    return {kName, CheckStatus::kFail, absl::StrCat("cannot stat the filesystem of ", dir.string())};
  }
  const double free = static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize);
  const std::string detail = absl::StrFormat(
      "need %s ((%d + best) checkpoints x %s: %d parameters x %d fp32 tensors), %s free under %s",
      Bytes(need), kept - 1, Bytes(per_checkpoint), c.params, tensors, Bytes(free), dir.string());
  if (free < need) return {kName, CheckStatus::kFail, absl::StrCat("short of space: ", detail)};
  return {kName, CheckStatus::kOk, detail};
}

}  // namespace cf::train::preflight
