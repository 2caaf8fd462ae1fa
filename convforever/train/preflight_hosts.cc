// The preflight's hosts and allreduce checks (only with --hostfile, DeepSpeed's format, as
// convforever/distributed/launch.sh reads it).
//
// hosts: every host that is not this machine resolves (getaddrinfo) and accepts a TCP connection
// on its ssh port (22), each within the preflight's timeout; this machine's names (localhost,
// 127.0.0.1, ::1, its host name) have nothing to connect to.
// allreduce: when every host answered, the ranks are started as launch.sh starts them: numbered
// host by host, torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR = the first host, or 127.0.0.1 when it is this machine, MASTER_PORT = a free port
// here), this binary with --preflight_allreduce (preflight.h) forked and exec'd here, or run with
// `ssh -o BatchMode=yes HOST env VARS <this binary's path> ...` elsewhere (the same path on every
// host, as in a container image). Each rank's output goes to a file in a scratch directory; the
// ranks get the timeout plus 30 s to finish, then are killed. Rank 0's line gives the bandwidth.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "convforever/train/preflight_checks.h"

namespace cf::train::preflight {
namespace {

using Clock = std::chrono::steady_clock;

bool IsLocalName(const std::string& host) {
  if (host == "localhost" || host == "127.0.0.1" || host == "::1") return true;
  char name[256] = {0};
  return gethostname(name, sizeof(name) - 1) == 0 && host == name;
}

// getaddrinfo on its own thread, so an unanswering resolver costs at most the timeout (the thread
// is left to finish on its own).
absl::StatusOr<std::vector<sockaddr_storage>> Resolve(const std::string& host, double timeout_s) {
  auto result = std::make_shared<std::promise<absl::StatusOr<std::vector<sockaddr_storage>>>>();
  std::future<absl::StatusOr<std::vector<sockaddr_storage>>> future = result->get_future();
  std::thread([host, result] {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int rc = getaddrinfo(host.c_str(), "22", &hints, &list);
    if (rc != 0) {
      result->set_value(absl::NotFoundError(absl::StrCat("does not resolve: ", gai_strerror(rc))));
      return;
    }
    std::vector<sockaddr_storage> out;
    for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
      sockaddr_storage s{};
      std::memcpy(&s, a->ai_addr, a->ai_addrlen);
      out.push_back(s);
    }
    freeaddrinfo(list);
    result->set_value(out);
  }).detach();
  if (future.wait_for(std::chrono::duration<double>(timeout_s)) != std::future_status::ready) {
    return absl::DeadlineExceededError(absl::StrFormat("does not resolve within %gs", timeout_s));
  }
  return future.get();
}

// A non-blocking connect, waited for up to the timeout.
absl::Status Connect(const sockaddr_storage& addr, double timeout_s) {
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  const socklen_t len = addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), len);
  int err = rc == 0 ? 0 : errno;
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = poll(&p, 1, static_cast<int>(timeout_s * 1000));
    if (rc == 0) {
      close(fd);
      return absl::DeadlineExceededError(absl::StrFormat("no answer on port 22 within %gs", timeout_s));
    }
    socklen_t size = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &size);
  }
  close(fd);
  if (err != 0) return absl::UnavailableError(absl::StrCat("port 22: ", std::strerror(err)));
  return absl::OkStatus();
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 29500;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

std::string SelfPath(const PreflightOptions& p) {
  if (!p.self_path.empty()) return p.self_path;
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("/proc/self/exe") : self.string();
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& log) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
  }
  for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  _exit(127);
}

std::string LastLine(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!absl::StripAsciiWhitespace(line).empty()) last = line;
  }
  return last;
}

std::string FindLine(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, prefix)) return line;
  }
  return "";
}

}  // namespace

absl::StatusOr<std::vector<Host>> ReadHostfile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read hostfile ", path));
  std::vector<Host> hosts;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    const std::string text(absl::StripAsciiWhitespace(line.substr(0, line.find('#'))));
    if (text.empty()) continue;
    std::vector<std::string> fields = absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    Host h;
    if (fields.size() != 2 || !absl::StartsWith(fields[1], "slots=") ||
        !absl::SimpleAtoi(absl::StripPrefix(fields[1], "slots="), &h.slots) || h.slots < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", lineno, ": expected 'HOSTNAME slots=N' (N >= 1), got '", text, "'"));
    }
    h.name = fields[0];
    h.local = IsLocalName(h.name);
    hosts.push_back(h);
  }
  if (hosts.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no hosts (lines 'HOSTNAME slots=N')"));
  return hosts;
}

