#include "convforever/data/http_range_file.h"

#include <arrow/buffer.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "convforever/http/headers.h"

namespace cf::data {
namespace {

// "bytes <first>-<last>/<total>" (total may be "*" only on a 416, which is not accepted here).
bool ParseContentRange(absl::string_view v, int64_t* first, int64_t* last, int64_t* total) {
  v = absl::StripAsciiWhitespace(v);
  if (!absl::ConsumePrefix(&v, "bytes ")) return false;
  const size_t dash = v.find('-'), slash = v.find('/');
  if (dash == absl::string_view::npos || slash == absl::string_view::npos || dash > slash) return false;
  return absl::SimpleAtoi(v.substr(0, dash), first) &&
         absl::SimpleAtoi(v.substr(dash + 1, slash - dash - 1), last) &&
         absl::SimpleAtoi(v.substr(slash + 1), total);
}

arrow::Status ToArrow(const absl::Status& s) { return arrow::Status::IOError(s.ToString()); }

}  // namespace

std::string UrlHost(const std::string& url) {
  absl::string_view v = url;
  if (!absl::ConsumePrefix(&v, "http://") && !absl::ConsumePrefix(&v, "https://")) return "";
  v = v.substr(0, v.find_first_of("/?#"));
  if (const size_t at = v.rfind('@'); at != absl::string_view::npos) v = v.substr(at + 1);
  if (!v.empty() && v[0] == '[') {
    v = v.substr(0, v.find(']') + 1);  // IPv6 literal: the port follows the bracket
  } else {
    v = v.substr(0, v.find(':'));
  }
  return absl::AsciiStrToLower(v);
}

absl::StatusOr<std::shared_ptr<HttpRangeFile>> HttpRangeFile::Open(const std::string& url,
                                                                   const HttpRangeOptions& options) {
  std::shared_ptr<HttpRangeFile> f(new HttpRangeFile(url, options));
  int64_t total = -1;
  auto first = f->GetRange(0, 0, &total);
  if (!first.ok()) return first.status();
  f->size_ = total;
  return f;
}

absl::StatusOr<std::string> HttpRangeFile::GetRange(int64_t first, int64_t last, int64_t* total) {
  http::Request req;
  req.url = url_;
  req.timeout = options_.timeout;
  req.connect_timeout = options_.connect_timeout;
  req.headers.Set("Range", absl::StrCat("bytes=", first, "-", last));
  req.headers.Set("User-Agent", options_.user_agent);
  if (!options_.bearer_token.empty() && !options_.token_host.empty() &&
      UrlHost(url_) == absl::AsciiStrToLower(options_.token_host)) {
    req.headers.Set("Authorization", "Bearer " + options_.bearer_token);
  }
  http::RetryOptions retry;
  retry.policy = options_.retry;
  requests_.fetch_add(1);
  absl::StatusOr<http::Response> resp = http::FetchWithRetry(req, retry);
  const std::string what = absl::StrCat("GET ", http::RedactUrl(url_), " (bytes ", first, "-", last, ")");
  if (!resp.ok()) return absl::Status(resp.status().code(), absl::StrCat(what, ": ", resp.status().message()));
  if (resp->status == 200) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": the server answered 200 with the whole file instead of 206: it does not support "
              "HTTP Range requests, which reading Parquet remotely needs (download the file instead)"));
  }
  if (resp->status != 206) return http::HttpStatusToError(req, *resp);
  int64_t got_first = -1, got_last = -1;
  const auto range = resp->headers.Get("Content-Range");
  if (!range || !ParseContentRange(*range, &got_first, &got_last, total) || got_first != first ||
      got_last < got_first || *total <= 0) {
    return absl::DataLossError(absl::StrCat(what, ": 206 with Content-Range '", range.value_or(""),
                                            "' that does not match the range asked for"));
  }
  const int64_t want = std::min(last, *total - 1) - first + 1;
  if (got_last != first + want - 1 || static_cast<int64_t>(resp->body.size()) != want) {
    return absl::DataLossError(absl::StrCat(what, ": expected ", want, " bytes, got ", resp->body.size(),
                                            " (Content-Range '", *range, "')"));
  }
  return std::move(resp->body);
}

