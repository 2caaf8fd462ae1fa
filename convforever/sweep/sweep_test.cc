// End to end through the sweep binary and the real trainer, on the users' sweep tables with the
// convforever_depth recipe and CPU-sized overrides (synthetic data, 32x32 images, narrow stages,
// the recipe's own warmup+cosine schedule over a few short epochs):
// - all 18 rows of sweep_expanded.csv, 2 at a time, end DONE with figures in results.csv, and a
//   second run starts nothing;
// - kill -9 of the sweep while a row trains: its trainer gets SIGTERM and checkpoints, the rerun
//   skips the DONE rows without touching them, resumes the interrupted one, and leaves no process;
// - a failing row is FAILED with its log, the others go on, the exit code says so; --slurm then
//   lists only that row; a second sweep on the same directory is refused; --dry_run runs nothing;
// - SIGTERM to the sweep stops the trainers (checkpointed, PENDING) and exits 143.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "convforever/sweep/csv.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::sweep {
namespace {

namespace fs = std::filesystem;

const char kSweep[] = "convforever/sweep/sweep";

std::string TempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  fs::path dir = fs::path(root ? root : "/tmp") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The binaries and recipe from the runfiles; then the trainer flags that make a row CPU-sized.
std::vector<std::string> SweepArgs(const std::string& csv, const std::string& out,
                                   std::vector<std::string> own, double epochs = 6) {
  std::vector<std::string> args = {csv, "--out=" + out, "--recipe=convforever_depth",
                                   "--recipes_dir=convforever/train/recipes",
                                   "--train_binary=convforever/train/train",
                                   "--launcher=convforever/distributed/launch.sh"};
  args.insert(args.end(), own.begin(), own.end());
  for (const std::string& a :
       {std::string("--"), std::string("--data=synthetic"), std::string("--data_dir="),
        std::string("--synthetic_samples=32"), std::string("--synthetic_classes=4"),
        std::string("--image_size=32"), std::string("--width_multiplier=0.125"),
        std::string("--tensorboard=false"), "--epochs=" + std::to_string(epochs)}) {
    args.push_back(a);
  }
  return args;
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 1);
  dup2(fd, 2);
  std::vector<char*> argv = {const_cast<char*>(kSweep)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(kSweep, argv.data());
  _exit(127);
}

struct Outcome {
  int exit_code = -1;
  int signal = 0;
  std::string output;
};

Outcome Wait(pid_t pid, const std::string& log) {
  int status = 0;
  waitpid(pid, &status, 0);
  Outcome r;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.output = ReadFile(log);
  return r;
}

Outcome RunSweep(const std::vector<std::string>& args, const std::string& log) {
  return Wait(Spawn(args, log), log);
}

// Live (non-zombie) processes whose command line mentions `text`.
std::vector<pid_t> ProcessesMentioning(const std::string& text) {
  std::vector<pid_t> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid) || pid == getpid()) continue;
    const std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
    if (cmdline.find(text) == std::string::npos) continue;
    const std::string stat = ReadFile(entry.path().string() + "/stat");
    const size_t paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') continue;
    found.push_back(pid);
  }
  return found;
}

bool WaitForNoProcesses(const std::string& text, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!ProcessesMentioning(text).empty()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// The run directory of row `row` (its name starts with the 2-digit row), or "".
std::string RunDirOfRow(const std::string& out, int row) {
  char prefix[16];
  std::snprintf(prefix, sizeof(prefix), "%02d-", row);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out + "/runs", ec)) {
    if (absl::StartsWith(e.path().filename().string(), prefix)) return e.path().string();
  }
  return "";
}

bool HasCheckpoint(const std::string& run_dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir + "/checkpoints", ec)) {
    if (fs::exists(e.path() / "DONE")) return true;
  }
  return false;
}

CsvTable Results(const std::string& out) {
  absl::StatusOr<CsvTable> t = ReadCsvFile(out + "/results.csv");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : CsvTable();
}

