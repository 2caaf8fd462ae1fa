#include "convforever/sweep/runner.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "convforever/base/status_macros.h"
#include "convforever/sweep/child_process.h"
#include "convforever/sweep/file_lock.h"
#include "convforever/sweep/results.h"
#include "convforever/sweep/run_status.h"

namespace cf::sweep {
namespace {

namespace fs = std::filesystem;

void Say(const std::string& line) {
  std::printf("sweep: %s\n", line.c_str());
  std::fflush(stdout);
}

// Restores the signal mask on scope exit.
class BlockedSignals {
 public:
  BlockedSignals() {
    sigemptyset(&set_);
    for (int sig : {SIGINT, SIGTERM, SIGCHLD}) sigaddset(&set_, sig);
    sigprocmask(SIG_BLOCK, &set_, &old_);
  }
  ~BlockedSignals() { sigprocmask(SIG_SETMASK, &old_, nullptr); }
  const sigset_t& set() const { return set_; }

 private:
  sigset_t set_;
  sigset_t old_;
};

struct Running {
  size_t index = 0;
  absl::Time started;
};

class Sweep {
 public:
  Sweep(const SweepOptions& options, const SweepPlan& plan) : options_(options), plan_(plan) {}

  absl::StatusOr<int> Run();

 private:
  absl::StatusOr<int> Loop(const sigset_t& signals);
  // After an error that ends the sweep: stops the running children and waits for them.
  void StopAndWait();
  absl::Status WriteResults() {
    return WriteResultsCsv(options_.out_dir + "/results.csv", plan_.table.header, results_);
  }
  // Starts queued rows while there is room; returns an error only for what ends the sweep.
  absl::Status StartRows();
  absl::Status Start(size_t index, FileLock lock);
  absl::Status Finished(pid_t pid, int wait_status);
  void Forward(int sig);

