#include "convforever/data/http_fetch.h"

#include <curl/curl.h>

#include <chrono>
#include <deque>
#include <mutex>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "convforever/http/headers.h"
#include "convforever/http/retry.h"

namespace cf::data {
namespace {

using Clock = std::chrono::steady_clock;

struct Transfer {
  size_t index = 0;
  int attempt = 0;
  Clock::time_point not_before;
  std::string body;
  http::Headers headers;  // of the last response (a redirect's are replaced by the next one's)
  bool too_big = false;
  CURL* easy = nullptr;
};

size_t HeaderCb(char* ptr, size_t size, size_t nitems, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const absl::string_view line(ptr, size * nitems);
  if (absl::StartsWith(line, "HTTP/")) t->headers = http::Headers();  // a new response begins
  http::AddHeaderLine(line, &t->headers);
  return size * nitems;
}

size_t WriteCb(char* ptr, size_t size, size_t nmemb, void* user) {
  auto* pair = static_cast<std::pair<Transfer*, int64_t>*>(user);
  Transfer* t = pair->first;
  const size_t n = size * nmemb;
  if (static_cast<int64_t>(t->body.size() + n) > pair->second) {
    t->too_big = true;
    return 0;  // aborts the transfer
  }
  t->body.append(ptr, n);
  return n;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// What one attempt gave, in the terms of convforever/http's retry policy: the response (status
// and headers, for Retry-After and the other server hints) or the transport error, classified as
// the HTTP client classifies it (UNAVAILABLE: refused, reset or cut connections; DEADLINE_EXCEEDED:
// timeouts; anything else is final).
absl::StatusOr<http::Response> Outcome(CURLcode rc, long code, const Transfer& t) {
  if (rc == CURLE_OK) {
    http::Response r;
    r.status = static_cast<int>(code);
    r.headers = t.headers;
    return r;
  }
  const std::string what = curl_easy_strerror(rc);
  if (rc == CURLE_OPERATION_TIMEDOUT) return absl::DeadlineExceededError(what);
  if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
      rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE || rc == CURLE_COULDNT_RESOLVE_HOST) {
    return absl::UnavailableError(what);
  }
  return absl::InternalError(what);
}

}  // namespace

std::vector<HttpFetchResult> HttpFetchAll(const std::vector<std::string>& urls,
                                          const HttpFetchOptions& o) {
  GlobalInit();
  std::vector<HttpFetchResult> results(urls.size());
  std::vector<Transfer> transfers(urls.size());
  std::vector<std::pair<Transfer*, int64_t>> cb_data(urls.size());
  std::deque<size_t> pending;
  for (size_t i = 0; i < urls.size(); ++i) {
    transfers[i].index = i;
    cb_data[i] = {&transfers[i], o.max_bytes};
    pending.push_back(i);
  }
  http::RetryPolicy policy;  // the project's one policy: statuses, transport errors, server hints
  policy.max_attempts = o.retries + 1;
  policy.base_delay = absl::Milliseconds(o.backoff_ms);
  absl::BitGen rng;
  CURLM* multi = curl_multi_init();
  int in_flight = 0;
  size_t done = 0;
  while (done < urls.size()) {
    // Start what may start: in-flight budget left and backoff elapsed.
    const auto now = Clock::now();
    for (size_t k = pending.size(); k > 0 && in_flight < o.max_in_flight; --k) {
      const size_t i = pending.front();
      pending.pop_front();
      Transfer& t = transfers[i];
      if (t.not_before > now) { pending.push_back(i); continue; }
      t.body.clear();
      t.headers = http::Headers();
      t.too_big = false;
      t.easy = curl_easy_init();
      curl_easy_setopt(t.easy, CURLOPT_URL, urls[i].c_str());
      curl_easy_setopt(t.easy, CURLOPT_WRITEFUNCTION, WriteCb);
      curl_easy_setopt(t.easy, CURLOPT_WRITEDATA, &cb_data[i]);
      curl_easy_setopt(t.easy, CURLOPT_HEADERFUNCTION, HeaderCb);
      curl_easy_setopt(t.easy, CURLOPT_HEADERDATA, &t);
      curl_easy_setopt(t.easy, CURLOPT_PRIVATE, &t);
      curl_easy_setopt(t.easy, CURLOPT_FOLLOWLOCATION, 1L);
      curl_easy_setopt(t.easy, CURLOPT_MAXREDIRS, 10L);
      curl_easy_setopt(t.easy, CURLOPT_TIMEOUT_MS, static_cast<long>(o.timeout_ms));
      curl_easy_setopt(t.easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout_ms));
      curl_easy_setopt(t.easy, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(t.easy, CURLOPT_USERAGENT, o.user_agent.c_str());
      curl_easy_setopt(t.easy, CURLOPT_PROTOCOLS_STR, "http,https");
      curl_multi_add_handle(multi, t.easy);
      ++in_flight;
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    int msgs = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &msgs)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      const CURLcode rc = msg->data.result;
      long code = 0;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
      curl_multi_remove_handle(multi, msg->easy_handle);
      curl_easy_cleanup(msg->easy_handle);
      t->easy = nullptr;
      --in_flight;
      ++t->attempt;
      HttpFetchResult& r = results[t->index];
      r.http_code = code;
      r.attempts = t->attempt;
      if (rc == CURLE_OK && code >= 200 && code < 300) {
        r.body = std::move(t->body);
        ++done;
        continue;
      }
      const absl::StatusOr<http::Response> outcome = Outcome(rc, code, *t);
      if (!t->too_big && t->attempt < policy.max_attempts && http::ShouldRetry(policy, outcome)) {
        const absl::Duration wait = http::RetryDelay(policy, t->attempt - 1, outcome, absl::Now(), rng);
        t->not_before = Clock::now() + absl::ToChronoNanoseconds(wait);
        pending.push_back(t->index);
        continue;
      }
      const std::string why = t->too_big ? absl::StrCat("body larger than ", o.max_bytes, " bytes")
                              : rc != CURLE_OK ? std::string(curl_easy_strerror(rc))
                                               : absl::StrCat("HTTP ", code);
      r.body = absl::UnavailableError(absl::StrCat("GET ", http::RedactUrl(urls[t->index]), " failed after ",
                                                   t->attempt, " attempt(s): ", why));
      ++done;
    }
    if (done < urls.size()) curl_multi_poll(multi, nullptr, 0, in_flight > 0 ? 50 : 10, nullptr);
  }
  curl_multi_cleanup(multi);
  return results;
}

}  // namespace cf::data
