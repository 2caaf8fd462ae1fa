// `--data=parquet`: a Hugging Face image dataset stored as Parquet (what the Hub's dataset viewer
// converts every dataset to, and what `datasets` writes), read as a random-access Source.
//
// Where the files are (spec.path): a directory holding a dataset repo's files, one .parquet file,
// a brace pattern or list (`train-{00000..00003}-of-00004.parquet`, shard_pattern.h), or http(s)
// URLs (Hub `resolve` URLs), which are read by HTTP Range requests and never downloaded whole.
// In a directory, the split's files (spec.split; "val" also finds "validation" and "valid") are
// found in either layout the Hub uses: `<config>/<split>/NNNN.parquet` (also `partial-<split>/`)
// and `data/<split>-NNNNN-of-NNNNN.parquet`; split files under more than one config are an error
// naming them. Each file is checked at open (parquet_file.h: an `image` struct {bytes, path} and
// an integer `label`); the class names come from the files' "huggingface" metadata (every file
// must agree) and, when spec.class_list_path is also given, must equal it (else an error naming
// both). With neither, spec.num_classes is needed.
//
// Samples are rows, in file order, then row order; SampleKey(i) is "<file name>:<row in file>".
// Open() indexes row groups only; Fetch reads the row groups a batch touches (image bytes and
// labels), keeps recently used ones in a cache bounded by `cache_bytes`, and reads each row group
// once however many threads want it at the same time. A row whose image is null is skipped and
// counted ("missing_image"), a label outside the classes too ("bad_label"); a row group that
// cannot be read fails its rows ("read_failed"). Thread-safe.
#ifndef CONVFOREVER_DATA_PARQUET_SOURCE_H_
#define CONVFOREVER_DATA_PARQUET_SOURCE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/data/parquet_file.h"
#include "convforever/data/source.h"

namespace cf::data {

struct ParquetSourceOptions {
  // Decoded row groups kept in memory (their image bytes), most recently used first; at least one
  // row group is always kept.
  int64_t cache_bytes = int64_t{256} << 20;
  HttpRangeOptions http;
};

// The Parquet files of `split` that `path` names (see the file comment), sorted; an error names
// the path and the layouts looked for when there are none.
absl::StatusOr<std::vector<std::string>> ListParquetFiles(const std::string& path, const std::string& split);

absl::StatusOr<std::unique_ptr<Source>> OpenParquetSource(const DatasetSpec& spec,
                                                          const ParquetSourceOptions& options);

// The options OpenSource uses: HTTP timeouts and retries from spec.http, and $HF_TOKEN as a bearer
// token for the Hub's host only (the host of $HF_ENDPOINT, else huggingface.co).
ParquetSourceOptions DefaultParquetSourceOptions(const DatasetSpec& spec);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_PARQUET_SOURCE_H_
