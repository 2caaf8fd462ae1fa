// Class lists (one name per line, '#' comments, as --class_list files and the label-name files
// beside CIFAR's batches): ParseClassList, which ReadClassList runs on the file.
// Checked on every input: the names it promises (at least one; none empty, starting with '#',
// padded with whitespace, spanning lines or repeated), and that writing them back one per line
// parses to the same list.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "convforever/data/source.h"
#include "convforever/fuzz/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto names = cf::data::ParseClassList(text, "fuzz.txt");
  if (!names.ok()) return 0;
  CF_FUZZ_CHECK(!names->empty());
  std::set<std::string> seen;
  for (const std::string& name : *names) {
    CF_FUZZ_CHECK(!name.empty() && name[0] != '#');
    CF_FUZZ_CHECK(absl::StripAsciiWhitespace(name) == name);
    CF_FUZZ_CHECK(name.find('\n') == std::string::npos);
    CF_FUZZ_CHECK(seen.insert(name).second);
  }
  auto again = cf::data::ParseClassList(absl::StrJoin(*names, "\n"), "again.txt");
  CF_FUZZ_CHECK(again.ok() && *again == *names);
  return 0;
}
