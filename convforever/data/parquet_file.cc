// ParquetImageFile on Arrow C++ / Parquet C++ (built with ARROW_COPTS: Arrow's headers need C++20).
#include "convforever/data/parquet_file.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <parquet/arrow/reader.h>
#include <parquet/exception.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>

#include <mutex>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convforever/data/http_fetch.h"
#include "convforever/data/http_range_file.h"
#include "convforever/http/headers.h"

namespace cf::data {
namespace {

absl::Status FromArrow(const arrow::Status& s, const std::string& what) {
  return absl::DataLossError(absl::StrCat(what, ": ", s.ToString()));
}

bool IsBinary(const arrow::DataType& t) {
  return t.id() == arrow::Type::BINARY || t.id() == arrow::Type::LARGE_BINARY;
}

// The label at row j of an integer array of any width (checked at open).
int64_t IntegerAt(const arrow::Array& a, int64_t j) {
  switch (a.type_id()) {
    case arrow::Type::INT8: return static_cast<const arrow::Int8Array&>(a).Value(j);
    case arrow::Type::INT16: return static_cast<const arrow::Int16Array&>(a).Value(j);
    case arrow::Type::INT32: return static_cast<const arrow::Int32Array&>(a).Value(j);
    case arrow::Type::INT64: return static_cast<const arrow::Int64Array&>(a).Value(j);
    case arrow::Type::UINT8: return static_cast<const arrow::UInt8Array&>(a).Value(j);
    case arrow::Type::UINT16: return static_cast<const arrow::UInt16Array&>(a).Value(j);
    case arrow::Type::UINT32: return static_cast<const arrow::UInt32Array&>(a).Value(j);
    case arrow::Type::UINT64: return static_cast<int64_t>(static_cast<const arrow::UInt64Array&>(a).Value(j));
    default: return -1;
  }
}

std::string_view BinaryAt(const arrow::Array& a, int64_t j) {
  if (a.type_id() == arrow::Type::LARGE_BINARY) return static_cast<const arrow::LargeBinaryArray&>(a).GetView(j);
  return static_cast<const arrow::BinaryArray&>(a).GetView(j);
}

// The label feature's ClassLabel names from the "huggingface" metadata value.
absl::StatusOr<std::vector<std::string>> ClassNamesFromMetadata(const std::string& text, const std::string& file) {
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": the \"huggingface\" metadata is not a JSON object"));
  }
  const nlohmann::json* label = nullptr;
  for (const char* path : {"/info/features/label", "/features/label"}) {  // datasets 2.x+, older
    const auto ptr = nlohmann::json::json_pointer(path);
    if (doc.contains(ptr)) { label = &doc.at(ptr); break; }
  }
  std::vector<std::string> names;
  if (label == nullptr || !label->is_object() || label->value("_type", "") != "ClassLabel") return names;
  const auto it = label->find("names");
  if (it == label->end()) return names;
  if (!it->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ClassLabel 'names' of column 'label' is not a list"));
  }
  for (const auto& n : *it) {
    if (!n.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": ClassLabel 'names' of column 'label' holds a non-string"));
    }
    names.push_back(n.get<std::string>());
  }
  return names;
}

}  // namespace

struct ParquetImageFile::Impl {
  std::string location;
  std::string shown;  // the location for messages (URL redacted)
  std::shared_ptr<arrow::io::RandomAccessFile> input;
  std::shared_ptr<parquet::FileMetaData> metadata;
  std::vector<int64_t> rg_rows;
  std::vector<std::string> names;
  int image_leaf = -1, label_leaf = -1;
  bool image_is_struct = true;

  // Readers over `input` sharing the footer: a reader reads one row group at a time, so threads
  // wanting different row groups of one file each take one (at most kMaxReaders are kept).
  static constexpr size_t kMaxReaders = 4;
  std::mutex mu;
  std::vector<std::unique_ptr<parquet::arrow::FileReader>> idle;  // guarded by mu

