#include "convforever/data/shard_pattern.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convforever/base/status_macros.h"

namespace cf::data {

absl::StatusOr<std::vector<std::string>> ExpandBraces(const std::string& pattern) {
  const size_t open = pattern.find('{');
  if (open == std::string::npos) {
    if (pattern.find('}') != std::string::npos) return absl::InvalidArgumentError("unbalanced '}' in " + pattern);
    return std::vector<std::string>{pattern};
  }
  const size_t close = pattern.find('}', open);
  if (close == std::string::npos) return absl::InvalidArgumentError("unbalanced '{' in " + pattern);
  const std::string head = pattern.substr(0, open), body = pattern.substr(open + 1, close - open - 1);
  ASSIGN_OR_RETURN(auto tails, ExpandBraces(pattern.substr(close + 1)));
  std::vector<std::string> alts;
  const size_t dots = body.find("..");
  if (dots != std::string::npos) {
    const std::string a = body.substr(0, dots), b = body.substr(dots + 2);
    int64_t lo = 0, hi = 0;
    if (!absl::SimpleAtoi(a, &lo) || !absl::SimpleAtoi(b, &hi) || lo > hi || hi - lo >= 1000000) {
      return absl::InvalidArgumentError(absl::StrCat("bad range {", body, "} in ", pattern));
    }
    const size_t width = (a.size() > 1 && a[0] == '0') ? a.size() : 0;
    for (int64_t v = lo; v <= hi; ++v) {
      std::string s = absl::StrCat(v);
      if (s.size() < width) s = std::string(width - s.size(), '0') + s;
      alts.push_back(s);
    }
  } else {
    alts = absl::StrSplit(body, ',');
  }
  std::vector<std::string> out;
  for (const auto& alt : alts) {
    for (const auto& tail : tails) out.push_back(head + alt + tail);
  }
  return out;
}

}  // namespace cf::data
