#include "convforever/http/headers.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace cf::http {

void Headers::Add(absl::string_view name, absl::string_view value) {
  entries_.emplace_back(std::string(name), std::string(value));
}

void Headers::Set(absl::string_view name, absl::string_view value) {
  Remove(name);
  Add(name, value);
}

void Headers::Remove(absl::string_view name) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& e) { return absl::EqualsIgnoreCase(e.first, name); }),
                 entries_.end());
}

std::optional<std::string> Headers::Get(absl::string_view name) const {
  for (const Entry& e : entries_) {
    if (absl::EqualsIgnoreCase(e.first, name)) return e.second;
  }
  return std::nullopt;
}

std::vector<std::string> Headers::GetAll(absl::string_view name) const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) {
    if (absl::EqualsIgnoreCase(e.first, name)) out.push_back(e.second);
  }
  return out;
}

std::string Headers::DebugString() const {
  std::vector<std::string> lines;
  for (const Entry& e : entries_) {
    lines.push_back(absl::StrCat(e.first, ": ", IsSecretHeader(e.first) ? "REDACTED" : e.second));
  }
  return absl::StrJoin(lines, "\n");
}

void AddHeaderLine(absl::string_view line, Headers* headers) {
  line = absl::StripTrailingAsciiWhitespace(line);
  if (absl::StartsWith(line, "HTTP/")) {
    // A new response (redirect hop or 100 Continue): keep only the final one's headers.
    *headers = Headers();
  } else if (const size_t colon = line.find(':'); colon != absl::string_view::npos) {
    headers->Add(absl::StripAsciiWhitespace(line.substr(0, colon)),
                 absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
}

bool IsSecretHeader(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  return lower == "authorization" || lower == "proxy-authorization" || lower == "cookie" ||
         lower == "set-cookie" || lower == "x-api-key" || absl::StrContains(lower, "token") ||
         absl::StrContains(lower, "secret") || absl::StrContains(lower, "api-key");
}

namespace {

bool IsSecretQueryName(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  // "sig" covers X-Amz-Signature, X-Goog-Signature, CloudFront's Signature and Azure SAS's sig;
  // "credential" the access key id in X-Amz-Credential / X-Goog-Credential.
  for (absl::string_view word :
       {"key", "token", "secret", "sig", "auth", "password", "pass", "credential"}) {
    if (absl::StrContains(lower, word)) return true;
  }
  return false;
}

}  // namespace

std::string RedactUrl(absl::string_view url) {
  std::string out(url);
  // Userinfo: scheme://user:pass@host/...
  const size_t scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    const size_t host_start = scheme_end + 3;
    const size_t path_start = out.find_first_of("/?#", host_start);
    const size_t at = out.rfind('@', path_start == std::string::npos ? out.size() : path_start);
    if (at != std::string::npos && at >= host_start) out.erase(host_start, at + 1 - host_start);
  }
  // The query, and a fragment of key=value pairs (OAuth's #access_token=...), alike.
  const size_t q = out.find_first_of("?#");
  if (q == std::string::npos) return out;
  std::string redacted = out.substr(0, q);
  for (absl::string_view section : absl::StrSplit(absl::string_view(out).substr(q), absl::ByAnyChar("?#"),
                                                  absl::SkipEmpty())) {
    const size_t at = static_cast<size_t>(section.data() - out.data());
    std::vector<std::string> parts;
    for (absl::string_view kv : absl::StrSplit(section, '&')) {
      const size_t eq = kv.find('=');
      if (eq != absl::string_view::npos && IsSecretQueryName(kv.substr(0, eq))) {
        parts.push_back(absl::StrCat(kv.substr(0, eq), "=REDACTED"));
      } else {
        parts.emplace_back(kv);
      }
    }
    absl::StrAppend(&redacted, out.substr(at - 1, 1), absl::StrJoin(parts, "&"));
  }
  return redacted;
}

std::string RedactUrlsInText(absl::string_view text) {
  auto is_scheme_char = [](char c) {
    return absl::ascii_isalnum(c) || c == '+' || c == '-' || c == '.';
  };
  auto ends_url = [](char c) {
    return absl::ascii_isspace(c) || absl::string_view("\"'`|<>()").find(c) != absl::string_view::npos;
  };
  std::string out;
  size_t done = 0;
  for (size_t sep = text.find("://"); sep != absl::string_view::npos;
       sep = text.find("://", sep + 3)) {
    if (sep < done) continue;
    size_t begin = sep;
    while (begin > done && is_scheme_char(text[begin - 1])) --begin;
    if (begin == sep) continue;  // no scheme before "://"
    size_t end = sep + 3;
    while (end < text.size() && !ends_url(text[end])) ++end;
    absl::StrAppend(&out, text.substr(done, begin - done), RedactUrl(text.substr(begin, end - begin)));
    done = end;
  }
  absl::StrAppend(&out, text.substr(done));
  return out;
}

}  // namespace cf::http
