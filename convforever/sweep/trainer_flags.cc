#include "convforever/sweep/trainer_flags.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cf::sweep {
namespace {

// The text between <tag> and </tag> at or after `from` and before `limit`, or npos in *at.
absl::string_view Element(absl::string_view xml, absl::string_view tag, size_t from, size_t limit,
                          size_t* at) {
  const std::string open = absl::StrCat("<", tag, ">");
  const std::string close = absl::StrCat("</", tag, ">");
  const size_t b = xml.find(open, from);
  if (b == absl::string_view::npos || b >= limit) {
    *at = absl::string_view::npos;
    return {};
  }
  const size_t e = xml.find(close, b + open.size());
  if (e == absl::string_view::npos || e > limit) {
    *at = absl::string_view::npos;
    return {};
  }
  *at = b;
  return xml.substr(b + open.size(), e - b - open.size());
}

}  // namespace

absl::StatusOr<TrainerFlags> ParseHelpXml(absl::string_view xml) {
  TrainerFlags flags;
  size_t pos = 0;
  while (true) {
    const size_t b = xml.find("<flag>", pos);
    if (b == absl::string_view::npos) break;
    const size_t e = xml.find("</flag>", b);
    if (e == absl::string_view::npos) {
      return absl::InvalidArgumentError("trainer --helpxml: a <flag> element is not closed");
    }
    size_t at = 0;
    const absl::string_view name = Element(xml, "name", b, e, &at);
    if (at == absl::string_view::npos || name.empty()) {
      return absl::InvalidArgumentError("trainer --helpxml: a <flag> element has no <name>");
    }
    const absl::string_view type = Element(xml, "type", b, e, &at);
    flags[std::string(name)] = at == absl::string_view::npos ? "string" : std::string(type);
    pos = e;
  }
  if (flags.empty()) {
    return absl::InvalidArgumentError("trainer --helpxml printed no <flag> elements");
  }
  return flags;
}

absl::StatusOr<TrainerFlags> QueryTrainerFlags(const std::string& train_binary) {
  if (access(train_binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(
        "trainer binary ", train_binary, " is not an executable (", std::strerror(errno),
        "); build it with `bazel build //convforever/train:train` or pass --train_binary"));
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    dup2(fds[1], 1);
    const int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      dup2(null_fd, 0);
      dup2(null_fd, 2);
    }
    execl(train_binary.c_str(), train_binary.c_str(), "--helpxml", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[65536];
  while (true) {
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  absl::StatusOr<TrainerFlags> flags = ParseHelpXml(out);
  if (!flags.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(train_binary, " --helpxml: ", flags.status().message(),
                     WIFEXITED(status) ? absl::StrCat(" (exit code ", WEXITSTATUS(status), ")")
                                       : std::string(" (killed by a signal)")));
  }
  return flags;
}

}  // namespace cf::sweep
