// The trainer's JSONL records ({"path" or "url": ..., "label": name or integer} per line):
// ParseJsonlRecords, which OpenJsonlSource runs on the file, with and without a class list and
// with skip_malformed off and on.
// Checked on every input: every record kept has a location and a label in [0, classes); nothing is
// kept, excluded or counted twice (at most one outcome per non-blank line); a malformed line is
// counted only when skip_malformed asked for it; and skipping never turns an accepted file into
// an error or changes which records are kept.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "convforever/data/source.h"
#include "convforever/fuzz/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  int64_t lines = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) lines += !absl::StripAsciiWhitespace(line).empty();
  const std::vector<std::string> names = {"cat", "dog", "bird"};
  for (const std::vector<std::string>& classes : {std::vector<std::string>{}, names}) {
    cf::data::DatasetSpec spec{"jsonl", "/data/train.jsonl"};
    spec.num_classes = 5;
    const int num_classes = classes.empty() ? spec.num_classes : static_cast<int>(classes.size());
    auto strict = cf::data::ParseJsonlRecords(text, spec, classes);
    spec.skip_malformed = true;
    auto lax = cf::data::ParseJsonlRecords(text, spec, classes);
    if (strict.ok()) {
      CF_FUZZ_CHECK(lax.ok() && lax->items.size() == strict->items.size());
      CF_FUZZ_CHECK(strict->excluded.count("malformed_line") == 0);
    }
    if (!lax.ok()) continue;
    CF_FUZZ_CHECK(!lax->items.empty());
    int64_t outcomes = static_cast<int64_t>(lax->items.size());
    for (const auto& [reason, count] : lax->excluded) {
      CF_FUZZ_CHECK(count > 0);
      outcomes += count;
    }
    CF_FUZZ_CHECK(outcomes <= lines);
    for (const auto& item : lax->items) {
      CF_FUZZ_CHECK(!item.location.empty());
      CF_FUZZ_CHECK(item.label >= 0 && item.label < num_classes);
    }
  }
  return 0;
}
