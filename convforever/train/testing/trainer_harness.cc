#include "convforever/train/testing/trainer_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <ATen/ATen.h>

#include "convforever/models/safetensors.h"
#include "gtest/gtest.h"

namespace cf::train::testing {

namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  fs::path dir = fs::path(root ? root : "/tmp") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json ReadJson(const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(ReadFile(path), nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << path << " is not JSON:\n" << ReadFile(path);
  return j;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log,
            const std::vector<std::string>& env) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 1);
  dup2(fd, 2);
  for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

pid_t SpawnTrainer(const std::vector<std::string>& args, const std::string& log) {
  return Spawn(With({kTrainBinary}, args), log);
}

Outcome Wait(pid_t pid, const std::string& log) {
  int status = 0;
  waitpid(pid, &status, 0);
  Outcome r;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.output = ReadFile(log);
  return r;
}

Outcome RunTrainer(const std::vector<std::string>& args, const std::string& dir) {
  const std::string log = dir + "/train.log";
  return Wait(SpawnTrainer(args, log), log);
}

std::vector<std::string> LaunchArgs(int n, const std::vector<std::string>& trainer_args) {
  return With({kLauncher, "-n", std::to_string(n), "--", kTrainBinary}, trainer_args);
}

Outcome RunLaunched(int n, const std::vector<std::string>& trainer_args, const std::string& log) {
  return Wait(Spawn(LaunchArgs(n, trainer_args), log), log);
}

std::vector<std::string> With(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::map<int64_t, double> StepLosses(const std::string& run_dir) {
  std::map<int64_t, double> losses;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("kind", "") != "metrics" || !j.contains("train/step_loss")) continue;
    const int64_t step = j["step"].get<int64_t>();
    EXPECT_EQ(losses.count(step), 0u) << "step " << step << " logged twice in " << run_dir;
    losses[step] = j["train/step_loss"].get<double>();
  }
  return losses;
}

void ExpectSameWeights(const std::string& dir_a, const std::string& dir_b, double rtol, double atol) {
  auto a = models::ReadSafetensors(dir_a + "/model.safetensors");
  auto b = models::ReadSafetensors(dir_b + "/model.safetensors");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    ASSERT_EQ((*a)[i].first, (*b)[i].first);
    EXPECT_TRUE(at::allclose((*a)[i].second, (*b)[i].second, rtol, atol))
        << (*a)[i].first << " max diff "
        << ((*a)[i].second - (*b)[i].second).abs().max().item<double>();
  }
}

// `pid` and all its descendants.
std::set<pid_t> ProcessTree(pid_t pid) {
  std::set<pid_t> tree = {pid};
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string line;
      std::getline(stat, line);
      const size_t close = line.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(line.substr(close + 2));
      char state;
      pid_t ppid = 0;
      rest >> state >> ppid;
      const pid_t child = std::stoi(name);
      if (tree.count(ppid) && !tree.count(child)) {
        tree.insert(child);
        grew = true;
      }
    }
  }
  return tree;
}

// Every descendant of `pid`, and `pid` itself, gets SIGKILL (a machine losing power).
void KillTree(pid_t pid) {
  const std::set<pid_t> tree = ProcessTree(pid);
  kill(pid, SIGKILL);
  for (pid_t p : tree) kill(p, SIGKILL);
}

}  // namespace cf::train::testing
