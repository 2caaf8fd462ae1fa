#include "convforever/sweep/run_status.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace cf::sweep {

const char* StatusName(RowStatus status) {
  switch (status) {
    case RowStatus::kPending: return "PENDING";
    case RowStatus::kRunning: return "RUNNING";
    case RowStatus::kDone: return "DONE";
    case RowStatus::kFailed: return "FAILED";
  }
  return "?";
}

absl::StatusOr<std::optional<nlohmann::json>> ReadRunSummary(const std::string& run_dir) {
  const std::string path = run_dir + "/summary.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return std::optional<nlohmann::json>();
    return absl::PermissionDeniedError(absl::StrCat("cannot open ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(path, " is not a JSON object"));
  }
  return std::optional<nlohmann::json>(std::move(j));
}

bool IsCompleted(const std::optional<nlohmann::json>& summary) {
  if (!summary.has_value()) return false;
  const auto it = summary->find("completed");
  return it != summary->end() && it->is_boolean() && it->get<bool>();
}

std::string LatestCheckpoint(const std::string& run_dir) {
  std::error_code ec;
  std::string best;
  for (const auto& entry :
       std::filesystem::directory_iterator(run_dir + "/checkpoints", ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, "step-")) continue;
    if (!std::filesystem::exists(entry.path() / "DONE", ec)) continue;
    if (name > best) best = name;  // step-NNNNNNNN: zero-padded, so text order is step order
  }
  return best.empty() ? best : run_dir + "/checkpoints/" + best;
}

}  // namespace cf::sweep
