#include "convforever/base/cli_help.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"

namespace cf::base {
namespace {

void AppendFlag(const gflags::CommandLineFlagInfo& f, std::string* out) {
  std::string value = f.type == "string" ? absl::StrCat("\"", f.default_value, "\"") : f.default_value;
  absl::StrAppend(out, "  --", f.name, " (", f.type, ", default ", value, ")\n      ", f.description, "\n");
}

}  // namespace

std::string FormatHelp(const std::string& usage, const std::string& own_file,
                       const std::vector<FlagGroup>& groups) {
  std::vector<gflags::CommandLineFlagInfo> all;
  gflags::GetAllFlags(&all);
  std::map<std::string, gflags::CommandLineFlagInfo> own;
  for (const auto& f : all) {
    if (absl::EndsWith(f.filename, own_file)) own[f.name] = f;
  }
  std::string out = absl::StrCat(usage, "\n");
  std::set<std::string> printed;
  for (const FlagGroup& g : groups) {
    absl::StrAppend(&out, "\n", g.title, ":\n");
    for (const std::string& name : g.flags) {
      auto it = own.find(name);
      if (it == own.end()) {
        absl::StrAppend(&out, "  --", name, " (unknown flag)\n");
        continue;
      }
      AppendFlag(it->second, &out);
      printed.insert(name);
    }
  }
  bool other = false;
  for (const auto& [name, f] : own) {
    if (printed.count(name)) continue;
    if (!other) absl::StrAppend(&out, "\n", groups.empty() ? "Flags" : "Other flags", ":\n");
    other = true;
    AppendFlag(f, &out);
  }
  absl::StrAppend(&out, "\nFlags may also come from a file: --flagfile=F (one --name=value per line).\n");
  return out;
}

bool PrintHelpIfAsked(int argc, char** argv, const std::string& usage, const std::string& own_file,
                      const std::vector<FlagGroup>& groups) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strcmp(a, "--") == 0) break;
    if (std::strcmp(a, "--help") == 0 || std::strcmp(a, "-help") == 0 || std::strcmp(a, "-h") == 0 ||
        std::strcmp(a, "--helpshort") == 0 || std::strcmp(a, "-helpshort") == 0) {
      const std::string text = FormatHelp(usage, own_file, groups);
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    }
  }
  return false;
}

}  // namespace cf::base
