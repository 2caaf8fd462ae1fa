#include "convforever/train/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

namespace fs = std::filesystem;

constexpr char kStepPrefix[] = "step-";
constexpr char kTmpPrefix[] = ".tmp-step-";
constexpr char kDone[] = "DONE";
constexpr char kBest[] = "best.json";

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status FsyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("cannot fsync", path);
  return absl::OkStatus();
}

// fsyncs every file below `dir` (depth first), each directory after its entries, and collects the
// relative file names for the DONE manifest.
absl::Status SyncTree(const std::string& dir, const std::string& rel,
                      std::vector<std::string>* files) {
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string child_rel = rel.empty() ? name : rel + "/" + name;
    if (entry.is_directory(ec)) {
      RETURN_IF_ERROR(SyncTree(entry.path().string(), child_rel, files));
    } else {
      RETURN_IF_ERROR(FsyncPath(entry.path().string(), /*directory=*/false));
      files->push_back(child_rel);
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  return FsyncPath(dir, /*directory=*/true);
}

// Parses "step-<digits>" (or the temp form) into the step; false for anything else.
bool ParseStep(absl::string_view name, absl::string_view prefix, int64_t* step) {
  if (!absl::ConsumePrefix(&name, prefix) || name.empty()) return false;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(name, step);
}

absl::StatusOr<std::vector<std::string>> ListNames(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return names;
    return ErrnoError("cannot list", dir);
  }
  while (const dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  return names;
}

}  // namespace

CheckpointManager::CheckpointManager(std::string run_dir, int keep_last_k)
    : run_dir_(std::move(run_dir)),
      dir_(run_dir_ + "/checkpoints"),
      keep_last_k_(std::max(1, keep_last_k)) {}

std::string CheckpointManager::StepDirName(int64_t step) {
  return absl::StrFormat("%s%08d", kStepPrefix, step);
}

std::string CheckpointManager::TempDirPath(int64_t step) const {
  return absl::StrFormat("%s/%s%08d", dir_, kTmpPrefix, step);
}

absl::StatusOr<std::string> CheckpointManager::Save(int64_t step, const WriterFn& writer,
                                                    bool is_best, double metric) {
  if (step < 0) return absl::InvalidArgumentError(absl::StrCat("negative checkpoint step ", step));
  if (!Exists(dir_)) {
    RETURN_IF_ERROR(MakeDirs(dir_));
    RETURN_IF_ERROR(base::SyncDirectory(run_dir_));  // the new checkpoints/ entry itself
  }
  const std::string final_dir = absl::StrCat(dir_, "/", StepDirName(step));
  const std::string tmp_dir = TempDirPath(step);
  RETURN_IF_ERROR(RemoveTree(tmp_dir));  // a killed earlier attempt at the same step
  if (::mkdir(tmp_dir.c_str(), 0755) != 0) return ErrnoError("cannot create", tmp_dir);

  if (absl::Status s = writer(tmp_dir); !s.ok()) {
    RemoveTree(tmp_dir).IgnoreError();
    return absl::Status(s.code(), absl::StrCat("writing checkpoint ", tmp_dir, ": ", s.message()));
  }
  std::vector<std::string> files;
  RETURN_IF_ERROR(SyncTree(tmp_dir, "", &files));
  std::sort(files.begin(), files.end());

  if (Exists(final_dir)) {
    // rename(2) cannot replace a non-empty directory. Invalidate the old one first (remove DONE),
    // so a crash in between leaves an incomplete dir that resume ignores, never a mixed one.
    ::unlink((final_dir + "/" + kDone).c_str());
    RETURN_IF_ERROR(base::SyncDirectory(final_dir));
    RETURN_IF_ERROR(RemoveTree(final_dir));
  }
  if (::rename(tmp_dir.c_str(), final_dir.c_str()) != 0) {
    return ErrnoError(absl::StrCat("cannot rename ", tmp_dir, " to"), final_dir);
  }
  RETURN_IF_ERROR(base::SyncDirectory(dir_));
  if (before_done_for_test) before_done_for_test();

  nlohmann::json done = {{"step", step}, {"files", files}};
  RETURN_IF_ERROR(base::WriteFileAtomically(final_dir + "/" + kDone, done.dump() + "\n"));

  if (is_best) {
    nlohmann::json best = {{"step", step}, {"dir", StepDirName(step)}};
    best["metric"] = std::isfinite(metric) ? nlohmann::json(metric) : nlohmann::json(nullptr);
    RETURN_IF_ERROR(base::WriteFileAtomically(absl::StrCat(dir_, "/", kBest), best.dump() + "\n"));
  }
  RETURN_IF_ERROR(Rotate());
  return final_dir;
}

