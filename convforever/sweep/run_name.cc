#include "convforever/sweep/run_name.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace cf::sweep {
namespace {

std::string Sanitize(absl::string_view value) {
  std::string out;
  for (char c : value) {
    const bool keep = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '+' ||
                      c == '-';
    out.push_back(keep ? c : '_');
  }
  return out;
}

}  // namespace

uint64_t Fnv1a64(absl::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string RunName(size_t row, const std::vector<FlagValue>& flags, absl::string_view identity) {
  std::map<std::string, std::string> last;
  for (const FlagValue& f : flags) last[f.name] = f.value;
  auto get = [&](const char* name) -> std::string {
    const auto it = last.find(name);
    return it == last.end() ? std::string() : Sanitize(it->second);
  };
  std::vector<std::string> parts = {absl::StrFormat("%02d", row)};
  if (const std::string d = get("depth"); !d.empty()) parts.push_back("d" + d);
  const std::string mb = get("micro_batch_size");
  const std::string accum = get("gradient_accumulation_steps");
  if (!mb.empty()) parts.push_back(accum.empty() ? "b" + mb : absl::StrCat("b", mb, "x", accum));
  if (const std::string lr = get("lr"); !lr.empty()) parts.push_back("lr" + lr);
  parts.push_back(absl::StrFormat("%08x", static_cast<uint32_t>(Fnv1a64(identity) >> 32)));
  return absl::StrJoin(parts, "-");
}

}  // namespace cf::sweep
