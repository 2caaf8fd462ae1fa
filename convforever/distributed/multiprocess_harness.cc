#include "convforever/distributed/multiprocess_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace cf::distributed::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

std::vector<float> ReadFloats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<float> out;
  float v;
  while (in.read(reinterpret_cast<char*>(&v), sizeof(v))) out.push_back(v);
  return out;
}

std::vector<RankResult> RunRanks(const std::string& binary, int world_size,
                                 const std::vector<std::string>& args, double deadline_s,
                                 double grace_after_failure_s, int given_port,
                                 const std::vector<std::pair<std::string, std::string>>& extra_env) {
  static int run = 0;
  ++run;
  const int port = given_port > 0 ? given_port : FreeLoopbackPort();
  const auto start = std::chrono::steady_clock::now();
  std::vector<pid_t> pids(world_size);
  std::vector<std::string> err_paths(world_size);
  for (int r = 0; r < world_size; ++r) {
    err_paths[r] = TempPath("run" + std::to_string(run) + "_rank" + std::to_string(r) + ".err");
    pids[r] = fork();
    if (pids[r] == 0) {
      int fd = open(err_paths[r].c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(world_size).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(world_size).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      for (const auto& [name, value] : extra_env) setenv(name.c_str(), value.c_str(), 1);
      std::vector<char*> argv = {const_cast<char*>(binary.c_str())};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
  }
  std::vector<RankResult> results(world_size);
  int remaining = world_size;
  std::vector<bool> done(world_size, false);
  double first_failure = -1;
  while (remaining > 0) {
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bool grace_over = first_failure >= 0 && elapsed > first_failure + grace_after_failure_s;
    for (int r = 0; r < world_size; ++r) {
      if (done[r]) continue;
      int status = 0;
      pid_t got = waitpid(pids[r], &status, WNOHANG);
      if (got == 0 && elapsed < deadline_s && !grace_over) continue;
      if (got == 0) {
        kill(pids[r], SIGKILL);
        waitpid(pids[r], &status, 0);
        (grace_over ? results[r].killed_after_peer_failure : results[r].killed_at_deadline) = true;
      } else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && first_failure < 0) {
        first_failure = elapsed;
      }
      done[r] = true;
      --remaining;
      results[r].seconds = elapsed;
      if (WIFEXITED(status)) results[r].exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) results[r].signal = WTERMSIG(status);
      results[r].err = ReadAll(err_paths[r]);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return results;
}

}  // namespace cf::distributed::testing