  const SweepOptions& options_;
  const SweepPlan& plan_;
  std::vector<ResultRow> results_;
  std::deque<size_t> queue_;
  std::map<pid_t, Running> running_;
  std::set<size_t> waiting_said_;  // rows whose "lock held" message was printed
  std::vector<size_t> failed_;
  int stop_signal_ = 0;
};

absl::Status Sweep::Start(size_t index, FileLock lock) {
  const PlannedRun& run = plan_.runs[index];
  const std::string log_path = run.run_dir + "/train.log";
  {
    std::ofstream log(log_path, std::ios::app);
    log << kLogStartMarker << absl::FormatTime("%Y-%m-%dT%H:%M:%S%z", absl::Now(), absl::LocalTimeZone())
        << " row " << run.row << "\n" << ShellJoin(run.command) << "\n";
    if (!log) return absl::PermissionDeniedError(absl::StrCat("cannot write ", log_path));
  }
  ASSIGN_OR_RETURN(pid_t pid, StartChild(run.command, log_path, lock.fd()));
  lock.WriteOwner(pid);
  lock.Release();  // the child holds it now
  running_[pid] = {index, absl::Now()};
  results_[index].status = RowStatus::kRunning;
  const std::string checkpoint = LatestCheckpoint(run.run_dir);
  Say(absl::StrCat("start row ", run.row, " ", run.name,
                   checkpoint.empty() ? "" : " (resuming from " + fs::path(checkpoint).filename().string() + ")",
                   " [", running_.size(), " running]"));
  return WriteResults();
}

absl::Status Sweep::StartRows() {
  for (auto it = queue_.begin(); it != queue_.end() && !stop_signal_ &&
                                 static_cast<int>(running_.size()) < options_.parallel;) {
    const size_t index = *it;
    const PlannedRun& run = plan_.runs[index];
    std::error_code ec;
    fs::create_directories(run.run_dir, ec);
    if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", run.run_dir, ": ", ec.message()));
    absl::StatusOr<FileLock> lock = FileLock::TryAcquire(run.run_dir + "/.train.lock", /*inheritable=*/true);
    if (absl::IsUnavailable(lock.status())) {
      if (waiting_said_.insert(index).second) {
        Say(absl::StrCat("row ", run.row, ": waiting for the trainer still running in ", run.run_dir,
                         " (", lock.status().message(), ")"));
      }
      ++it;
      continue;
    }
    if (!lock.ok()) return lock.status();
    // A trainer that outlived an earlier sweep may have finished the row meanwhile.
    absl::StatusOr<std::optional<nlohmann::json>> summary = ReadRunSummary(run.run_dir);
    if (summary.ok() && IsCompleted(*summary)) {
      results_[index].status = RowStatus::kDone;
      results_[index].summary = *summary;
      Say(absl::StrCat("row ", run.row, " ", run.name, " is DONE already"));
      it = queue_.erase(it);
      RETURN_IF_ERROR(WriteResults());
      continue;
    }
    it = queue_.erase(it);
    RETURN_IF_ERROR(Start(index, *std::move(lock)));
  }
  return absl::OkStatus();
}

absl::Status Sweep::Finished(pid_t pid, int wait_status) {
  const auto it = running_.find(pid);
  if (it == running_.end()) return absl::OkStatus();  // not ours
  const size_t index = it->second.index;
  const double seconds = absl::ToDoubleSeconds(absl::Now() - it->second.started);
  running_.erase(it);
  const PlannedRun& run = plan_.runs[index];
  ResultRow& result = results_[index];
  absl::StatusOr<std::optional<nlohmann::json>> summary = ReadRunSummary(run.run_dir);
  result.summary = summary.ok() ? *summary : std::nullopt;
  const bool exited_ok = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
  const std::string how = WIFEXITED(wait_status)
                              ? absl::StrCat("exit code ", WEXITSTATUS(wait_status))
                              : absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  if (exited_ok && summary.ok() && IsCompleted(*summary)) {
    result.status = RowStatus::kDone;
    const nlohmann::json& s = **summary;
    std::string top1;
    if (s.contains("final_eval") && s["final_eval"].is_object() && s["final_eval"].contains("top1") &&
        s["final_eval"]["top1"].is_number()) {
      top1 = absl::StrFormat(", top-1 %.2f%%", 100 * s["final_eval"]["top1"].get<double>());
    }
    Say(absl::StrFormat("DONE row %d %s in %.1f s%s", run.row, run.name, seconds, top1));
  } else if (stop_signal_) {
    result.status = RowStatus::kPending;
    Say(absl::StrCat("stopped row ", run.row, " ", run.name, " (", how,
                     "); it resumes on the next run"));
  } else {
    result.status = RowStatus::kFailed;
    failed_.push_back(index);
    std::string why = how;
    if (exited_ok) {
      why = summary.ok() ? "exit code 0 but summary.json does not say completed"
                         : std::string(summary.status().message());
    }
    Say(absl::StrCat("FAILED row ", run.row, " ", run.name, " (", why, "); last lines of ",
                     run.run_dir, "/train.log:\n", LatestLogTail(run.run_dir + "/train.log", 20)));
  }
  return WriteResults();
}

void Sweep::Forward(int sig) {
  for (const auto& [pid, r] : running_) kill(pid, sig);
}

absl::StatusOr<int> Sweep::Run() {
  std::error_code ec;
  fs::create_directories(options_.out_dir + "/runs", ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", options_.out_dir, "/runs: ", ec.message()));
  }
  absl::StatusOr<FileLock> sweep_lock =
      FileLock::TryAcquire(options_.out_dir + "/.sweep.lock", /*inheritable=*/false);
  if (absl::IsUnavailable(sweep_lock.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "another sweep is running on ", options_.out_dir, " (", sweep_lock.status().message(),
        "); wait for it to end or stop it first"));
  }
  if (!sweep_lock.ok()) return sweep_lock.status();
  sweep_lock->WriteOwner(getpid());