std::string Cell(const CsvTable& t, size_t row, const std::string& column) {
  const int c = t.ColumnIndex(column);
  return c < 0 ? "<no column " + column + ">" : t.rows[row][c];
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// All 18 rows of the users' table (depths 20..120 scaled to 4..24), two at a time.
TEST(Sweep, ExpandedTableEveryRowDone) {
  const std::string out = TempDir("expanded");
  const std::vector<std::string> args =
      SweepArgs("convforever/sweep/testdata/sweep_expanded.csv", out,
                {"--parallel=2", "--scale_column=approx_num_layers=0.2"});
  Outcome r = RunSweep(args, out + "/../expanded.log");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const CsvTable t = Results(out);
  ASSERT_EQ(t.rows.size(), 18u) << r.output;
  const absl::StatusOr<CsvTable> input = ReadCsvFile("convforever/sweep/testdata/sweep_expanded.csv");
  ASSERT_TRUE(input.ok());
  for (size_t i = 0; i < t.rows.size(); ++i) {
    SCOPED_TRACE("results.csv row " + std::to_string(i));
    EXPECT_EQ(Cell(t, i, "row"), std::to_string(i));
    EXPECT_EQ(Cell(t, i, "status"), "DONE");
    // The input's own columns, depth as run (x0.2), the others as written.
    EXPECT_EQ(Cell(t, i, "approx_num_layers"),
              std::to_string(std::lround(std::stoi(input->rows[i][0]) * 0.2)));
    EXPECT_EQ(Cell(t, i, "learning_rate"), input->rows[i][4]);
    for (const char* column : {"params", "gmacs_per_image", "train_flops", "final_top1",
                               "final_top5", "final_loss", "best_top1", "steps", "wall_seconds",
                               "images_per_sec", "gpu_hours"}) {
      double v = -1;
      EXPECT_TRUE(absl::SimpleAtod(Cell(t, i, column), &v) && v >= 0)
          << column << " = '" << Cell(t, i, column) << "'";
    }
    double top1 = -1;
    ASSERT_TRUE(absl::SimpleAtod(Cell(t, i, "final_top1"), &top1));
    EXPECT_LE(top1, 1.0);
    // 32 samples an epoch over 6 epochs: 6 steps at 32 images a step, 12 at 16.
    const int per_step = std::stoi(input->rows[i][1]) * std::stoi(input->rows[i][2]);
    EXPECT_EQ(Cell(t, i, "steps"), std::to_string(6 * 32 / per_step));
    const std::string dir = RunDirOfRow(out, static_cast<int>(i));
    ASSERT_FALSE(dir.empty());
    EXPECT_EQ(Count(ReadFile(dir + "/train.log"), "==== sweep: start "), 1);
  }
  EXPECT_NE(r.output.find("DONE row 17"), std::string::npos) << r.output;

  // Again: every row is DONE, nothing starts, nothing is rewritten.
  std::map<std::string, std::string> summaries;
  for (int i = 0; i < 18; ++i) summaries[RunDirOfRow(out, i)] = ReadFile(RunDirOfRow(out, i) + "/summary.json");
  Outcome again = RunSweep(args, out + "/../expanded_again.log");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("18 rows: 18 DONE, 0 to run"), std::string::npos) << again.output;
  EXPECT_EQ(again.output.find("start row"), std::string::npos) << again.output;
  for (const auto& [dir, summary] : summaries) EXPECT_EQ(ReadFile(dir + "/summary.json"), summary);
}

