// Reading a whole small text file (metrics logs, summaries, CSVs) with errors that name it.
#ifndef CONVFOREVER_REPORT_TEXT_FILE_H_
#define CONVFOREVER_REPORT_TEXT_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace cf::report {

// The file's bytes; NOT_FOUND "<path>: no such file", or INTERNAL naming `path` and the reason.
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_TEXT_FILE_H_
