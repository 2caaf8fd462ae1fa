#include "convforever/base/json_limits.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace cf {

absl::Status CheckJsonLimits(absl::string_view text, const JsonLimits& limits,
                             absl::string_view what) {
  const std::string prefix = what.empty() ? "" : absl::StrCat(what, ": ");
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "JSON of ", text.size(),
                                                   " bytes exceeds the limit of ",
                                                   limits.max_bytes));
  }
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > limits.max_depth) {
          return absl::InvalidArgumentError(
              absl::StrCat(prefix, "JSON nested deeper than ", limits.max_depth, " levels"));
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

}  // namespace cf