  absl::StatusOr<std::unique_ptr<parquet::arrow::FileReader>> TakeReader() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!idle.empty()) {
        auto r = std::move(idle.back());
        idle.pop_back();
        return r;
      }
    }
    parquet::arrow::FileReaderBuilder builder;
    arrow::Status s = builder.Open(input, parquet::default_reader_properties(), metadata);
    if (!s.ok()) return FromArrow(s, shown);
    std::unique_ptr<parquet::arrow::FileReader> r;
    s = builder.memory_pool(arrow::default_memory_pool())->Build(&r);
    if (!s.ok()) return FromArrow(s, shown);
    r->set_use_threads(false);  // the loader's workers are the parallelism
    return r;
  }
  void GiveBack(std::unique_ptr<parquet::arrow::FileReader> r) {
    std::lock_guard<std::mutex> lock(mu);
    if (idle.size() < kMaxReaders) idle.push_back(std::move(r));
  }
};

ParquetImageFile::ParquetImageFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ParquetImageFile::~ParquetImageFile() = default;
const std::string& ParquetImageFile::location() const { return impl_->location; }
const std::vector<int64_t>& ParquetImageFile::row_group_rows() const { return impl_->rg_rows; }
const std::vector<std::string>& ParquetImageFile::class_names() const { return impl_->names; }
int64_t ParquetImageFile::num_rows() const { return impl_->metadata->num_rows(); }

int64_t ParquetImageFile::row_group_bytes(int row_group) const {
  auto rg = impl_->metadata->RowGroup(row_group);
  return rg->ColumnChunk(impl_->image_leaf)->total_compressed_size() +
         rg->ColumnChunk(impl_->label_leaf)->total_compressed_size();
}

absl::StatusOr<std::unique_ptr<ParquetImageFile>> ParquetImageFile::Open(const std::string& location,
                                                                         const HttpRangeOptions& http) {
  auto impl = std::make_unique<Impl>();
  impl->location = location;
  const std::string& f = impl->shown = IsHttpUrl(location) ? http::RedactUrl(location) : location;
  if (IsHttpUrl(location)) {
    auto remote = HttpRangeFile::Open(location, http);
    if (!remote.ok()) return absl::Status(remote.status().code(), absl::StrCat("parquet file ", remote.status().message()));
    impl->input = *remote;
  } else {
    auto local = arrow::io::ReadableFile::Open(location);
    if (!local.ok()) return absl::NotFoundError(absl::StrCat("cannot open parquet file ", f, ": ", local.status().message()));
    impl->input = *local;
  }
  std::shared_ptr<arrow::Schema> schema;
  try {
    auto reader = parquet::arrow::OpenFile(impl->input, arrow::default_memory_pool());
    if (!reader.ok()) return FromArrow(reader.status(), absl::StrCat(f, ": not a readable Parquet file"));
    impl->metadata = (*reader)->parquet_reader()->metadata();
    arrow::Status s = (*reader)->GetSchema(&schema);
    if (!s.ok()) return FromArrow(s, f);
    impl->idle.push_back(std::move(*reader));
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(f, ": not a readable Parquet file: ", e.what()));
  }

  auto column_list = [&] { return absl::StrJoin(schema->field_names(), ", "); };
  const auto image = schema->GetFieldByName("image");
  if (image == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(f, ": no column 'image' (columns: ", column_list(),
                                                   "); expected the Image feature's struct {bytes, path}"));
  }
  if (image->type()->id() == arrow::Type::STRUCT) {
    const auto bytes = static_cast<const arrow::StructType&>(*image->type()).GetFieldByName("bytes");
    if (bytes == nullptr || !IsBinary(*bytes->type())) {
      return absl::InvalidArgumentError(absl::StrCat(f, ": column 'image' is ", image->type()->ToString(),
                                                     ", not a struct with binary 'bytes' (the Image feature)"));
    }
    impl->image_leaf = impl->metadata->schema()->ColumnIndex("image.bytes");
  } else if (IsBinary(*image->type())) {
    impl->image_is_struct = false;
    impl->image_leaf = impl->metadata->schema()->ColumnIndex("image");
  } else {
    return absl::InvalidArgumentError(absl::StrCat(f, ": column 'image' is ", image->type()->ToString(),
                                                   ", not the Image feature's struct {bytes, path} or binary"));
  }
  const auto label = schema->GetFieldByName("label");
  if (label == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(f, ": no column 'label' (columns: ", column_list(), ")"));
  }
  if (!arrow::is_integer(label->type()->id())) {
    return absl::InvalidArgumentError(absl::StrCat(f, ": column 'label' is ", label->type()->ToString(),
                                                   ", not an integer class id (a ClassLabel)"));
  }
  impl->label_leaf = impl->metadata->schema()->ColumnIndex("label");
  if (impl->image_leaf < 0 || impl->label_leaf < 0) {
    return absl::InvalidArgumentError(absl::StrCat(f, ": cannot find the Parquet leaf columns of 'image' and 'label'"));
  }
  for (int i = 0; i < impl->metadata->num_row_groups(); ++i) impl->rg_rows.push_back(impl->metadata->RowGroup(i)->num_rows());
  if (const auto& kv = impl->metadata->key_value_metadata(); kv != nullptr) {
    if (const int k = kv->FindKey("huggingface"); k >= 0) {
      auto names = ClassNamesFromMetadata(kv->value(k), f);
      if (!names.ok()) return names.status();
      impl->names = std::move(*names);
    }
  }
  return std::unique_ptr<ParquetImageFile>(new ParquetImageFile(std::move(impl)));
}

