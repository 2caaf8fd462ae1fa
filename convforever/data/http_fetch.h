// A small concurrent HTTP(S) GET fetcher on libcurl's multi interface, for remote training images
// (JSONL records with a url, WebDataset shards over http).
//
// FetchAll downloads many URLs with up to `max_in_flight` transfers at once; each gets a total
// timeout, and transient failures are retried up to `retries` times by convforever/http's retry
// policy (retry.h: connection errors, timeouts, HTTP 408/409/429/5xx; the wait is the server's
// hint when it gives one (Retry-After, retry-after-ms, rate-limit headers), else exponential
// backoff from `backoff_ms` with jitter). Other 4xx answers (404, 403) are final at once.
// A result is either the body or a status naming the URL, the last HTTP code or curl error, and
// the number of attempts. Redirects are followed (Hugging Face `resolve` URLs answer 302).
// Thread-safe: each call uses its own multi handle.
//
// It stays on its own multi handle rather than http::MultiClient for the per-body size cap
// (`max_bytes`), which a URL image list needs and MultiClient does not have; errors name the URL
// redacted (http::RedactUrl).
#ifndef CONVFOREVER_DATA_HTTP_FETCH_H_
#define CONVFOREVER_DATA_HTTP_FETCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cf::data {

struct HttpFetchOptions {
  int max_in_flight = 32;
  int64_t timeout_ms = 30000;          // per attempt, whole transfer
  int64_t connect_timeout_ms = 10000;
  int retries = 3;                      // extra attempts after the first
  int64_t backoff_ms = 200;             // first retry delay; doubles each retry
  int64_t max_bytes = 64ll << 20;       // larger bodies are refused
  std::string user_agent = "convforever-data/1";
};

struct HttpFetchResult {
  absl::StatusOr<std::string> body = absl::UnknownError("not fetched");
  long http_code = 0;
  int attempts = 0;
};

std::vector<HttpFetchResult> HttpFetchAll(const std::vector<std::string>& urls,
                                          const HttpFetchOptions& options);

inline bool IsHttpUrl(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_HTTP_FETCH_H_
