#include "convforever/data/wds_http_stream.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>

#include <glog/logging.h>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "convforever/http/client.h"
#include "convforever/http/headers.h"

namespace cf::data {
namespace {

constexpr auto kPoll = std::chrono::milliseconds(50);

// "bytes <first>-<last>/<total>" starts at `offset`.
bool ContentRangeStartsAt(const std::optional<std::string>& value, int64_t offset) {
  if (!value) return false;
  absl::string_view v = *value;
  if (!absl::ConsumePrefix(&v, "bytes ")) return false;
  const size_t dash = v.find('-');
  int64_t first = -1;
  return dash != absl::string_view::npos && absl::SimpleAtoi(v.substr(0, dash), &first) && first == offset;
}

// A server's error page may echo the request line: the URL's query (where a token may be) is
// replaced by its redacted form, and whole URLs in it are redacted.
std::string RedactEcho(const std::string& url, const std::string& body) {
  const std::string redacted = http::RedactUrl(url);
  const size_t q = url.find('?'), rq = redacted.find('?');
  std::string out = body;
  if (q != std::string::npos && rq != std::string::npos) {
    out = absl::StrReplaceAll(out, {{url.substr(q), redacted.substr(rq)}});
  }
  return http::RedactUrlsInText(out);
}

}  // namespace

struct HttpShardStream::Attempt {
  HttpShardStream* self = nullptr;
  int64_t start = 0;       // the offset asked for (a Range request when > 0)
  long code = 0;           // HTTP status, known at the first body byte
  bool checked = false;    // status and Content-Range looked at
  int64_t skip = 0;        // bytes of a 200 answer to drop: the server ignored Range
  http::Headers headers;
  std::string error_body;  // a non-2xx answer's body (its start)
  absl::Status fail;       // why a callback aborted the transfer
  std::chrono::steady_clock::time_point last_byte;
  bool stalled = false;
  CURL* easy = nullptr;
};

HttpShardStream::HttpShardStream(std::string url, const HttpShardStreamOptions& options,
                                 const std::atomic<bool>* cancel)
    : url_(std::move(url)),
      options_(options),
      cancel_(cancel),
      capacity_(std::max<int64_t>(options.buffer_bytes, 64 << 10)),
      ring_(capacity_) {
  http::EnsureCurlInitialized();
  thread_ = std::thread(&HttpShardStream::Download, this);
}

HttpShardStream::~HttpShardStream() {
  closing_ = true;
  cv_.notify_all();
  thread_.join();
}

absl::Status HttpShardStream::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

int64_t HttpShardStream::Read(char* buf, int64_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  while (size_ == 0 && !done_) {
    if (Cancelled()) {
      status_ = absl::CancelledError(absl::StrCat("GET ", http::RedactUrl(url_), ": cancelled"));
      return -1;
    }
    cv_.wait_for(lock, kPoll);
  }
  if (size_ == 0) return status_.ok() ? 0 : -1;
  const int64_t take = std::min(n, size_);
  const int64_t first = std::min(take, capacity_ - head_);
  std::memcpy(buf, ring_.data() + head_, first);
  std::memcpy(buf + first, ring_.data(), take - first);
  head_ = (head_ + take) % capacity_;
  size_ -= take;
  lock.unlock();
  cv_.notify_all();
  return take;
}

size_t HttpShardStream::Deliver(Attempt& a, const char* data, size_t n) {
  const int64_t dropped = std::min<int64_t>(a.skip, n);
  a.skip -= dropped;
  int64_t pos = dropped;
  std::unique_lock<std::mutex> lock(mu_);
  while (pos < static_cast<int64_t>(n)) {
    if (closing_ || Cancelled()) return 0;  // aborts the transfer
    if (size_ == capacity_) {
      cv_.wait_for(lock, kPoll);
      a.last_byte = std::chrono::steady_clock::now();  // waiting for room is not a stall
      continue;
    }
    const int64_t tail = (head_ + size_) % capacity_;
    const int64_t put = std::min({static_cast<int64_t>(n) - pos, capacity_ - size_, capacity_ - tail});
    std::memcpy(ring_.data() + tail, data + pos, put);
    size_ += put;
    pos += put;
    offset_ += put;
    if (size_ > high_water_.load()) high_water_ = size_;
    cv_.notify_all();
  }
  a.last_byte = std::chrono::steady_clock::now();
  return n;
}

size_t HttpShardStream::OnData(char* data, size_t size, size_t n, void* p) {
  Attempt& a = *static_cast<Attempt*>(p);
  const size_t bytes = size * n;
  if (!a.checked) {
    a.checked = true;
    curl_easy_getinfo(a.easy, CURLINFO_RESPONSE_CODE, &a.code);
    if (a.code == 206 && a.start > 0 && !ContentRangeStartsAt(a.headers.Get("Content-Range"), a.start)) {
      a.fail = absl::DataLossError(absl::StrCat("GET ", http::RedactUrl(a.self->url_), ": asked for bytes ",
                                                a.start, "- and got Content-Range '",
                                                a.headers.Get("Content-Range").value_or(""), "'"));
      return 0;
    }
    if (a.code == 200 && a.start > 0) a.skip = a.start;
  }
  if (a.code < 200 || a.code >= 300) {
    if (a.error_body.size() < 1024) a.error_body.append(data, std::min<size_t>(bytes, 1024));
    return bytes;
  }
  return a.self->Deliver(a, data, bytes);
}

size_t HttpShardStream::OnHeader(char* data, size_t size, size_t n, void* p) {
  http::AddHeaderLine(absl::string_view(data, size * n), &static_cast<Attempt*>(p)->headers);
  return size * n;
}

int HttpShardStream::OnProgress(void* p, int64_t, int64_t, int64_t, int64_t) {
  Attempt& a = *static_cast<Attempt*>(p);
  if (a.self->closing_ || a.self->Cancelled()) return 1;
  if (std::chrono::steady_clock::now() - a.last_byte > absl::ToChronoMilliseconds(a.self->options_.stall_timeout)) {
    a.stalled = true;
    return 1;
  }
  return 0;
}

void HttpShardStream::Download() {
  absl::BitGen rng;
  int retry = 0;  // retries since the last attempt that brought new bytes
  absl::Status final_status;
  for (;;) {
    Attempt a;
    a.self = this;
    a.start = offset_;
    a.last_byte = std::chrono::steady_clock::now();
    CURL* e = a.easy = curl_easy_init();
    char error[CURL_ERROR_SIZE] = {0};
    const std::string range = absl::StrCat(offset_, "-");
    curl_easy_setopt(e, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);  // Hugging Face `resolve` URLs answer 302
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpShardStream::OnData);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &HttpShardStream::OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, &HttpShardStream::OnProgress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, &a);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    if (offset_ > 0) curl_easy_setopt(e, CURLOPT_RANGE, range.c_str());
    const int64_t before = offset_;
    ++requests_;
    const CURLcode rc = curl_easy_perform(e);
    if (!a.checked) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a.code);  // an answer without a body
    curl_easy_cleanup(e);

    const std::string where = absl::StrCat("GET ", http::RedactUrl(url_), " (from byte ", a.start, ")");
    absl::StatusOr<http::Response> outcome;
    if (closing_ || Cancelled()) {
      final_status = absl::CancelledError(where + ": cancelled");
      break;
    }
    if (!a.fail.ok()) {
      outcome = a.fail;
    } else if (a.stalled) {
      outcome = absl::DeadlineExceededError(absl::StrCat(where, ": stalled, no byte for ",
                                                         absl::FormatDuration(options_.stall_timeout)));
    } else if (rc != CURLE_OK) {
      const std::string msg = absl::StrCat(where, ": ", curl_easy_strerror(rc), error[0] ? ": " : "",
                                           http::RedactUrlsInText(error));
      outcome = rc == CURLE_OPERATION_TIMEDOUT ? absl::DeadlineExceededError(msg) : absl::UnavailableError(msg);
    } else {
      http::Response r;
      r.status = static_cast<int>(a.code);
      r.headers = a.headers;
      r.body = a.error_body;
      outcome = std::move(r);
    }
    if (outcome.ok() && outcome->ok()) break;  // the whole body arrived
    const absl::Status why = outcome.ok()
                                 ? absl::UnavailableError(absl::StrCat(where, ": HTTP ", outcome->status, ": ",
                                                                       RedactEcho(url_, outcome->body.substr(0, 300))))
                                 : outcome.status();
    if (offset_ > before) retry = 0;
    if (!http::ShouldRetry(options_.retry, outcome) || retry + 1 >= options_.retry.max_attempts) {
      final_status = absl::Status(why.code(), absl::StrCat(why.message(), " (", requests_.load(), " request(s), ",
                                                           offset_, " bytes received)"));
      break;
    }
    const absl::Duration delay = http::RetryDelay(options_.retry, retry, outcome, absl::Now(), rng);
    ++retry;
    LOG(WARNING) << why.message() << "; retrying from byte " << offset_ << " in " << absl::FormatDuration(delay);
    const auto until = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(delay);
    std::unique_lock<std::mutex> lock(mu_);
    while (std::chrono::steady_clock::now() < until && !closing_ && !Cancelled()) cv_.wait_for(lock, kPoll);
  }
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
  status_ = final_status;
  cv_.notify_all();
}

}  // namespace cf::data