absl::StatusOr<ParquetImageRows> ParquetImageFile::ReadRowGroup(int row_group) const {
  const std::string what = absl::StrCat(impl_->shown, ": row group ", row_group);
  if (row_group < 0 || row_group >= static_cast<int>(impl_->rg_rows.size())) {
    return absl::OutOfRangeError(absl::StrCat(what, " does not exist (", impl_->rg_rows.size(), " row groups)"));
  }
  auto reader = impl_->TakeReader();
  if (!reader.ok()) return reader.status();
  std::shared_ptr<arrow::Table> table;
  try {
    auto t = (*reader)->ReadRowGroup(row_group, {impl_->image_leaf, impl_->label_leaf});
    if (!t.ok()) return FromArrow(t.status(), what);
    table = *t;
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(what, ": ", e.what()));
  }
  impl_->GiveBack(std::move(*reader));
  const auto image = table->GetColumnByName("image");
  const auto label = table->GetColumnByName("label");
  if (image == nullptr || label == nullptr || table->num_rows() != impl_->rg_rows[row_group]) {
    return absl::DataLossError(absl::StrCat(what, ": read ", table->num_rows(), " rows of columns ",
                                            absl::StrJoin(table->ColumnNames(), ", "), ", expected ",
                                            impl_->rg_rows[row_group], " rows of 'image' and 'label'"));
  }
  ParquetImageRows rows;
  const int64_t n = table->num_rows();
  rows.image.resize(n);
  rows.has_image.assign(n, 0);
  rows.label.assign(n, -1);
  int64_t row = 0;
  for (const auto& chunk : image->chunks()) {
    std::shared_ptr<arrow::Array> bytes = chunk;
    if (impl_->image_is_struct) bytes = static_cast<const arrow::StructArray&>(*chunk).GetFieldByName("bytes");
    if (bytes == nullptr || !IsBinary(*bytes->type())) {
      return absl::DataLossError(absl::StrCat(what, ": column 'image' has no binary 'bytes'"));
    }
    for (int64_t j = 0; j < chunk->length(); ++j, ++row) {
      if (chunk->IsNull(j) || bytes->IsNull(j)) continue;
      rows.image[row] = std::string(BinaryAt(*bytes, j));
      rows.has_image[row] = 1;
    }
  }
  row = 0;
  for (const auto& chunk : label->chunks()) {
    for (int64_t j = 0; j < chunk->length(); ++j, ++row) {
      if (!chunk->IsNull(j)) rows.label[row] = IntegerAt(*chunk, j);
    }
  }
  return rows;
}

}  // namespace cf::data
