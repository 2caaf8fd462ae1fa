// Internal to convforever/http: one libcurl easy transfer (request setup, response capture),
// shared by Fetch() and MultiClient. Owns the easy handle's header list and error buffer, so it
// must outlive the transfer. Not thread-safe; one owner at a time.
#ifndef CONVFOREVER_HTTP_CURL_TRANSFER_H_
#define CONVFOREVER_HTTP_CURL_TRANSFER_H_

#include <curl/curl.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "convforever/http/client.h"

namespace cf::http::internal {

class CurlTransfer {
 public:
  CurlTransfer();
  ~CurlTransfer();
  CurlTransfer(const CurlTransfer&) = delete;
  CurlTransfer& operator=(const CurlTransfer&) = delete;

  // Configures the easy handle for `request` (which must outlive the transfer). Resets any
  // previous state, so a transfer object may be reused for retries.
  absl::Status Prepare(const Request* request);
  CURL* easy() const { return easy_; }
  // Turns the curl result code of a finished transfer into a Response or an error status.
  absl::StatusOr<Response> Finish(CURLcode code);

 private:
  static size_t WriteBody(char* data, size_t size, size_t n, void* self);
  static size_t WriteHeader(char* data, size_t size, size_t n, void* self);
  static size_t ReadBody(char* buf, size_t size, size_t n, void* self);
  static int SeekBody(void* self, curl_off_t offset, int origin);

  CURL* easy_ = nullptr;
  curl_slist* header_list_ = nullptr;
  const Request* request_ = nullptr;
  Response response_;
  bool body_read_failed_ = false;
  absl::Time start_;
  char error_buffer_[CURL_ERROR_SIZE];
};

}  // namespace cf::http::internal

#endif  // CONVFOREVER_HTTP_CURL_TRANSFER_H_
