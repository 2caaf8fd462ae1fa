// Limits on untrusted JSON text (HTTP answers, LLM output, user files), checked before parsing.
//
// nlohmann::json parses and destroys without recursion, but copying, dumping and comparing a
// value recurse once per nesting level: `{"error": [[[[...]]]]}` with a million brackets, dumped
// into an error message, overflows the stack. A body far larger than any real answer would also
// be copied whole into strings. CheckJsonLimits() scans the bytes once (no allocation, no
// recursion) and rejects both with a clear error, so a parser can refuse them up front. Pure;
// thread-safe.
#ifndef CONVFOREVER_BASE_JSON_LIMITS_H_
#define CONVFOREVER_BASE_JSON_LIMITS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cf {

struct JsonLimits {
  // Arrays and objects inside each other. Every format we read nests less than 10 deep.
  int max_depth = 64;
  // The whole text, in bytes.
  size_t max_bytes = size_t{64} << 20;
};

// INVALID_ARGUMENT "JSON nested deeper than N levels" / "JSON of N bytes exceeds the limit of M"
// (prefixed by `what` when given), else OK. Brackets inside strings do not count; the text need
// not be valid JSON (the parser judges that).
absl::Status CheckJsonLimits(absl::string_view text, const JsonLimits& limits = {},
                             absl::string_view what = "");

}  // namespace cf

#endif  // CONVFOREVER_BASE_JSON_LIMITS_H_
