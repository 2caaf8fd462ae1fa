// Chat-completion requests for one caption, and parsing of the answers.
//
// BuildRequestBody() makes the OpenAI-compatible JSON body (`model`, `messages`, temperature,
// max_tokens, optionally `response_format` with a JSON schema whose `category` is an enum of the
// names, for endpoints that support structured output). ParseCompletion() reads the response
// body: the answer text and `usage`, or an error for an error object (also inside an HTTP 200),
// no `choices`, or malformed JSON. MatchCategory() maps an answer to a class id: in text mode
// the earliest whole-word, case-insensitive occurrence of a category name in the answer (the
// longest name wins at the same position); in JSON mode the answer must be exactly
// {"category": "<name>"} with a name from the list. Pure functions; thread-safe.
#ifndef CONVFOREVER_CAPTION_PROMPT_H_
#define CONVFOREVER_CAPTION_PROMPT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cf::caption {

struct PromptOptions {
  std::string model;
  double temperature = 0.0;
  int max_tokens = 20;
  bool json_schema = false;
};

// Bumped whenever the prompt text changes, so cached labels from an older prompt are not reused.
inline constexpr int kPromptVersion = 1;

std::string BuildRequestBody(const PromptOptions& options, const std::vector<std::string>& categories,
                             absl::string_view caption);

struct Completion {
  std::string content;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t total_tokens = 0;
};

// Usage counts outside [0, kMaxTokenCount] are read as 0.
inline constexpr int64_t kMaxTokenCount = int64_t{1} << 40;

// Errors: INVALID_ARGUMENT "malformed JSON ..." / "no choices ..." / a body past the JSON limits
// (base/json_limits.h: nested deeper than 64 levels or over 64 MiB); for an error object the
// message is "API error <code>: <message>" and the code UNAVAILABLE (retryable: providers use it
// for upstream trouble) unless the object's code is 401/402/403 (then UNAUTHENTICATED,
// FAILED_PRECONDITION, PERMISSION_DENIED: the run must stop).
absl::StatusOr<Completion> ParseCompletion(absl::string_view body);

// Class id in `categories`, or -1 when the answer names none of them.
int MatchCategory(absl::string_view answer, const std::vector<std::string>& categories, bool json_mode);

}  // namespace cf::caption

#endif  // CONVFOREVER_CAPTION_PROMPT_H_
