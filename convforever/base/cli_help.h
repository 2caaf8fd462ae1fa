// `--help` for the project's command-line programs: the command's own flags, grouped, and exit 0.
//
// gflags' own --help lists every flag linked into the binary (glog's, gflags' own, those of
// libraries) and exits 1; a user asking `classify --help` wants the flags of classify. So each
// main() calls PrintHelpIfAsked before parsing its flags: when the arguments hold --help, -help,
// -h or --helpshort, it prints the usage line and the flags defined in the program's own source
// file (`own_file`, the path gflags records, e.g. "convforever/caption/main.cc"), in the groups
// given (titles and flag names, as the README groups them), with each flag's type, default and
// description; own flags not named by any group come last under "Other flags". Returns true when
// it printed (main then returns 0). --helpxml and --helpfull keep gflags' meaning.
#ifndef CONVFOREVER_BASE_CLI_HELP_H_
#define CONVFOREVER_BASE_CLI_HELP_H_

#include <string>
#include <vector>

namespace cf::base {

struct FlagGroup {
  std::string title;
  std::vector<std::string> flags;  // names without dashes, in the order to print
};

// The help text (see the file comment); groups naming a flag `own_file` does not define are an
// error in the program, reported in the text as "(unknown flag)" so a test catches it.
std::string FormatHelp(const std::string& usage, const std::string& own_file,
                       const std::vector<FlagGroup>& groups);

// Prints FormatHelp to stdout and returns true when argv asks for help.
bool PrintHelpIfAsked(int argc, char** argv, const std::string& usage, const std::string& own_file,
                      const std::vector<FlagGroup>& groups = {});

}  // namespace cf::base

#endif  // CONVFOREVER_BASE_CLI_HELP_H_
