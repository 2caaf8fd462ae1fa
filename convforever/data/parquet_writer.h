// Writes one Parquet file of a Hugging Face image dataset, the layout `datasets` writes for an
// Image() feature and a ClassLabel: a column `image`, struct {bytes: binary, path: string}, a
// column `label` (int64), and the key-value metadata "huggingface" =
// {"info": {"features": {"image": {"_type": "Image"}, "label": {"_type": "ClassLabel",
// "names": [...]}}}}, so `datasets.load_dataset("parquet", ...)` restores both features and
// parquet_file.h reads the class names back. Rows are buffered and written `row_group_rows` at a
// time; the file appears at `path` only on Close() (written to a temporary file, then renamed:
// base/atomic_file.h). Arrow-free interface over Arrow C++ (parquet_writer.cc, C++20).
// Not thread-safe.
#ifndef CONVFOREVER_DATA_PARQUET_WRITER_H_
#define CONVFOREVER_DATA_PARQUET_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cf::data {

class ParquetImageWriter {
 public:
  static absl::StatusOr<std::unique_ptr<ParquetImageWriter>> Open(const std::string& path,
                                                                  const std::vector<std::string>& class_names,
                                                                  int64_t row_group_rows = 100);
  ~ParquetImageWriter();  // without Close(): the temporary file is removed, `path` untouched

  // `image_path` is the Image feature's `path` (a file name; may be empty).
  absl::Status Add(std::string_view image_bytes, const std::string& image_path, int64_t label);
  absl::Status Close();

  int64_t rows() const;
  int64_t bytes_written() const;  // after Close(): the file's size

 private:
  struct Impl;
  explicit ParquetImageWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The "huggingface" metadata value for an Image column `image` and a ClassLabel `label`.
std::string HuggingFaceFeaturesJson(const std::vector<std::string>& class_names);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_PARQUET_WRITER_H_
