#include "convforever/http/client.h"

#include <curl/curl.h>

#include <cstdio>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "convforever/http/curl_transfer.h"

namespace cf::http {

void EnsureCurlInitialized() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Request::Describe() const {
  return absl::StrCat(absl::AsciiStrToUpper(method), " ", RedactUrl(url));
}

absl::StatusOr<std::shared_ptr<BodyReader>> FileBody(const std::string& path) {
  std::FILE* raw = std::fopen(path.c_str(), "rb");
  if (raw == nullptr) return absl::NotFoundError(absl::StrCat("cannot open upload body ", path));
  std::shared_ptr<std::FILE> file(raw, [](std::FILE* f) { std::fclose(f); });
  if (std::fseek(raw, 0, SEEK_END) != 0) {
    return absl::InternalError(absl::StrCat("cannot seek ", path));
  }
  const long size = std::ftell(raw);
  std::rewind(raw);
  auto body = std::make_shared<BodyReader>();
  body->size = size;
  body->read = [file](char* buf, size_t len) -> int64_t {
    const size_t n = std::fread(buf, 1, len, file.get());
    if (n == 0 && std::ferror(file.get())) return -1;
    return static_cast<int64_t>(n);
  };
  body->rewind = [file]() { return std::fseek(file.get(), 0, SEEK_SET) == 0; };
  return body;
}

std::shared_ptr<BodyReader> StringBody(std::string data) {
  auto state = std::make_shared<std::pair<std::string, size_t>>(std::move(data), 0);
  auto body = std::make_shared<BodyReader>();
  body->size = static_cast<int64_t>(state->first.size());
  body->read = [state](char* buf, size_t len) -> int64_t {
    const size_t n = std::min(len, state->first.size() - state->second);
    std::copy_n(state->first.data() + state->second, n, buf);
    state->second += n;
    return static_cast<int64_t>(n);
  };
  body->rewind = [state]() {
    state->second = 0;
    return true;
  };
  return body;
}

absl::StatusOr<Response> Fetch(const Request& request) {
  EnsureCurlInitialized();
  internal::CurlTransfer transfer;
  absl::Status prepared = transfer.Prepare(&request);
  if (!prepared.ok()) return prepared;
  return transfer.Finish(curl_easy_perform(transfer.easy()));
}

absl::Status HttpStatusToError(const Request& request, const Response& response) {
  if (response.ok()) return absl::OkStatus();
  std::string snippet = response.body.substr(0, 300);
  const std::string msg =
      absl::StrCat(request.Describe(), ": HTTP ", response.status, snippet.empty() ? "" : ": ", snippet);
  const int s = response.status;
  if (s == 401) return absl::UnauthenticatedError(msg);
  if (s == 402) return absl::FailedPreconditionError(msg);
  if (s == 403) return absl::PermissionDeniedError(msg);
  if (s == 404) return absl::NotFoundError(msg);
  if (s == 408 || s == 504) return absl::DeadlineExceededError(msg);
  if (s == 409) return absl::AbortedError(msg);
  if (s == 429) return absl::ResourceExhaustedError(msg);
  if (s >= 500) return absl::UnavailableError(msg);
  if (s >= 400) return absl::InvalidArgumentError(msg);
  return absl::UnknownError(msg);  // 1xx/3xx left over (redirects not followed)
}

}  // namespace cf::http
