// A small libcurl HTTP client: the request/response types every network package shares, and a
// synchronous Fetch(). The concurrent engine on curl multi is MultiClient (multi_client.h);
// retries, backoff and server retry hints are in retry.h; the token bucket is rate_limiter.h.
//
// Contract:
//  * Fetch returns a Response for every HTTP answer, whatever its status (a 404 is a Response, not
//    an error); transport failures (DNS, refused or dropped connection, TLS, timeout, a body read
//    callback failing) are an error status whose message names the method and the redacted URL
//    (RedactUrl) and never contains a header value: an Authorization header never leaves the
//    request. HttpStatusToError() turns a non-2xx Response into a Status when the caller wants one.
//  * Redirects (follow_redirects) go through libcurl, which never sends Authorization (or Cookie)
//    to a different host, port or scheme than the one it was given for.
//  * A streamed body (BodyReader) is read on the calling thread (Fetch) or the engine thread
//    (MultiClient); rewind() is called before a redirect or retry resends it.
// Fetch is thread-safe (one curl easy handle per call); curl_global_init runs once, lazily.
#ifndef CONVFOREVER_HTTP_CLIENT_H_
#define CONVFOREVER_HTTP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "convforever/http/headers.h"

namespace cf::http {

// A request body produced on demand, for uploads too large to hold in memory.
struct BodyReader {
  // Total bytes, or -1 when unknown (then sent with chunked transfer encoding).
  int64_t size = -1;
  // Fills up to `len` bytes of `buf`; returns the count (0 = end of body) or -1 on error.
  std::function<int64_t(char* buf, size_t len)> read;
  // Restarts from the first byte; false if it cannot (then a redirect or retry fails cleanly).
  std::function<bool()> rewind;
};

// A BodyReader over a file on disk, streamed in chunks (never loaded whole). Error names the path.
absl::StatusOr<std::shared_ptr<BodyReader>> FileBody(const std::string& path);
// A BodyReader over an in-memory string (tests, small uploads through the streaming path).
std::shared_ptr<BodyReader> StringBody(std::string data);

struct Request {
  std::string method = "GET";  // any verb; POST/PUT/PATCH send the body
  std::string url;
  Headers headers;
  std::string body;                         // used when body_stream is null
  std::shared_ptr<BodyReader> body_stream;  // large uploads
  // Whole transfer; zero or InfiniteDuration() = none (large uploads: use low_speed_* instead).
  absl::Duration timeout = absl::Seconds(60);
  absl::Duration connect_timeout = absl::Seconds(10);
  // Stall detection: fail (DEADLINE_EXCEEDED) when fewer than low_speed_bytes_per_s bytes/s move
  // for low_speed_window. 0 = off.
  int64_t low_speed_bytes_per_s = 0;
  absl::Duration low_speed_window = absl::Seconds(30);
  bool follow_redirects = true;
  int max_redirects = 10;

  // "POST https://host/path" with the URL redacted: for messages.
  std::string Describe() const;
};

struct Response {
  int status = 0;
  Headers headers;  // of the final response (after redirects); case-insensitive lookup
  std::string body;
  std::string effective_url;  // after redirects
  int attempts = 1;           // > 1 when a retry layer resent the request
  absl::Duration elapsed;     // last attempt

  bool ok() const { return status >= 200 && status < 300; }
};

// Performs one request (no retries). See the file comment for what is an error.
absl::StatusOr<Response> Fetch(const Request& request);

// OK for 2xx; otherwise a Status whose code follows the HTTP status (401 UNAUTHENTICATED,
// 402 FAILED_PRECONDITION, 403 PERMISSION_DENIED, 404 NOT_FOUND, 408/504 DEADLINE_EXCEEDED,
// 409 ABORTED, 429 RESOURCE_EXHAUSTED, other 4xx INVALID_ARGUMENT, 5xx UNAVAILABLE) and whose
// message is "<METHOD> <redacted url>: HTTP <status>: <first 300 bytes of the body>".
absl::Status HttpStatusToError(const Request& request, const Response& response);

// Process-wide curl_global_init (idempotent, thread-safe). Fetch and MultiClient call it.
void EnsureCurlInitialized();

}  // namespace cf::http

#endif  // CONVFOREVER_HTTP_CLIENT_H_