// kill -9 of the sweep while row 2 trains, then the same command again.
TEST(Sweep, KilledSweepResumesWithoutRedoingDoneRows) {
  const std::string out = TempDir("killed");
  // sweep_research.csv: depths 30..90 -> 6..18, warmup_epochs=5 of 10 epochs, AdamW, bf16.
  const std::vector<std::string> args =
      SweepArgs("convforever/sweep/testdata/sweep_research.csv", out,
                {"--scale_column=approx_num_layers=0.2"}, /*epochs=*/10);
  const pid_t sweep = Spawn(args, out + "/../killed_first.log");
  std::string row2;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(150);
  while (std::chrono::steady_clock::now() < deadline) {
    if (row2.empty()) row2 = RunDirOfRow(out, 2);
    if (!row2.empty() && HasCheckpoint(row2)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_FALSE(row2.empty()) << ReadFile(out + "/../killed_first.log");
  ASSERT_TRUE(HasCheckpoint(row2)) << ReadFile(out + "/../killed_first.log");
  kill(sweep, SIGKILL);
  Outcome first = Wait(sweep, out + "/../killed_first.log");
  ASSERT_EQ(first.signal, SIGKILL) << first.output;

  // Its trainer got SIGTERM from the kernel (parent death): it checkpoints and exits.
  ASSERT_TRUE(WaitForNoProcesses(out, 120)) << "a trainer outlived the killed sweep";
  const nlohmann::json stopped = nlohmann::json::parse(ReadFile(row2 + "/summary.json"));
  EXPECT_EQ(stopped["completed"], false) << stopped.dump();
  EXPECT_EQ(stopped["stopped_by_signal"], true) << stopped.dump();

  std::map<std::string, std::string> before;
  for (int i : {0, 1}) {
    const std::string dir = RunDirOfRow(out, i);
    ASSERT_FALSE(dir.empty());
    for (const char* f : {"/summary.json", "/metrics.jsonl", "/train.log"}) before[dir + f] = ReadFile(dir + f);
    EXPECT_NE(before[dir + "/summary.json"].find("\"completed\": true"), std::string::npos);
  }
  EXPECT_EQ(RunDirOfRow(out, 3), "");

  Outcome second = RunSweep(args, out + "/../killed_second.log");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("4 rows: 2 DONE, 2 to run"), std::string::npos) << second.output;
  EXPECT_EQ(second.output.find("start row 0"), std::string::npos) << second.output;
  EXPECT_EQ(second.output.find("start row 1"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("(resuming from step-"), std::string::npos) << second.output;
  for (const auto& [path, bytes] : before) EXPECT_EQ(ReadFile(path), bytes) << path << " changed";
  const std::string log2 = ReadFile(row2 + "/train.log");
  EXPECT_EQ(Count(log2, "==== sweep: start "), 2) << log2;
  const std::string rerun_part = log2.substr(log2.rfind("==== sweep: start "));
  EXPECT_NE(rerun_part.find("resumed at step"), std::string::npos) << rerun_part;
  EXPECT_NE(log2.find("stop requested (signal 15)"), std::string::npos) << log2;

  const CsvTable t = Results(out);
  ASSERT_EQ(t.rows.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(Cell(t, i, "row"), std::to_string(i));
    EXPECT_EQ(Cell(t, i, "status"), "DONE") << i;
    EXPECT_EQ(Cell(t, i, "steps"), "20") << i;  // 10 epochs x 32 samples / 16 a step
    EXPECT_EQ(Cell(t, i, "optimizer"), "AdamW");
  }
  EXPECT_TRUE(ProcessesMentioning(out).empty());
}

std::string WriteTable(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

// Row 1 cannot start (an unknown schedule): FAILED with its log, rows 0 and 2 still DONE.
TEST(Sweep, FailedRowSlurmLockAndDryRun) {
  const std::string out = TempDir("failing");
  const std::string csv = WriteTable(out + "/../failing.csv",
                                     "approx_num_layers,lr_scheduler_type,learning_rate\n"
                                     "4,cosine,1e-3\n4,bogus,1e-3\n4,Cosine,5e-4\n");
  // Dry run first: the plan, and nothing on disk.
  Outcome dry = RunSweep(SweepArgs(csv, out, {"--dry_run"}), out + "/../dry.log");
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_EQ(Count(dry.output, "PENDING (new)"), 3) << dry.output;
  EXPECT_NE(dry.output.find("--lr_scheduler_type=bogus"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("--resume=auto"), std::string::npos) << dry.output;
  // Each row's cost from the trainer's estimate mode; the bad row says why it has none.
  EXPECT_EQ(Count(dry.output, "estimate on rtx4090: "), 2) << dry.output;
  EXPECT_EQ(Count(dry.output, "estimate: unavailable ("), 1) << dry.output;
  EXPECT_NE(dry.output.find("bogus"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("estimated for the rows to run: "), std::string::npos) << dry.output;
  EXPECT_FALSE(fs::exists(out + "/runs"));

  Outcome r = RunSweep(SweepArgs(csv, out, {"--parallel=2"}), out + "/../failing.log");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("FAILED row 1 01-d4-lr1e-3-"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("  | "), std::string::npos) << r.output;  // the log's tail
  EXPECT_NE(r.output.find("bogus"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 row(s) FAILED: 1 (01-d4-lr1e-3-"), std::string::npos) << r.output;
  const CsvTable t = Results(out);
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(Cell(t, 0, "status"), "DONE");
  EXPECT_EQ(Cell(t, 1, "status"), "FAILED");
  EXPECT_EQ(Cell(t, 2, "status"), "DONE");
  EXPECT_EQ(Cell(t, 1, "final_top1"), "");

  // --slurm: one array task, for the failed row only, and a script bash accepts.
  Outcome slurm = RunSweep(SweepArgs(csv, out, {"--slurm"}), out + "/../slurm.log");
  ASSERT_EQ(slurm.exit_code, 0) << slurm.output;
  EXPECT_NE(slurm.output.find("sbatch " + out + "/sweep.sbatch"), std::string::npos) << slurm.output;
  const std::string script = ReadFile(out + "/sweep.sbatch");
  EXPECT_NE(script.find("#SBATCH --array=1\n"), std::string::npos) << script;
  EXPECT_NE(script.find("--lr_scheduler_type=bogus"), std::string::npos) << script;
  EXPECT_EQ(script.find("--lr_scheduler_type=cosine"), std::string::npos) << script;
  EXPECT_EQ(std::system(("bash -n " + out + "/sweep.sbatch").c_str()), 0) << script;

  // A second sweep on the directory is refused while the lock is held.
  const int fd = ::open((out + "/.sweep.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  Outcome refused = RunSweep(SweepArgs(csv, out, {}), out + "/../refused.log");
  ::close(fd);
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("another sweep is running on " + out), std::string::npos)
      << refused.output;
  EXPECT_EQ(Count(ReadFile(RunDirOfRow(out, 1) + "/train.log"), "==== sweep: start "), 1);

  // An unknown column stops the sweep before anything runs, naming it.
  const std::string bad = WriteTable(out + "/../bad.csv", "approx_num_layers,num_epochs\n4,2\n");
  Outcome unknown = RunSweep(SweepArgs(bad, TempDir("bad"), {}), out + "/../bad.log");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("unknown column(s) 'num_epochs'"), std::string::npos) << unknown.output;
}

// SIGTERM to the sweep reaches the running trainers: they checkpoint, the sweep waits and exits
// 143, the rows are PENDING; the next run finishes them.
TEST(Sweep, SigtermStopsTheTrainersAndTheNextRunFinishes) {
  const std::string out = TempDir("sigterm");
  const std::string csv = WriteTable(out + "/../sigterm.csv",
                                     "approx_num_layers,per_device_train_batch_size\n8,4\n8,8\n");
  const std::vector<std::string> args = SweepArgs(csv, out, {"--parallel=2"}, /*epochs=*/12);
  const pid_t sweep = Spawn(args, out + "/../sigterm_first.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  std::string row0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (row0.empty()) row0 = RunDirOfRow(out, 0);
    if (!row0.empty() && HasCheckpoint(row0)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(!row0.empty() && HasCheckpoint(row0)) << ReadFile(out + "/../sigterm_first.log");
  kill(sweep, SIGTERM);
  Outcome first = Wait(sweep, out + "/../sigterm_first.log");
  EXPECT_EQ(first.exit_code, 143) << first.output;
  EXPECT_TRUE(ProcessesMentioning(out).empty()) << "the sweep returned before its trainers ended";
  const CsvTable t = Results(out);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(Cell(t, 0, "status"), "PENDING") << first.output;
  const nlohmann::json stopped = nlohmann::json::parse(ReadFile(row0 + "/summary.json"));
  EXPECT_EQ(stopped["stopped_by_signal"], true);

  Outcome second = RunSweep(args, out + "/../sigterm_second.log");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  const CsvTable done = Results(out);
  EXPECT_EQ(Cell(done, 0, "status"), "DONE");
  EXPECT_EQ(Cell(done, 1, "status"), "DONE");
  EXPECT_EQ(Cell(done, 0, "steps"), "96");  // 12 epochs x 32 samples / 4
}

}  // namespace
}  // namespace cf::sweep
