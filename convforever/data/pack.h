// Packing any Source into shards another reader streams or maps: WebDataset tars or Hugging Face
// Parquet files (`pack` binary, pack_main.cc).
//
// Which samples: every index of the source, in order, restricted to options.holdout_part of a
// held-out split by sample key (holdout.h; the source must have keys), then `subset` of them
// evenly strided (the Loader's rule). Each sample's image goes out as encoded bytes: a source that
// yields encoded files (folder, jsonl, wds-like) keeps them byte for byte, a source of pixels
// (idx, fashion_mnist, cifar) is encoded as PNG (lossless). Samples are named by their position in
// the output, zero padded ("000000042"), so names sort in output order.
//  * wds: `<out>/<prefix>-000000.tar`, ... (prefix defaults to the split), POSIX ustar members
//    `<name>.png|jpg|webp` and `<name>.cls` (the label as decimal text), in name order, with a
//    fixed mtime, owner 0 and mode 0644: the same input gives the same bytes. Plus
//    `<out>/classes.txt` (one class name per line). wds.h reads it back.
//  * parquet: `<out>/<split>/0000.parquet`, ... in the layout `datasets` writes (parquet_writer.h),
//    so parquet_source.h and `datasets.load_dataset("parquet", data_dir=<out>)` read it back.
// Every file is written to a temporary name and renamed when complete. A sample the source cannot
// give (skip_reason) or without a hard label is skipped and counted. Not thread-safe.
#ifndef CONVFOREVER_DATA_PACK_H_
#define CONVFOREVER_DATA_PACK_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/data/holdout.h"
#include "convforever/data/source.h"

namespace cf::data {

struct PackOptions {
  std::string out_dir;
  std::string format = "wds";  // wds | parquet
  int64_t shard_size = 10000;  // samples per shard
  std::string split = "train"; // parquet: the split folder; wds: the default prefix
  std::string prefix;          // wds shard name prefix (empty = split)
  int64_t subset = 0;          // > 0: keep this many samples, evenly strided
  HoldoutPart holdout_part = HoldoutPart::kAll;
  double holdout_fraction = 0;
  int64_t fetch_batch = 256;          // samples fetched from the source at once
  int64_t parquet_row_group_rows = 100;  // as `datasets` writes image datasets
};

struct PackSummary {
  int64_t samples = 0;  // written
  int64_t shards = 0;
  int64_t bytes = 0;    // of the shard files
  std::vector<std::string> files;          // shard paths, in order
  std::map<std::string, int64_t> skipped;  // by reason
};

absl::StatusOr<PackSummary> Pack(Source& source, const PackOptions& options);

// A POSIX ustar header block (512 bytes) for a regular file `name` (at most 100 bytes) of `size`
// bytes with the fixed metadata described above; the member's data follows, padded to 512.
std::string UstarHeader(const std::string& name, int64_t size);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_PACK_H_