arrow::Status HttpRangeFile::Close() {
  closed_ = true;
  return arrow::Status::OK();
}

arrow::Result<int64_t> HttpRangeFile::Tell() const {
  std::lock_guard<std::mutex> lock(mu_);
  return position_;
}

arrow::Status HttpRangeFile::Seek(int64_t position) {
  if (position < 0 || position > size_) {
    return arrow::Status::IOError("seek to ", position, " outside ", http::RedactUrl(url_), " (", size_, " bytes)");
  }
  std::lock_guard<std::mutex> lock(mu_);
  position_ = position;
  return arrow::Status::OK();
}

arrow::Result<int64_t> HttpRangeFile::Read(int64_t nbytes, void* out) {
  std::lock_guard<std::mutex> lock(mu_);
  ARROW_ASSIGN_OR_RAISE(int64_t n, ReadAt(position_, nbytes, /*allow_short_read=*/true, out));
  position_ += n;
  return n;
}

arrow::Result<std::shared_ptr<arrow::Buffer>> HttpRangeFile::Read(int64_t nbytes) {
  std::lock_guard<std::mutex> lock(mu_);
  ARROW_ASSIGN_OR_RAISE(auto buf, ReadAt(position_, nbytes, /*allow_short_read=*/true));
  position_ += buf->size();
  return buf;
}

arrow::Result<int64_t> HttpRangeFile::ReadAt(int64_t position, int64_t nbytes, bool allow_short_read, void* out) {
  if (closed_) return arrow::Status::Invalid(http::RedactUrl(url_), " is closed");
  if (position < 0 || nbytes < 0) return arrow::Status::Invalid("negative read position or size");
  const int64_t n = std::max<int64_t>(0, std::min(nbytes, size_ - position));
  if (n < nbytes && !allow_short_read) {
    return arrow::Status::IOError("read of ", nbytes, " bytes at ", position, " past the end of ",
                                  http::RedactUrl(url_), " (", size_, " bytes)");
  }
  if (n == 0) return 0;
  int64_t total = 0;
  absl::StatusOr<std::string> bytes = GetRange(position, position + n - 1, &total);
  if (!bytes.ok()) return ToArrow(bytes.status());
  if (total != size_) {
    return arrow::Status::IOError(http::RedactUrl(url_), " changed size while being read (", size_, " -> ",
                                  total, " bytes)");
  }
  std::memcpy(out, bytes->data(), n);
  return n;
}

arrow::Result<int64_t> HttpRangeFile::ReadAt(int64_t position, int64_t nbytes, void* out) {
  return ReadAt(position, nbytes, /*allow_short_read=*/true, out);
}

arrow::Result<std::shared_ptr<arrow::Buffer>> HttpRangeFile::ReadAt(int64_t position, int64_t nbytes,
                                                                    bool allow_short_read) {
  const int64_t n = std::max<int64_t>(0, std::min(nbytes, size_ - std::max<int64_t>(position, 0)));
  ARROW_ASSIGN_OR_RAISE(std::unique_ptr<arrow::ResizableBuffer> buf, arrow::AllocateResizableBuffer(n));
  ARROW_ASSIGN_OR_RAISE(int64_t got, ReadAt(position, nbytes, allow_short_read, buf->mutable_data()));
  ARROW_RETURN_NOT_OK(buf->Resize(got));
  return std::shared_ptr<arrow::Buffer>(std::move(buf));
}

arrow::Result<std::shared_ptr<arrow::Buffer>> HttpRangeFile::ReadAt(int64_t position, int64_t nbytes) {
  return ReadAt(position, nbytes, /*allow_short_read=*/true);
}

}  // namespace cf::data
