// Server hints a client acts on: Retry-After (seconds or an HTTP date), retry-after-ms,
// X-RateLimit-Reset, Go durations, the RateLimit header, and RetryHintFromHeaders over raw
// header lines as a server sends them (through AddHeaderLine, the code the client's libcurl
// header callback runs); plus URL redaction, which runs on every URL we print.
// Promises checked on every input: each hint lies in [0, kMaxServerHint]; a header name that
// AddHeaderLine keeps is trimmed and holds no colon; a status line drops the earlier headers.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "convforever/http/headers.h"
#include "convforever/http/retry.h"
#include "convforever/fuzz/check.h"

namespace {

void CheckHint(const std::optional<absl::Duration>& hint) {
  if (hint.has_value() && (*hint < absl::ZeroDuration() || *hint > cf::http::kMaxServerHint)) {
    CF_FUZZ_FAIL("hint in [0, kMaxServerHint]");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);

  CheckHint(cf::http::ParseRetryAfter(text, now));
  CheckHint(cf::http::ParseRetryAfterMs(text));
  CheckHint(cf::http::ParseRateLimitReset(text, now));
  CheckHint(cf::http::ParseGoDuration(text));
  CheckHint(cf::http::ParseRateLimitHeader(text));

  // The input as the raw header lines of a response, as libcurl hands them to the client.
  cf::http::Headers headers;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    cf::http::AddHeaderLine(absl::StrCat(line, "\n"), &headers);
    CF_FUZZ_FAIL_IF(absl::StartsWith(line, "HTTP/") && !headers.empty());
  }
  for (const auto& [name, value] : headers.entries()) {
    if (name != absl::StripAsciiWhitespace(name) || value != absl::StripAsciiWhitespace(value) ||
        absl::StrContains(name, ':')) {
      CF_FUZZ_FAIL("header names and values trimmed, names without ':'");
    }
  }
  CheckHint(cf::http::RetryHintFromHeaders(headers, now));
  (void)headers.DebugString();

  const std::string redacted = cf::http::RedactUrl(text);
  (void)cf::http::RedactUrlsInText(text);
  (void)redacted;
  return 0;
}
