#include "convforever/http/curl_transfer.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace cf::http::internal {

CurlTransfer::CurlTransfer() : easy_(curl_easy_init()) { error_buffer_[0] = '\0'; }

CurlTransfer::~CurlTransfer() {
  if (header_list_ != nullptr) curl_slist_free_all(header_list_);
  if (easy_ != nullptr) curl_easy_cleanup(easy_);
}

absl::Status CurlTransfer::Prepare(const Request* request) {
  if (easy_ == nullptr) return absl::InternalError("curl_easy_init failed");
  request_ = request;
  response_ = Response();
  body_read_failed_ = false;
  error_buffer_[0] = '\0';
  if (header_list_ != nullptr) curl_slist_free_all(header_list_);
  header_list_ = nullptr;
  curl_easy_reset(easy_);

  CURL* e = easy_;
  curl_easy_setopt(e, CURLOPT_URL, request->url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error_buffer_);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &CurlTransfer::WriteBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &CurlTransfer::WriteHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, this);
  const bool no_timeout = request->timeout == absl::InfiniteDuration() || request->timeout <= absl::ZeroDuration();
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                   no_timeout ? 0L
                              : static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(request->timeout))));
  if (request->low_speed_bytes_per_s > 0) {
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(request->low_speed_bytes_per_s));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(std::max<int64_t>(1, absl::ToInt64Seconds(request->low_speed_window))));
  }
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(
                                                              request->connect_timeout))));
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, request->follow_redirects ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, static_cast<long>(request->max_redirects));
  // Never re-send credentials (Authorization, Cookie) to another host, port or scheme on redirect:
  // the Hub's resolve URL redirects to a CDN that must not see the token. libcurl's default, set
  // explicitly so that no default or earlier option on a reused handle can change it
  // (client_test.cc RedirectKeepsAuthorizationOnlyForTheSameHost).
  curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  // whatever libcurl can decode
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);

  const std::string method = absl::AsciiStrToUpper(request->method);
  const bool has_body = request->body_stream != nullptr || !request->body.empty() ||
                        method == "POST" || method == "PUT" || method == "PATCH";
  if (method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (has_body && method != "GET") {
    if (request->body_stream != nullptr) {
      curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(e, CURLOPT_READFUNCTION, &CurlTransfer::ReadBody);
      curl_easy_setopt(e, CURLOPT_READDATA, this);
      curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, &CurlTransfer::SeekBody);
      curl_easy_setopt(e, CURLOPT_SEEKDATA, this);
      curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
                       static_cast<curl_off_t>(request->body_stream->size));
      if (request->body_stream->rewind && !request->body_stream->rewind()) {
        return absl::FailedPreconditionError(
            absl::StrCat(request->Describe(), ": request body cannot be rewound"));
      }
    } else {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request->body.size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, request->body.data());
    }
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
  } else if (method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
  }

  // No "Expect: 100-continue" round trip unless the caller asks for one.
  if (!request->headers.Has("Expect")) header_list_ = curl_slist_append(header_list_, "Expect:");
  for (const auto& [name, value] : request->headers.entries()) {
    const std::string line = value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value);
    header_list_ = curl_slist_append(header_list_, line.c_str());
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, header_list_);
  start_ = absl::Now();
  return absl::OkStatus();
}

size_t CurlTransfer::WriteBody(char* data, size_t size, size_t n, void* self) {
  static_cast<CurlTransfer*>(self)->response_.body.append(data, size * n);
  return size * n;
}

size_t CurlTransfer::WriteHeader(char* data, size_t size, size_t n, void* self) {
  auto* t = static_cast<CurlTransfer*>(self);
  AddHeaderLine(absl::string_view(data, size * n), &t->response_.headers);
  return size * n;
}

size_t CurlTransfer::ReadBody(char* buf, size_t size, size_t n, void* self) {
  auto* t = static_cast<CurlTransfer*>(self);
  const int64_t got = t->request_->body_stream->read(buf, size * n);
  if (got < 0) {
    t->body_read_failed_ = true;
    return CURL_READFUNC_ABORT;
  }
  return static_cast<size_t>(got);
}

int CurlTransfer::SeekBody(void* self, curl_off_t offset, int origin) {
  auto* t = static_cast<CurlTransfer*>(self);
  const auto& stream = t->request_->body_stream;
  if (offset != 0 || origin != SEEK_SET || !stream->rewind) return CURL_SEEKFUNC_CANTSEEK;
  return stream->rewind() ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_FAIL;
}

absl::StatusOr<Response> CurlTransfer::Finish(CURLcode code) {
  const std::string what = request_->Describe();
  if (code != CURLE_OK) {
    std::string detail = error_buffer_[0] != '\0' ? error_buffer_ : curl_easy_strerror(code);
    const std::string msg = absl::StrCat(what, ": ", detail, " (curl ", static_cast<int>(code), ")");
    switch (code) {
      case CURLE_OPERATION_TIMEDOUT:
        return absl::DeadlineExceededError(msg);
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return absl::InvalidArgumentError(msg);
      case CURLE_TOO_MANY_REDIRECTS:
        return absl::FailedPreconditionError(msg);
      case CURLE_ABORTED_BY_CALLBACK:
      case CURLE_READ_ERROR:
        return absl::InternalError(body_read_failed_ ? absl::StrCat(what, ": reading the request body failed") : msg);
      default:
        return absl::UnavailableError(msg);  // connection-level: refused, reset, empty reply...
    }
  }
  long status = 0;
  curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
  char* effective = nullptr;
  curl_easy_getinfo(easy_, CURLINFO_EFFECTIVE_URL, &effective);
  response_.status = static_cast<int>(status);
  response_.effective_url = effective != nullptr ? effective : request_->url;
  response_.elapsed = absl::Now() - start_;
  return std::move(response_);
}

}  // namespace cf::http::internal
