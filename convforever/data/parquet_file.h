// One Parquet file of a Hugging Face image dataset, read with Arrow C++ behind an Arrow-free
// interface (the Arrow types stay in parquet_file.cc, built as C++20; see
// third_party/arrow/defs.bzl).
//
// The layout is the one `datasets` writes for an Image() feature and a ClassLabel: a column
// `image` that is a struct {bytes: binary, path: string} (a plain binary `image` column is
// accepted too) and an integer column `label`. The class names come from the file's key-value
// metadata key "huggingface", a JSON document
// {"info": {"features": {"label": {"_type": "ClassLabel", "names": [...]}, ...}}}.
// Open() reads the footer only (for a URL: by HTTP Range requests, http_range_file.h) and checks
// the schema: a missing `image` or `label` column, an `image` without binary bytes, or a
// non-integer `label` is an error naming the file and the column. ReadRowGroup() reads just the
// image bytes and label columns of one row group. Thread-safe (reads of one file are serialized).
#ifndef CONVFOREVER_DATA_PARQUET_FILE_H_
#define CONVFOREVER_DATA_PARQUET_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "convforever/http/retry.h"

namespace cf::data {

// How an http(s) file is read by Range requests (http_range_file.h).
struct HttpRangeOptions {
  http::RetryPolicy retry;  // which answers are retried, and how long to wait
  absl::Duration timeout = absl::Seconds(60);  // per request
  absl::Duration connect_timeout = absl::Seconds(10);
  std::string bearer_token;  // empty = none; never logged
  std::string token_host;    // the only host the token is sent to ("huggingface.co")
  std::string user_agent = "convforever-data/1";
};

// The host of an http(s) URL ("huggingface.co" from "https://user@huggingface.co:443/x"), lower
// case; empty when `url` is not one.
std::string UrlHost(const std::string& url);

// One row group's samples, row by row.
struct ParquetImageRows {
  std::vector<std::string> image;  // encoded image bytes (empty where has_image is 0)
  std::vector<uint8_t> has_image;  // 0 where the image or its bytes are null
  std::vector<int64_t> label;      // -1 where the label is null
};

class ParquetImageFile {
 public:
  // `location`: a local path or an http(s) URL (errors name it redacted).
  static absl::StatusOr<std::unique_ptr<ParquetImageFile>> Open(const std::string& location,
                                                                const HttpRangeOptions& http);
  ~ParquetImageFile();

  const std::string& location() const;
  int64_t num_rows() const;
  // Rows of each row group, in file order.
  const std::vector<int64_t>& row_group_rows() const;
  // The label column's ClassLabel names from the "huggingface" metadata; empty when absent.
  const std::vector<std::string>& class_names() const;
  // Bytes of the row group's image and label column chunks (compressed): what a read costs.
  int64_t row_group_bytes(int row_group) const;

  absl::StatusOr<ParquetImageRows> ReadRowGroup(int row_group) const;

 private:
  struct Impl;
  explicit ParquetImageFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_PARQUET_FILE_H_