  BlockedSignals blocked;
  int done = 0;
  for (size_t i = 0; i < plan_.runs.size(); ++i) {
    const PlannedRun& run = plan_.runs[i];
    ResultRow r;
    r.row = run.row;
    r.name = run.name;
    r.input_values = run.input_values;
    r.ranks = plan_.ranks;
    absl::StatusOr<std::optional<nlohmann::json>> summary = ReadRunSummary(run.run_dir);
    if (!summary.ok()) {
      Say(absl::StrCat("row ", run.row, ": ", summary.status().message(), "; running it again"));
    } else {
      r.summary = *summary;
    }
    if (summary.ok() && IsCompleted(*summary)) {
      r.status = RowStatus::kDone;
      ++done;
    } else {
      queue_.push_back(i);
    }
    results_.push_back(std::move(r));
  }
  Say(absl::StrCat(plan_.runs.size(), " rows: ", done, " DONE, ", queue_.size(), " to run, ",
                   options_.parallel, " at a time; results in ", options_.out_dir, "/results.csv"));
  RETURN_IF_ERROR(WriteResults());
  absl::StatusOr<int> code = Loop(blocked.set());
  if (!code.ok()) StopAndWait();
  return code;
}

void Sweep::StopAndWait() {
  Forward(SIGTERM);
  for (const auto& [pid, r] : running_) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  running_.clear();
}

absl::StatusOr<int> Sweep::Loop(const sigset_t& signals) {
  while (true) {
    RETURN_IF_ERROR(StartRows());
    if (running_.empty() && (queue_.empty() || stop_signal_)) break;
    siginfo_t info;
    const timespec tick = {1, 0};
    const int sig = sigtimedwait(&signals, &info, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      if (!stop_signal_) {
        Say(absl::StrCat("got ", strsignal(sig), ": stopping ", running_.size(),
                         " running row(s); they checkpoint and resume on the next run"));
      } else {
        Say(absl::StrCat("got ", strsignal(sig), " again: stopping the trainers now"));
      }
      stop_signal_ = sig;
      Forward(sig);
    }
    while (true) {
      int status = 0;
      const pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      RETURN_IF_ERROR(Finished(pid, status));
    }
  }

  std::printf("\n%s\n", FormatResultsTable(results_).c_str());
  Say(absl::StrCat("results: ", options_.out_dir, "/results.csv"));
  if (stop_signal_) {
    Say(absl::StrCat("stopped by ", strsignal(stop_signal_), "; run the same command again to go on"));
    return 128 + stop_signal_;
  }
  if (!failed_.empty()) {
    std::vector<std::string> names;
    for (size_t i : failed_) names.push_back(absl::StrCat(plan_.runs[i].row, " (", plan_.runs[i].name, ")"));
    Say(absl::StrCat(failed_.size(), " row(s) FAILED: ", absl::StrJoin(names, ", "),
                     "; their logs are RUN_DIR/train.log; running the sweep again retries them"));
    return 1;
  }
  return 0;
}

}  // namespace

std::string LatestLogTail(const std::string& log_path, int max_lines) {
  std::ifstream in(log_path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const size_t marker = text.rfind(kLogStartMarker);
  if (marker != std::string::npos) {
    const size_t after_command = text.find('\n', text.find('\n', marker) + 1);
    text = after_command == std::string::npos ? "" : text.substr(after_command + 1);
  }
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  const size_t from = lines.size() > static_cast<size_t>(max_lines) ? lines.size() - max_lines : 0;
  std::string out;
  for (size_t i = from; i < lines.size(); ++i) absl::StrAppend(&out, "  | ", lines[i], "\n");
  return out;
}

absl::StatusOr<int> RunSweep(const SweepOptions& options, const SweepPlan& plan) {
  Sweep sweep(options, plan);
  return sweep.Run();
}

}  // namespace cf::sweep
