// The random-access source interface behind Loader, and the DatasetSpec that selects one.
//
// A Source knows how many samples it has and fetches any of them by index: either already
// decoded pixels (IDX, CIFAR, synthetic) or encoded bytes (image files, URLs) that the loader
// decodes with a size hint. Fetch is thread-safe and called from many worker threads at once, one
// batch of indices at a time, so network sources can keep many requests in flight. A sample that
// cannot be had (unreadable file, failed download) comes back as a FetchResult with a status and
// a short `skip_reason` ("read_failed", "fetch_failed"); the loader skips and counts it, never
// substituting a neighbour. Problems found while indexing (records excluded for unknown labels,
// malformed lines skipped on request) are reported once by excluded().
#ifndef CONVFOREVER_DATA_SOURCE_H_
#define CONVFOREVER_DATA_SOURCE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "convforever/data/holdout.h"
#include "convforever/data/http_fetch.h"
#include "convforever/data/image.h"

namespace cf::data {

// Where Debian's fashion-mnist package puts the dataset: --data=fashion_mnist's default location.
inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

struct DatasetSpec {
  std::string kind;   // idx | fashion_mnist (idx + its class names) | cifar10 | cifar100 | folder | imagenet | jsonl | wds | parquet (parquet_source.h) | synthetic
  std::string path;   // directory, file, (jsonl) the .jsonl file, (wds, parquet) shard pattern or URL
  std::string split = "train";  // train | val | test ("test" and "val" are the same for idx/cifar)
  int64_t subset = 0;           // > 0: keep this many samples, evenly strided (quick runs)
  // A held-out split by sample key (holdout.h): which part of the data this spec reads, and the
  // fraction held out. Applied before `subset`. Sources without keys (idx, cifar, synthetic)
  // refuse a part other than kAll.
  HoldoutPart holdout_part = HoldoutPart::kAll;
  double holdout_fraction = 0;
  std::string class_list_path;  // one class name per line (jsonl, folder/imagenet override)
  // cifar100: "fine" (100 classes) or "coarse" (20 superclasses).
  std::string cifar100_labels = "fine";
  // jsonl: integer labels must lie in [0, num_classes) when there is no class list.
  int num_classes = 0;
  bool skip_malformed = false;  // jsonl: skip and count malformed lines instead of failing
  HttpFetchOptions http;        // jsonl records with a url, remote wds shards
  // wds (streamed by Loader; see wds.h). Shuffle buffer in samples (used when shuffling);
  // samples per rank per epoch (0 = read this rank's shards once; ranks may then differ in
  // batch count, so set it for multi-rank training); the largest tar member accepted.
  int64_t wds_shuffle_buffer = 1000;
  int64_t wds_epoch_samples = 0;
  int64_t wds_max_member_bytes = 64ll << 20;
  // wds training: samples in the whole training set (all ranks, holdout part applied); each
  // rank's epoch is this / world_size. 0 with wds_epoch_samples 0: counted from the shards once
  // and cached (wds_count.h).
  int64_t wds_train_samples = 0;
  // Remote shards: download buffer per shard, and how long a download may go without a byte
  // (while its buffer has room) before it is resumed with a Range request.
  int64_t wds_stream_buffer_bytes = 4ll << 20;
  double wds_stall_timeout_s = 60;
  // synthetic
  int64_t synthetic_samples = 1024;
  int synthetic_classes = 10;
  int synthetic_size = 32;
  int synthetic_channels = 3;
  double synthetic_noise = 0.25;  // noise amplitude relative to the pattern (0..1)
  bool synthetic_pure_noise = false;  // labels random and unrelated to pixels
  uint64_t synthetic_seed = 0;
};

struct Record {
  std::string encoded;  // image file bytes, or empty when `image` holds pixels
  Image image;
  int64_t label = -1;
  std::vector<float> soft_label;
  std::string key;
};

struct FetchResult {
  absl::StatusOr<Record> record;
  std::string skip_reason;  // set when !record.ok()
};

class Source {
 public:
  virtual ~Source() = default;
  virtual int64_t size() const = 0;
  virtual int num_classes() const = 0;
  // Class k's name where the data defines one (Fashion-MNIST's labels, CIFAR's label-name files,
  // folder names, a class list): num_classes() entries, or empty when the data names none.
  virtual std::vector<std::string> class_names() const { return {}; }
  virtual std::vector<FetchResult> Fetch(absl::Span<const int64_t> indices) = 0;
  // Sample i's stable key for a held-out split (holdout.h), known without fetching it: a path
  // relative to the dataset root, a URL, "<file name>:<row>". Empty when the source has no
  // such keys (its data ships its own splits).
  virtual std::string SampleKey(int64_t i) const { return {}; }
  virtual std::map<std::string, int64_t> excluded() const { return {}; }
};

// Opens the random-access source named by spec.kind (all but "wds", which Loader streams); every file list, header and size is checked here, so a
// missing folder or truncated file is an error at start, naming the path.
absl::StatusOr<std::unique_ptr<Source>> OpenSource(const DatasetSpec& spec);

// Reads a whole file (gzip-compressed or plain: zlib reads both transparently).
absl::StatusOr<std::string> ReadMaybeGzipFile(const std::string& path);
absl::StatusOr<std::string> ReadFile(const std::string& path);
// One class name per line; blank lines and '#' comments ignored; duplicates are an error.
absl::StatusOr<std::vector<std::string>> ReadClassList(const std::string& path);
// ReadClassList on text already read: names come back stripped of surrounding whitespace, never
// empty, never starting with '#', never repeated, and at least one. Errors name `source`.
absl::StatusOr<std::vector<std::string>> ParseClassList(absl::string_view text, const std::string& source);

// The byte-level parsers behind OpenSource: each checks everything a file could claim against
// the bytes it actually has, and errors name `source` (the file's path).

// An IDX array (LeCun's MNIST format: bytes 0, 0, element type 0x08 = uint8, ndim, then ndim
// big-endian uint32 dims, then the elements row-major). Only uint8 elements are supported.
struct IdxArray {
  std::vector<int64_t> dims;  // 1 to 4
  int64_t header_bytes = 0;   // 4 + 4 * ndim: where the elements start
  int64_t num_elements = 0;   // the product of dims; header_bytes + num_elements <= bytes.size()
};
// Trailing bytes after the last element are allowed (the file is checked only for holding all
// the elements its header announces).
absl::StatusOr<IdxArray> ParseIdx(absl::string_view bytes, const std::string& source);
// The source OpenSource makes for kind "idx" or "fashion_mnist" (`kind`) from the two files once
// read: images N x H x W [x C] (H and W in [1, 65536], C = 1 or 3) and N labels; the paths name
// them in errors.
absl::StatusOr<std::unique_ptr<Source>> IdxSourceFromBytes(std::string images, const std::string& images_path,
                                                           std::string labels, const std::string& labels_path,
                                                           const std::string& kind);

// A CIFAR binary batch (data_batch_N.bin, test_batch.bin, train.bin, test.bin): fixed-size records
// of the label byte(s) (CIFAR-10: the label; CIFAR-100: coarse, then fine) followed by 32x32 RGB
// pixels as three planes. Which kind and which CIFAR-100 label come from spec.kind and
// spec.cifar100_labels.
struct CifarBatch {
  int64_t label_bytes = 0;   // 1 (cifar10) or 2 (cifar100)
  int64_t record_bytes = 0;  // label_bytes + 3072; record i starts at i * record_bytes
  std::vector<int> labels;   // one per record, each in [0, classes); never empty
};
absl::StatusOr<CifarBatch> ParseCifarBatch(absl::string_view bytes, const DatasetSpec& spec,
                                           const std::string& source);

// JSONL records, one JSON object per line: {"url": ...} or {"path": ...} (relative paths resolve
// against the directory of spec.path, which also names the file in errors) and a "label" that is
// a class name from `classes` or an integer in [0, number of classes) (classes.size(), or
// spec.num_classes when `classes` is empty). Records labelled "unknown" or outside the classes
// are excluded and counted; a malformed line is an error naming its line, or skipped and counted
// when spec.skip_malformed is set. At least one usable record.
struct JsonlRecords {
  struct Item {
    std::string location;  // file path or http(s) URL
    int64_t label;
    std::string key;       // the url or path as written in the record (Source::SampleKey)
  };
  std::vector<Item> items;
  std::map<std::string, int64_t> excluded;  // "unknown_label", "label_out_of_list", "malformed_line"
};
absl::StatusOr<JsonlRecords> ParseJsonlRecords(absl::string_view text, const DatasetSpec& spec,
                                               const std::vector<std::string>& classes);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_SOURCE_H_
