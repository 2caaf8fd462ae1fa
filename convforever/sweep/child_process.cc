#include "convforever/sweep/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cf::sweep {

absl::StatusOr<pid_t> StartChild(const std::vector<std::string>& argv, const std::string& log_path,
                                 int keep_fd) {
  if (argv.empty()) return absl::InvalidArgumentError("StartChild: empty command");
  // Everything the child needs is prepared before fork().
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::string exec_failed = absl::StrCat("sweep: cannot execute ", argv[0], ": ");
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid > 0) return pid;

  // The child: only async-signal-safe calls from here on.
  setpgid(0, 0);
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) _exit(126);
  if (getppid() != parent) _exit(126);  // the sweep died before the request took effect
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGINT, SIGTERM, SIGCHLD, SIGPIPE, SIGHUP}) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const int in = ::open("/dev/null", O_RDONLY);
  if (in >= 0) dup2(in, 0);
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log < 0) _exit(125);
  dup2(log, 1);
  dup2(log, 2);
  if (log > 2) ::close(log);
  if (in > 2) ::close(in);
  (void)keep_fd;  // opened without O_CLOEXEC by the caller: it survives exec as it is
  execv(args[0], args.data());
  const int err = errno;
  (void)!write(2, exec_failed.data(), exec_failed.size());
  const char* why = strerror(err);
  (void)!write(2, why, std::strlen(why));
  (void)!write(2, "\n", 1);
  _exit(127);
}

}  // namespace cf::sweep

namespace cf::sweep {

absl::StatusOr<Captured> RunAndCapture(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("RunAndCapture: no program");
  if (access(argv[0].c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(argv[0], " is not an executable (", std::strerror(errno), ")"));
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // stderr goes to an unlinked temporary file, read back at the end (no second pipe to drain).
  char err_path[] = "/tmp/cf-sweep-stderr.XXXXXX";
  const int err_fd = mkstemp(err_path);
  if (err_fd >= 0) unlink(err_path);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    dup2(fds[1], 1);
    const int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(err_fd >= 0 ? err_fd : null_fd, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  Captured c;
  char buf[65536];
  while (true) {
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      c.out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (err_fd >= 0) {
    lseek(err_fd, 0, SEEK_SET);
    for (ssize_t n; (n = read(err_fd, buf, sizeof(buf))) > 0;) c.err.append(buf, static_cast<size_t>(n));
    close(err_fd);
  }
  return c;
}

}  // namespace cf::sweep