absl::StatusOr<std::vector<CheckpointInfo>> CheckpointManager::ListComplete() const {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListNames(dir_));
  std::vector<CheckpointInfo> out;
  for (const std::string& name : names) {
    int64_t step;
    if (!ParseStep(name, kStepPrefix, &step)) continue;
    const std::string path = absl::StrCat(dir_, "/", name);
    if (Exists(path + "/" + kDone)) out.push_back({step, path});
  }
  std::sort(out.begin(), out.end(),
            [](const CheckpointInfo& a, const CheckpointInfo& b) { return a.step < b.step; });
  return out;
}

absl::StatusOr<int> CheckpointManager::CleanIncomplete() {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListNames(dir_));
  int removed = 0;
  for (const std::string& name : names) {
    int64_t step;
    const std::string path = absl::StrCat(dir_, "/", name);
    const bool temp = ParseStep(name, kTmpPrefix, &step);
    const bool incomplete = ParseStep(name, kStepPrefix, &step) && !Exists(path + "/" + kDone);
    if (!temp && !incomplete) continue;
    LOG(WARNING) << "removing incomplete checkpoint " << path << " (left by an interrupted save)";
    RETURN_IF_ERROR(RemoveTree(path));
    ++removed;
  }
  removed += base::RemoveStaleTempFiles(dir_);  // best.json.tmp.* from a killed pointer update
  return removed;
}

absl::StatusOr<std::optional<CheckpointInfo>> CheckpointManager::FindLatestComplete(bool clean) {
  if (clean) RETURN_IF_ERROR(CleanIncomplete().status());
  ASSIGN_OR_RETURN(std::vector<CheckpointInfo> complete, ListComplete());
  if (complete.empty()) return std::optional<CheckpointInfo>();
  return std::optional<CheckpointInfo>(complete.back());
}

absl::StatusOr<std::optional<BestCheckpoint>> CheckpointManager::Best() const {
  const std::string path = absl::StrCat(dir_, "/", kBest);
  std::ifstream in(path);
  if (!in) return std::optional<BestCheckpoint>();
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json best = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (best.is_discarded() || !best.is_object() || !best.contains("step") ||
      !best["step"].is_number_integer() || !best.contains("dir") || !best["dir"].is_string()) {
    return absl::DataLossError(absl::StrCat(path, ": not a best-checkpoint pointer: ", text.str()));
  }
  BestCheckpoint out;
  out.step = best["step"].get<int64_t>();
  out.path = absl::StrCat(dir_, "/", best["dir"].get<std::string>());
  out.metric = best.contains("metric") && best["metric"].is_number() ? best["metric"].get<double>()
                                                                     : std::nan("");
  if (!Exists(out.path + "/" + kDone)) return std::optional<BestCheckpoint>();
  return std::optional<BestCheckpoint>(out);
}

absl::Status CheckpointManager::Rotate() {
  ASSIGN_OR_RETURN(std::vector<CheckpointInfo> complete, ListComplete());
  int64_t best_step = -1;
  if (auto best = Best(); best.ok() && best->has_value()) best_step = (*best)->step;
  const int64_t excess = static_cast<int64_t>(complete.size()) - keep_last_k_;
  for (int64_t i = 0; i < excess; ++i) {
    if (complete[i].step == best_step) continue;
    // DONE goes first, so a crash mid-removal leaves a dir that resume ignores and cleans.
    ::unlink((complete[i].path + "/" + kDone).c_str());
    RETURN_IF_ERROR(RemoveTree(complete[i].path));
  }
  return absl::OkStatus();
}

}  // namespace cf::train
