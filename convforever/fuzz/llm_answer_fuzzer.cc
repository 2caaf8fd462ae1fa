// The LLM's answer: ParseCompletion over an OpenAI-compatible response body, then MatchCategory
// on its content, as the classifier runs them; and MatchCategory on the raw bytes too. The first
// input byte picks the mode: bit 0 JSON (the json_schema prompt: exactly {"category": "<name>"})
// or text (earliest whole-word, case-insensitive name); bit 1 the category list. The rest is the
// body. Streamed (SSE) chunks and tool calls are not answers we accept: they must come back as
// errors or empty content, never crash.
//
// Promises checked: ParseCompletion fails only with the documented codes and message prefixes,
// and its token counts lie in [0, kMaxTokenCount]; MatchCategory returns -1 or a valid index, and
// agrees with a straightforward reference: in JSON mode the answer is an object whose only key
// "category" names exactly that category; in text mode the category is the one whose earliest
// whole-word occurrence comes first (the longest at the same place).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "convforever/caption/prompt.h"
#include "nlohmann/json.hpp"
#include "convforever/fuzz/check.h"

namespace {

// The bundled list's head, and a list of names that overlap and hold non-word characters.
const std::vector<std::string>& Categories(int which) {
  static const auto* const kBundled = new std::vector<std::string>{
      "fish", "reptile", "amphibian", "bird", "mammal", "insect", "dog", "cat", "flower", "tree"};
  static const auto* const kTricky = new std::vector<std::string>{
      "cat", "Cat Food", "hot-dog", "dog", "c++", "sea lion", "lion", "x", "Ünïcode", "a.b"};
  return which == 0 ? *kBundled : *kTricky;
}

bool IsWordChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

// Earliest whole-word position of `name` in `text` (both lower-case), or npos.
size_t FirstWholeWord(const std::string& text, const std::string& name) {
  for (size_t pos = text.find(name); pos != std::string::npos; pos = text.find(name, pos + 1)) {
    const size_t end = pos + name.size();
    if ((pos == 0 || !IsWordChar(text[pos - 1])) && (end == text.size() || !IsWordChar(text[end]))) {
      return pos;
    }
  }
  return std::string::npos;
}

int ReferenceText(absl::string_view answer, const std::vector<std::string>& categories) {
  const std::string text = absl::AsciiStrToLower(answer);
  int best = -1;
  size_t best_pos = std::string::npos;
  for (size_t i = 0; i < categories.size(); ++i) {
    const size_t pos = FirstWholeWord(text, absl::AsciiStrToLower(categories[i]));
    if (pos == std::string::npos) continue;
    if (best < 0 || pos < best_pos ||
        (pos == best_pos && categories[i].size() > categories[best].size())) {
      best = static_cast<int>(i);
      best_pos = pos;
    }
  }
  return best;
}

void CheckMatch(absl::string_view answer, const std::vector<std::string>& categories, bool json_mode) {
  const int id = cf::caption::MatchCategory(answer, categories, json_mode);
  CF_FUZZ_FAIL_IF(id < -1 || id >= static_cast<int>(categories.size()));
  if (!json_mode) {
    CF_FUZZ_FAIL_IF(id != ReferenceText(answer, categories));
    return;
  }
  if (id < 0) return;
  const std::string trimmed(absl::StripAsciiWhitespace(answer));
  const auto doc = nlohmann::json::parse(trimmed, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || doc.size() != 1 || !doc.contains("category") ||
      doc["category"] != categories[id]) {
    CF_FUZZ_FAIL("a JSON-mode match is exactly {\"category\": <that category>}");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool json_mode = data[0] & 1;
  const std::vector<std::string>& categories = Categories((data[0] >> 1) & 1);
  const absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  const auto completion = cf::caption::ParseCompletion(body);
  if (completion.ok()) {
    for (int64_t n : {completion->prompt_tokens, completion->completion_tokens}) {
      CF_FUZZ_FAIL_IF(n < 0 || n > cf::caption::kMaxTokenCount);
    }
    CF_FUZZ_FAIL_IF(completion->total_tokens < 0);
    CheckMatch(completion->content, categories, json_mode);
  } else {
    const absl::Status& s = completion.status();
    const absl::string_view m = s.message();
    const bool documented =
        (absl::IsInvalidArgument(s) &&
         (absl::StartsWith(m, "malformed JSON") || absl::StartsWith(m, "no choices") ||
          absl::StartsWith(m, "completion response: JSON"))) ||
        ((absl::IsUnavailable(s) || absl::IsUnauthenticated(s) || absl::IsFailedPrecondition(s) ||
          absl::IsPermissionDenied(s)) &&
         absl::StartsWith(m, "API error "));
    CF_FUZZ_FAIL_IF(!documented);
  }
  CheckMatch(body, categories, json_mode);
  return 0;
}
