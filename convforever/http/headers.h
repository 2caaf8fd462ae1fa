// HTTP header list with case-insensitive lookup, and redaction of secrets for messages and logs.
//
// Headers keeps insertion order and allows repeated names (Set-Cookie, ETag lists), as HTTP does.
// Lookups compare names case-insensitively (HTTP/1.1 and HTTP/2 both treat names that way).
// A value type: copyable, thread-compatible.
#ifndef CONVFOREVER_HTTP_HEADERS_H_
#define CONVFOREVER_HTTP_HEADERS_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace cf::http {

class Headers {
 public:
  using Entry = std::pair<std::string, std::string>;

  Headers() = default;
  Headers(std::initializer_list<Entry> entries) : entries_(entries) {}

  // Appends (keeps any earlier header of the same name).
  void Add(absl::string_view name, absl::string_view value);
  // Replaces every header of this name with one.
  void Set(absl::string_view name, absl::string_view value);
  void Remove(absl::string_view name);

  // First value of `name`, compared case-insensitively.
  std::optional<std::string> Get(absl::string_view name) const;
  std::vector<std::string> GetAll(absl::string_view name) const;
  bool Has(absl::string_view name) const { return Get(name).has_value(); }

  const std::vector<Entry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  // "Name: value" lines with secret values replaced (see IsSecretHeader), for logs and errors.
  std::string DebugString() const;

 private:
  std::vector<Entry> entries_;
};

// Applies one raw header line, as libcurl hands them over (CRLF included), to `headers`: a status
// line ("HTTP/1.1 200 OK", "HTTP/2 302") starts a new response, so the headers collected so far
// (a redirect hop's, a 100 Continue's) are dropped; "Name: value" is added with both sides
// trimmed; any other line (the blank one ending the block) is ignored. Pure: the client's header
// callback and the fuzz target run the same code.
void AddHeaderLine(absl::string_view line, Headers* headers);

// True for headers that carry credentials: Authorization, Proxy-Authorization, Cookie,
// Set-Cookie, X-Api-Key and any name containing "token", "secret" or "api-key".
bool IsSecretHeader(absl::string_view name);

// The URL with userinfo removed and the values of query parameters that look like credentials
// (key, token, secret, sig, signature, auth, password, access_token...) replaced by "REDACTED".
// Used in every error message that names a URL.
std::string RedactUrl(absl::string_view url);

// `text` with RedactUrl applied to every URL in it (a run of non-space characters around "://",
// ending at whitespace, a quote, a backquote, '|', '<', '>' or a parenthesis; braces stay inside,
// as in webdataset's shard-{000..009}.tar): for free text that may hold a URL, such as a flag
// value, a log line or a model card.
std::string RedactUrlsInText(absl::string_view text);

}  // namespace cf::http

#endif  // CONVFOREVER_HTTP_HEADERS_H_
