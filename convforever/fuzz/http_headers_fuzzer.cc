// Server hints a client acts on: Retry-After (seconds or an HTTP date), retry-after-ms,
// X-RateLimit-Reset, Go durations, the RateLimit header, and RetryHintFromHeaders over raw
// header lines as a server sends them; plus URL redaction, which runs on every URL we print.
// RetryHintFromHeaders promises a hint that is never negative: checked on every input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "convforever/http/headers.h"
#include "convforever/http/retry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);

  (void)cf::http::ParseRetryAfter(text, now);
  (void)cf::http::ParseRetryAfterMs(text);
  (void)cf::http::ParseRateLimitReset(text, now);
  (void)cf::http::ParseGoDuration(text);
  (void)cf::http::ParseRateLimitHeader(text);

  // The input as a header block, "Name: value" per line, as the client collects it.
  cf::http::Headers headers;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    headers.Add(line.substr(0, colon), absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  const auto hint = cf::http::RetryHintFromHeaders(headers, now);
  if (hint.has_value() && *hint < absl::ZeroDuration()) __builtin_trap();  // documented: never negative
  (void)headers.DebugString();

  const std::string redacted = cf::http::RedactUrl(text);
  (void)cf::http::RedactUrlsInText(text);
  (void)redacted;
  return 0;
}