CheckRow CheckHosts(Context& c) {
  if (c.preflight.hostfile.empty()) return {"hosts", CheckStatus::kSkip, "no --hostfile"};
  if (!c.hostfile_error.empty()) return {"hosts", CheckStatus::kFail, c.hostfile_error};
  std::vector<std::string> bad, good;
  for (const Host& h : c.hosts) {
    if (h.local) {
      good.push_back(absl::StrCat(h.name, " (this machine, ", h.slots, " slot(s))"));
      continue;
    }
    const auto start = Clock::now();
    absl::StatusOr<std::vector<sockaddr_storage>> addrs = Resolve(h.name, c.preflight.timeout_s);
    absl::Status reached = addrs.status();
    if (addrs.ok()) {
      const double left = c.preflight.timeout_s - std::chrono::duration<double>(Clock::now() - start).count();
      reached = absl::UnavailableError("no address");
      for (const sockaddr_storage& a : *addrs) {
        reached = Connect(a, std::max(0.5, left));
        if (reached.ok()) break;
      }
    }
    if (reached.ok()) {
      good.push_back(absl::StrCat(h.name, " (ssh port open, ", h.slots, " slot(s))"));
    } else {
      bad.push_back(absl::StrCat(h.name, " ", reached.message()));
    }
  }
  if (!bad.empty()) return {"hosts", CheckStatus::kFail, absl::StrCat("unreachable: ", absl::StrJoin(bad, "; "))};
  c.hosts_ok = true;
  return {"hosts", CheckStatus::kOk,
          absl::StrCat(c.hosts.size(), " host(s), world size ", c.world_size, ": ", absl::StrJoin(good, ", "))};
}

CheckRow CheckAllReduce(Context& c) {
  if (c.preflight.hostfile.empty()) return {"allreduce", CheckStatus::kSkip, "no --hostfile"};
  if (!c.hosts_ok) return {"allreduce", CheckStatus::kSkip, "not every host answered (hosts check)"};
  std::string pattern = (std::filesystem::temp_directory_path() / "cf-preflight-ranks-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return {"allreduce", CheckStatus::kFail, "cannot create a scratch directory"};
  const std::string dir = pattern;
  const std::string self = SelfPath(c.preflight);
  const std::string master = c.hosts.front().local ? "127.0.0.1" : c.hosts.front().name;
  const int port = FreePort();
  const std::vector<std::string> args = {"--preflight_allreduce",
                                         absl::StrFormat("--preflight_timeout_s=%g", c.preflight.timeout_s)};
  std::vector<pid_t> pids;
  std::vector<std::string> logs;
  int rank = 0;
  for (const Host& h : c.hosts) {
    for (int local = 0; local < h.slots; ++local, ++rank) {
      const std::vector<std::string> env = {
          absl::StrCat("RANK=", rank), absl::StrCat("WORLD_SIZE=", c.world_size),
          absl::StrCat("LOCAL_RANK=", local), absl::StrCat("LOCAL_WORLD_SIZE=", h.slots),
          absl::StrCat("MASTER_ADDR=", master), absl::StrCat("MASTER_PORT=", port)};
      const std::string log = absl::StrCat(dir, "/rank", rank, ".log");
      std::vector<std::string> argv;
      if (h.local) {
        argv.push_back(self);
        argv.insert(argv.end(), args.begin(), args.end());
        pids.push_back(Spawn(argv, env, log));
      } else {
        std::string remote = absl::StrCat("env ", absl::StrJoin(env, " "), " ", ShellQuote(self));
        for (const std::string& a : args) absl::StrAppend(&remote, " ", ShellQuote(a));
        argv = {"ssh", "-o", "BatchMode=yes", "-o",
                absl::StrFormat("ConnectTimeout=%d", static_cast<int>(c.preflight.timeout_s + 1)), h.name, remote};
        pids.push_back(Spawn(argv, {}, log));
      }
      logs.push_back(log);
    }
  }
  // Wait for every rank, killing the rest at the deadline.
  const auto deadline = Clock::now() + std::chrono::duration<double>(c.preflight.timeout_s + 30);
  std::vector<int> codes(pids.size(), -1);
  size_t running = pids.size();
  while (running > 0) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (codes[i] != -1) continue;
      int status = 0;
      if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
        codes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        --running;
      }
    }
    if (running == 0) break;
    if (Clock::now() > deadline) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (codes[i] == -1) kill(pids[i], SIGKILL);
      }
      for (size_t i = 0; i < pids.size(); ++i) {
        if (codes[i] == -1) {
          waitpid(pids[i], nullptr, 0);
          codes[i] = 137;
        }
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::vector<std::string> failed;
  for (size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] != 0) failed.push_back(absl::StrCat("rank ", i, " exit ", codes[i], ": ", LastLine(logs[i])));
  }
  const std::string line = FindLine(logs.front(), "preflight_allreduce:");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!failed.empty()) return {"allreduce", CheckStatus::kFail, absl::StrJoin(failed, "; ")};
  if (line.empty()) return {"allreduce", CheckStatus::kFail, "rank 0 printed no result"};
  return {"allreduce", CheckStatus::kOk,
          std::string(absl::StripAsciiWhitespace(absl::StripPrefix(line, "preflight_allreduce:")))};
}

}  // namespace cf::train::preflight
