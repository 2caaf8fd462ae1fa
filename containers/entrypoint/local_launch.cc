#include "containers/entrypoint/local_launch.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cf::entrypoint {
namespace {

volatile sig_atomic_t g_signal = 0;
void OnSignal(int sig) { g_signal = sig; }

absl::StatusOr<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("finding a free port: ", std::strerror(errno)));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

struct Rank {
  pid_t pid = -1;
  int fd = -1;           // read end of the rank's stdout+stderr pipe
  std::string pending;   // a line not yet ended
  bool exited = false;
  int code = 0;
};

void WritePrefixed(int rank, Rank& r, const char* data, size_t n, bool flush_all) {
  r.pending.append(data, n);
  size_t start = 0;
  for (size_t nl; (nl = r.pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string line = absl::StrCat("[rank ", rank, "] ", r.pending.substr(start, nl - start + 1));
    fwrite(line.data(), 1, line.size(), stdout);
  }
  r.pending.erase(0, start);
  if (flush_all && !r.pending.empty()) {
    std::string line = absl::StrCat("[rank ", rank, "] ", r.pending, "\n");
    fwrite(line.data(), 1, line.size(), stdout);
    r.pending.clear();
  }
  fflush(stdout);
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// The child side of fork(): environment, output, exec. Never returns.
[[noreturn]] void ExecRank(const LaunchOptions& o, int local_rank, int port, int write_fd) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  setpgid(0, 0);  // a group per rank, so a stop reaches what the rank started too
  dup2(write_fd, STDOUT_FILENO);
  dup2(write_fd, STDERR_FILENO);
  close(write_fd);
  const std::string rank = std::to_string(o.node_rank * o.nprocs + local_rank);
  const std::string local = std::to_string(local_rank), world = std::to_string(o.nnodes * o.nprocs);
  const std::string local_world = std::to_string(o.nprocs), group = std::to_string(o.node_rank);
  const std::string p = std::to_string(port);
  setenv("RANK", rank.c_str(), 1);
  setenv("LOCAL_RANK", local.c_str(), 1);
  setenv("WORLD_SIZE", world.c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", local_world.c_str(), 1);
  setenv("GROUP_RANK", group.c_str(), 1);
  setenv("MASTER_ADDR", o.master_addr.empty() ? "127.0.0.1" : o.master_addr.c_str(), 1);
  setenv("MASTER_PORT", p.c_str(), 1);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(o.program.c_str()));
  for (const std::string& a : o.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(o.program.c_str(), argv.data());
  std::fprintf(stderr, "launch: cannot run %s: %s\n", o.program.c_str(), std::strerror(errno));
  _exit(127);
}

void SignalAll(std::vector<Rank>& ranks, int sig) {
  for (Rank& r : ranks) {
    // The rank's process group: the rank, or children of it that still hold its output pipe. A
    // group whose rank is reaped and whose pipe is closed is gone; its id may be reused.
    if (r.pid > 0 && (!r.exited || r.fd >= 0)) kill(-r.pid, sig);
  }
}

}  // namespace

absl::Status ParseLaunchArgs(const std::vector<std::string>& args, LaunchOptions* o) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i], value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[i + 1];
    }
    if (name == "--master_addr") {
      if (value.empty()) return absl::InvalidArgumentError("launch: --master_addr needs a host");
      o->master_addr = value;
      if (eq == std::string::npos) ++i;
      continue;
    }
    int* target = nullptr;
    if (name == "-n" || name == "--nproc_per_node" || name == "--nprocs") target = &o->nprocs;
    if (name == "--master_port") target = &o->master_port;
    if (name == "--nnodes") target = &o->nnodes;
    if (name == "--node_rank") target = &o->node_rank;
    if (target == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "launch: unknown option '", args[i],
          "' (have -n N, --master_port P, --nnodes K, --node_rank I, --master_addr HOST; the "
          "trainer's flags go after --)"));
    }
    const int least = (target == &o->nprocs || target == &o->nnodes) ? 1 : 0;
    if (!absl::SimpleAtoi(value, target) || *target < least) {
      return absl::InvalidArgumentError(absl::StrCat("launch: ", name, " needs a number, got '", value, "'"));
    }
    if (eq == std::string::npos) ++i;
  }
  if (o->nnodes > 1 && (o->master_addr.empty() || o->master_port == 0)) {
    return absl::InvalidArgumentError(
        "launch: --nnodes > 1 needs --master_addr and --master_port (the same on every node: node 0's "
        "address and a port open between the nodes)");
  }
  if (o->node_rank >= o->nnodes) {
    return absl::InvalidArgumentError(
        absl::StrCat("launch: --node_rank ", o->node_rank, " is not below --nnodes ", o->nnodes));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> RunLocalLaunch(const LaunchOptions& o) {
  int port = o.master_port;
  if (port == 0) {
    absl::StatusOr<int> free_port = FreePort();
    if (!free_port.ok()) return free_port.status();
    port = *free_port;
  }
  struct sigaction sa{};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::vector<Rank> ranks(o.nprocs);
  for (int k = 0; k < o.nprocs; ++k) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
    if (pid == 0) {
      close(fds[0]);
      ExecRank(o, k, port, fds[1]);
    }
    close(fds[1]);
    ranks[k].pid = pid;
    ranks[k].fd = fds[0];
  }

  int job_code = 0;
  bool stopping = false;
  auto stop_deadline = std::chrono::steady_clock::time_point::max();
  int forwarded = 0;
  for (;;) {
    // Output first, so nothing a rank wrote before exiting is lost.
    std::vector<pollfd> polls;
    std::vector<int> owners;
    for (int k = 0; k < o.nprocs; ++k) {
      if (ranks[k].fd >= 0) {
        polls.push_back({ranks[k].fd, POLLIN, 0});
        owners.push_back(k);
      }
    }
    if (!polls.empty()) poll(polls.data(), polls.size(), 100);
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (size_t i = 0; i < polls.size(); ++i) {
      if ((polls[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      Rank& r = ranks[owners[i]];
      char buf[8192];
      const ssize_t n = read(r.fd, buf, sizeof(buf));
      if (n > 0) {
        WritePrefixed(owners[i], r, buf, static_cast<size_t>(n), false);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        WritePrefixed(owners[i], r, "", 0, true);
        close(r.fd);
        r.fd = -1;
      }
    }
    if (g_signal != 0 && forwarded != g_signal) {
      forwarded = g_signal;
      SignalAll(ranks, g_signal);
      if (job_code == 0) job_code = 128 + g_signal;
    }
    // Reap.
    bool all_done = true;
    for (int k = 0; k < o.nprocs; ++k) {
      Rank& r = ranks[k];
      if (r.exited) continue;
      int status = 0;
      const pid_t got = waitpid(r.pid, &status, WNOHANG);
      if (got == r.pid) {
        r.exited = true;
        r.code = ExitCode(status);
        if (r.code != 0 && !stopping) {
          std::fprintf(stderr, "launch: rank %d exited with code %d; stopping the other ranks\n", k, r.code);
          if (job_code == 0) job_code = r.code;
          stopping = true;
          SignalAll(ranks, SIGTERM);
          stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.grace_seconds);
        }
      }
      if (!r.exited || r.fd >= 0) all_done = false;
    }
    if (all_done) break;
    if (stopping && std::chrono::steady_clock::now() > stop_deadline) {
      SignalAll(ranks, SIGKILL);
      stop_deadline = std::chrono::steady_clock::time_point::max();
    }
  }
  return job_code;
}

}  // namespace cf::entrypoint
