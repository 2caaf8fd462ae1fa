#include "convforever/sweep/trainer_flags.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/sweep/child_process.h"

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
  ASSIGN_OR_RETURN(Captured run, RunAndCapture({train_binary, "--helpxml"}));
  absl::StatusOr<TrainerFlags> flags = ParseHelpXml(run.out);
  if (!flags.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(train_binary, " --helpxml: ", flags.status().message(),
                                                   " (exit code ", run.exit_code, ")"));
  }
  return flags;
}

}  // namespace cf::sweep
