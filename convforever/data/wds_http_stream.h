// HttpShardStream: one remote WebDataset shard read as a byte stream in constant memory.
//
// A download thread runs libcurl and writes the body into a bounded buffer (`buffer_bytes`); the
// reader (libarchive, through WdsSource) takes bytes out with Read(), which blocks until bytes
// arrive, the body ends or the transfer fails for good. When the buffer is full the download
// thread waits, so memory stays at the buffer's size whatever the shard's.
//
// Failures: a connection that drops or stalls (no byte for `stall_timeout` while the buffer has
// room) is retried from the byte offset reached, with an HTTP Range request `bytes=<offset>-`:
// a 206 answer must carry `Content-Range: bytes <offset>-...`; a 200 answer (the server ignored
// Range) is read from its start and the bytes already delivered are skipped. Which outcomes are
// retried and how long to wait comes from http::RetryPolicy (retry.h: transport errors, 408/429/
// 5xx, Retry-After honoured); the attempt count restarts whenever an attempt delivered new bytes,
// so a long shard over a flaky link goes on as long as it makes progress. Errors and logs name the
// URL redacted (http::RedactUrl).
//
// Cancellation: `cancel` (may be null) is polled by the download thread (while connecting,
// transferring, waiting for buffer room or between retries) and by Read(); once it is true,
// Read() returns -1 within about 50 ms and the destructor joins the thread promptly.
// Not thread-safe for readers: one reader thread.
#ifndef CONVFOREVER_DATA_WDS_HTTP_STREAM_H_
#define CONVFOREVER_DATA_WDS_HTTP_STREAM_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "convforever/http/retry.h"

namespace cf::data {

struct HttpShardStreamOptions {
  int64_t buffer_bytes = 4 << 20;  // bytes held between download and reader, at most
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration stall_timeout = absl::Seconds(60);  // no byte for this long (buffer not full): retry
  http::RetryPolicy retry;         // per run of attempts without progress
  std::string user_agent = "convforever-data/1";
};

class HttpShardStream {
 public:
  // Starts the download thread at once.
  HttpShardStream(std::string url, const HttpShardStreamOptions& options, const std::atomic<bool>* cancel);
  ~HttpShardStream();
  HttpShardStream(const HttpShardStream&) = delete;
  HttpShardStream& operator=(const HttpShardStream&) = delete;

  // Up to `n` bytes of the body in order: the count, 0 at the end of the body, or -1 when the
  // download failed for good or was cancelled (then status() says why).
  int64_t Read(char* buf, int64_t n);
  absl::Status status() const;

  int64_t capacity() const { return capacity_; }
  int64_t high_water() const { return high_water_.load(); }  // most bytes ever buffered at once
  int requests() const { return requests_.load(); }          // HTTP requests made (first included)

 private:
  struct Attempt;
  void Download();
  static size_t OnData(char* data, size_t size, size_t n, void* self);
  static size_t OnHeader(char* data, size_t size, size_t n, void* self);
  static int OnProgress(void* self, int64_t, int64_t, int64_t, int64_t);
  size_t Deliver(Attempt& a, const char* data, size_t n);
  bool Cancelled() const { return cancel_ != nullptr && cancel_->load(); }

  const std::string url_;
  const HttpShardStreamOptions options_;
  const std::atomic<bool>* const cancel_;
  const int64_t capacity_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<char> ring_;   // guarded by mu_: capacity_ bytes, `size_` of them from `head_`
  int64_t head_ = 0, size_ = 0;
  bool done_ = false;        // guarded by mu_: no more bytes will come
  absl::Status status_;      // guarded by mu_: why, when not OK
  std::atomic<bool> closing_{false};  // the destructor asks the thread to leave

  int64_t offset_ = 0;  // download thread only: body bytes delivered to ring_
  std::atomic<int64_t> high_water_{0};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_WDS_HTTP_STREAM_H_
