// Constructors of the concrete sources behind OpenSource (source.h). Internal to the package.
#ifndef CONVFOREVER_DATA_SOURCES_INTERNAL_H_
#define CONVFOREVER_DATA_SOURCES_INTERNAL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "convforever/data/source.h"

namespace cf::data {

absl::StatusOr<std::unique_ptr<Source>> OpenIdxSource(const DatasetSpec& spec);
absl::StatusOr<std::unique_ptr<Source>> OpenCifarSource(const DatasetSpec& spec);
absl::StatusOr<std::unique_ptr<Source>> OpenSyntheticSource(const DatasetSpec& spec);
absl::StatusOr<std::unique_ptr<Source>> OpenFolderSource(const DatasetSpec& spec);
absl::StatusOr<std::unique_ptr<Source>> OpenImageNetSource(const DatasetSpec& spec);
absl::StatusOr<std::unique_ptr<Source>> OpenJsonlSource(const DatasetSpec& spec);
// parquet_source.cc, with DefaultParquetSourceOptions(spec).
absl::StatusOr<std::unique_ptr<Source>> OpenParquetSource(const DatasetSpec& spec);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_SOURCES_INTERNAL_H_
