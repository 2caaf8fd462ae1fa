// An arrow::io::RandomAccessFile over an http(s) URL that reads by HTTP Range requests, so a
// remote Parquet file is opened and read a column chunk at a time (its footer, then the row groups
// asked for) instead of being downloaded whole.
//
// Open() asks for the first byte ("Range: bytes=0-0") and insists on "206 Partial Content" with a
// "Content-Range: bytes 0-0/<size>" header: a server that ignores Range (answers 200) is an error
// at open, before anything large moves. Every read is one GET with "Range: bytes=a-b", checked the
// same way (206, the Content-Range it asked for, that many bytes); transient failures are retried
// by http::FetchWithRetry's policy. `Authorization: Bearer <token>` goes only to requests whose
// URL host is `token_host` (libcurl drops it on redirects to other hosts); messages name the URL
// redacted (http::RedactUrl) and never a header value.
// Thread-safe: ReadAt may be called from many threads at once (one request each); Read/Seek keep
// a position under a mutex. Internal to convforever/data: included only by files built with
// ARROW_COPTS (third_party/arrow/defs.bzl).
#ifndef CONVFOREVER_DATA_HTTP_RANGE_FILE_H_
#define CONVFOREVER_DATA_HTTP_RANGE_FILE_H_

#include <arrow/io/interfaces.h>
#include <arrow/result.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "convforever/data/parquet_file.h"  // HttpRangeOptions

namespace cf::data {

class HttpRangeFile : public arrow::io::RandomAccessFile {
 public:
  static absl::StatusOr<std::shared_ptr<HttpRangeFile>> Open(const std::string& url,
                                                             const HttpRangeOptions& options);

  // Requests made so far (Open's probe included): tests assert reads stay ranged.
  int64_t requests() const { return requests_.load(); }

  arrow::Status Close() override;
  bool closed() const override { return closed_.load(); }
  arrow::Result<int64_t> Tell() const override;
  arrow::Status Seek(int64_t position) override;
  arrow::Result<int64_t> GetSize() override { return size_; }
  arrow::Result<int64_t> Read(int64_t nbytes, void* out) override;
  arrow::Result<std::shared_ptr<arrow::Buffer>> Read(int64_t nbytes) override;
  arrow::Result<int64_t> ReadAt(int64_t position, int64_t nbytes, bool allow_short_read,
                                void* out) override;
  arrow::Result<int64_t> ReadAt(int64_t position, int64_t nbytes, void* out) override;
  arrow::Result<std::shared_ptr<arrow::Buffer>> ReadAt(int64_t position, int64_t nbytes,
                                                       bool allow_short_read) override;
  arrow::Result<std::shared_ptr<arrow::Buffer>> ReadAt(int64_t position, int64_t nbytes) override;

 private:
  HttpRangeFile(std::string url, HttpRangeOptions options)
      : url_(std::move(url)), options_(std::move(options)) {}
  // GET bytes [first, last] (inclusive) into a string; `total` gets the size Content-Range names.
  absl::StatusOr<std::string> GetRange(int64_t first, int64_t last, int64_t* total);

  const std::string url_;
  const HttpRangeOptions options_;
  int64_t size_ = 0;
  std::atomic<bool> closed_{false};
  std::atomic<int64_t> requests_{0};
  mutable std::mutex mu_;
  int64_t position_ = 0;  // guarded by mu_
};

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_HTTP_RANGE_FILE_H_
