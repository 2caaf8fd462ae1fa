// ParquetImageWriter on Arrow C++ / Parquet C++ (built with ARROW_COPTS).
#include "convforever/data/parquet_writer.h"

#include <arrow/api.h>
#include <arrow/io/interfaces.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"

namespace cf::data {
namespace {

// An Arrow output stream into a base::AtomicFileWriter: the Parquet bytes stream to a temporary
// file that is renamed into place on commit.
class AtomicOutputStream : public arrow::io::OutputStream {
 public:
  explicit AtomicOutputStream(base::AtomicFileWriter* file) : file_(file) {}
  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override { return written_; }
  arrow::Status Write(const void* data, int64_t nbytes) override {
    absl::Status s = file_->Append(absl::string_view(static_cast<const char*>(data), static_cast<size_t>(nbytes)));
    if (!s.ok()) return arrow::Status::IOError(s.ToString());
    written_ += nbytes;
    return arrow::Status::OK();
  }
  using arrow::io::OutputStream::Write;

 private:
  base::AtomicFileWriter* file_;
  int64_t written_ = 0;
  bool closed_ = false;
};

std::shared_ptr<arrow::DataType> ImageType() {
  return arrow::struct_({arrow::field("bytes", arrow::binary()), arrow::field("path", arrow::utf8())});
}

}  // namespace

std::string HuggingFaceFeaturesJson(const std::vector<std::string>& class_names) {
  nlohmann::json doc;
  doc["info"]["features"]["image"] = {{"_type", "Image"}};
  doc["info"]["features"]["label"] = {{"names", class_names}, {"_type", "ClassLabel"}};
  return doc.dump();
}

struct ParquetImageWriter::Impl {
  std::string path;
  int64_t row_group_rows = 100;
  base::AtomicFileWriter file;
  std::shared_ptr<AtomicOutputStream> sink;
  std::shared_ptr<arrow::Schema> schema;
  std::unique_ptr<parquet::arrow::FileWriter> writer;
  arrow::BinaryBuilder bytes;
  arrow::StringBuilder paths;
  arrow::Int64Builder labels;
  int64_t pending = 0, rows = 0, size = 0;
  bool closed = false;

  absl::Status Check(const arrow::Status& s) const {
    if (s.ok()) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("writing parquet file ", path, ": ", s.ToString()));
  }

  absl::Status Flush() {
    if (pending == 0) return absl::OkStatus();
    std::shared_ptr<arrow::Array> b, p, l;
    RETURN_IF_ERROR(Check(bytes.Finish(&b)));
    RETURN_IF_ERROR(Check(paths.Finish(&p)));
    RETURN_IF_ERROR(Check(labels.Finish(&l)));
    auto image = arrow::StructArray::Make({b, p}, ImageType()->fields());
    RETURN_IF_ERROR(Check(image.status()));
    auto batch = arrow::RecordBatch::Make(schema, pending, {*image, l});
    RETURN_IF_ERROR(Check(writer->WriteRecordBatch(*batch)));
    pending = 0;
    return absl::OkStatus();
  }
};

ParquetImageWriter::ParquetImageWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ParquetImageWriter::~ParquetImageWriter() {
  if (impl_ != nullptr && !impl_->closed) impl_->file.Abort();
}
int64_t ParquetImageWriter::rows() const { return impl_->rows; }
int64_t ParquetImageWriter::bytes_written() const { return impl_->size; }

absl::StatusOr<std::unique_ptr<ParquetImageWriter>> ParquetImageWriter::Open(const std::string& path,
                                                                             const std::vector<std::string>& class_names,
                                                                             int64_t row_group_rows) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->row_group_rows = std::max<int64_t>(1, row_group_rows);
  RETURN_IF_ERROR(impl->file.Open(path));
  impl->sink = std::make_shared<AtomicOutputStream>(&impl->file);
  auto metadata = arrow::key_value_metadata({"huggingface"}, {HuggingFaceFeaturesJson(class_names)});
  impl->schema = arrow::schema({arrow::field("image", ImageType()), arrow::field("label", arrow::int64())}, metadata);
  parquet::WriterProperties::Builder props;
  props.max_row_group_length(impl->row_group_rows);
  parquet::ArrowWriterProperties::Builder arrow_props;
  arrow_props.store_schema();  // ARROW:schema too, as pyarrow writes it
  auto writer = parquet::arrow::FileWriter::Open(*impl->schema, arrow::default_memory_pool(), impl->sink,
                                                 props.build(), arrow_props.build());
  RETURN_IF_ERROR(impl->Check(writer.status()));
  impl->writer = std::move(*writer);
  return std::unique_ptr<ParquetImageWriter>(new ParquetImageWriter(std::move(impl)));
}

absl::Status ParquetImageWriter::Add(std::string_view image_bytes, const std::string& image_path, int64_t label) {
  Impl& m = *impl_;
  if (m.closed) return absl::FailedPreconditionError(absl::StrCat("parquet file ", m.path, " is closed"));
  RETURN_IF_ERROR(m.Check(m.bytes.Append(image_bytes.data(), static_cast<int64_t>(image_bytes.size()))));
  RETURN_IF_ERROR(m.Check(m.paths.Append(image_path)));
  RETURN_IF_ERROR(m.Check(m.labels.Append(label)));
  ++m.pending;
  ++m.rows;
  if (m.pending >= m.row_group_rows) return m.Flush();
  return absl::OkStatus();
}

absl::Status ParquetImageWriter::Close() {
  Impl& m = *impl_;
  if (m.closed) return absl::OkStatus();
  RETURN_IF_ERROR(m.Flush());
  RETURN_IF_ERROR(m.Check(m.writer->Close()));
  m.size = *m.sink->Tell();
  RETURN_IF_ERROR(m.file.Commit());
  m.closed = true;
  return absl::OkStatus();
}

}  // namespace cf::data
