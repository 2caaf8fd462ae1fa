// ParseCategories: the label file, one category per line. Promises checked on every accepted
// input: at least one name; every name trimmed, non-empty, without '"' or control characters,
// not "unknown" in any case, unique case-insensitively; and the names joined by newlines parse
// back to the same list (the file a user would write from them).
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "convforever/caption/categories.h"
#include "convforever/fuzz/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = cf::caption::ParseCategories(text, "fuzz.txt");
  if (!parsed.ok()) {
    CF_FUZZ_FAIL_IF(!absl::IsInvalidArgument(parsed.status()));
    return 0;
  }
  const std::vector<std::string>& names = *parsed;
  CF_FUZZ_FAIL_IF(names.empty());
  std::set<std::string> seen;
  for (const std::string& name : names) {
    CF_FUZZ_FAIL_IF(name.empty() || name != absl::StripAsciiWhitespace(name));
    for (char c : name) {
      CF_FUZZ_FAIL_IF(c == '"' || static_cast<unsigned char>(c) < 0x20);
    }
    const std::string lower = absl::AsciiStrToLower(name);
    CF_FUZZ_FAIL_IF(lower == cf::caption::kUnknownLabel || !seen.insert(lower).second);
  }
  const auto again = cf::caption::ParseCategories(absl::StrJoin(names, "\n"), "again.txt");
  CF_FUZZ_FAIL_IF(!again.ok() || *again != names);
  return 0;
}
