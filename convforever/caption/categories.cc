#include "convforever/caption/categories.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cf::caption {

absl::StatusOr<std::vector<std::string>> ParseCategories(absl::string_view text,
                                                         const std::string& source) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  while (!lines.empty() && absl::StripAsciiWhitespace(lines.back()).empty()) lines.pop_back();
  if (lines.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no categories"));
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string name(absl::StripAsciiWhitespace(lines[i]));
    const std::string where = absl::StrCat(source, ":", i + 1);
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": blank line between categories (it would shift the class ids)"));
    }
    for (char c : name) {
      if (c == '"' || static_cast<unsigned char>(c) < 0x20) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": bad character in category '", name, "'"));
      }
    }
    const std::string lower = absl::AsciiStrToLower(name);
    if (lower == kUnknownLabel) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": 'unknown' is reserved"));
    }
    if (!seen.insert(lower).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": duplicate category '", name, "'"));
    }
    out.push_back(name);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> LoadCategories(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open categories file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseCategories(buffer.str(), path);
}

}  // namespace cf::caption
