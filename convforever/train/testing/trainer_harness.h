// End-to-end test helpers for the trainer binary: start it (alone, or as ranks through the
// repository's launcher), wait for it, and read what it wrote (metrics.jsonl step losses, JSON
// files, checkpoints' weights). Paths are relative to the test's runfiles root, where Bazel runs
// tests; the tests list //convforever/train:train and //convforever/distributed:launch.sh as data.
// Test-only; not thread-safe (fork).
#ifndef CONVFOREVER_TRAIN_TESTING_TRAINER_HARNESS_H_
#define CONVFOREVER_TRAIN_TESTING_TRAINER_HARNESS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace cf::train::testing {

inline constexpr char kTrainBinary[] = "convforever/train/train";
inline constexpr char kLauncher[] = "convforever/distributed/launch.sh";

// A fresh, empty directory under $TEST_TMPDIR (or /tmp).
std::string TempDir(const std::string& name);

std::string ReadFile(const std::string& path);
// Parses `path`; a test failure naming it when it is not JSON (the result is then discarded).
nlohmann::json ReadJson(const std::string& path);

struct Outcome {
  int exit_code = -1;
  int signal = 0;
  std::string output;  // stdout + stderr
};

// Starts argv (argv[0] the program) with stdout and stderr into `log` and `env` ("NAME=value")
// added to its environment.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log,
            const std::vector<std::string>& env = {});
// The trainer binary with `args`.
pid_t SpawnTrainer(const std::vector<std::string>& args, const std::string& log);
Outcome Wait(pid_t pid, const std::string& log);
// The trainer with `args`, its output in `dir`/train.log.
Outcome RunTrainer(const std::vector<std::string>& args, const std::string& dir);

// launch.sh -n N -- trainer args...
std::vector<std::string> LaunchArgs(int n, const std::vector<std::string>& trainer_args);
Outcome RunLaunched(int n, const std::vector<std::string>& trainer_args, const std::string& log);

std::vector<std::string> With(std::vector<std::string> args, const std::vector<std::string>& more);

// `pid` and all its descendants (from /proc).
std::set<pid_t> ProcessTree(pid_t pid);
// SIGKILL to `pid` and every descendant (a machine losing power).
void KillTree(pid_t pid);

// step -> train/step_loss from (rank 0's) metrics.jsonl; a test failure on a step logged twice.
std::map<int64_t, double> StepLosses(const std::string& run_dir);

// Two checkpoints' model.safetensors agree tensor by tensor within the tolerances (names, order
// and shapes exactly).
void ExpectSameWeights(const std::string& dir_a, const std::string& dir_b, double rtol = 1e-4,
                       double atol = 1e-6);

}  // namespace cf::train::testing

#endif  // CONVFOREVER_TRAIN_TESTING_TRAINER_HARNESS_H_
