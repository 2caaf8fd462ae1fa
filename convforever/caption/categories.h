// The label set: category names from a text file, one per line, line order = class id.
//
// Lines are trimmed; a trailing blank line (final newline) is fine, but a blank line between
// names would shift every later class id, so it is an error, as are duplicates (compared
// case-insensitively, since answers are matched that way) and names containing a double quote or
// control characters. The errors name the file and line. "unknown" is reserved for unparsable
// answers and may not be a category.
#ifndef CONVFOREVER_CAPTION_CATEGORIES_H_
#define CONVFOREVER_CAPTION_CATEGORIES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cf::caption {

inline constexpr char kUnknownLabel[] = "unknown";

absl::StatusOr<std::vector<std::string>> LoadCategories(const std::string& path);
// The same rules on text already in memory; `source` names it in errors.
absl::StatusOr<std::vector<std::string>> ParseCategories(absl::string_view text,
                                                         const std::string& source);

}  // namespace cf::caption

#endif  // CONVFOREVER_CAPTION_CATEGORIES_H_
