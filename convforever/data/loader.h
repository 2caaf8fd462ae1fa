// Loader: the multi-threaded, deterministic, resumable batch stream the trainer consumes.
//
// Contract. For epoch e, this rank's sample order is ShardEpochIndices (sharding.h): a shuffle
// seeded from (seed, e), cut or padded so every rank gets the same count (or, with pad_shards
// off, for evaluation: neither, so each sample is on exactly one rank). Batch b of the epoch is
// samples [b * B, (b + 1) * B) of that order; each sample is augmented with an Rng seeded from
// (seed, e, sample index) and the batch's MixUp/CutMix from (seed, e, rank, b). So a batch's
// content depends only on (seed, e, b, options), never on thread count or timing: `state()` is
// just (epoch, batches consumed), and Restore() resumes with exactly the batches an
// uninterrupted run would have produced. A sample that cannot be read, fetched or decoded is
// dropped from its batch and counted by reason (the batch is then short; never refilled from a
// neighbour); a batch whose samples all failed is skipped (or, with yield_empty_batches, comes
// back with no samples).
//
// Tensors: Batch::images is float32 [B, C, H, W] normalized (channels_last memory format when
// TransformOptions::channels_last), Batch::targets is int64 [B], or float32 [B, K] soft targets
// when mixing or label smoothing is on or the source has soft labels (use soft-target cross
// entropy then).
//
// Threads: `num_workers` threads build whole batches ahead, at most `prefetch_batches` beyond the
// one the consumer waits for; 0 workers builds on the calling thread. The destructor stops and
// joins them. A Loader is used from one thread (Next/StartEpoch/Restore are not concurrent).
//
// WebDataset ("wds", see wds.h) is streamed instead: one feeder thread reads this rank's shards
// (shard order shuffled from (seed, epoch), shard i to rank i % world_size) through a shuffle
// buffer seeded from (seed, epoch, rank) and cuts batches of encoded records; workers decode and
// augment them (per-sample Rng from (seed, epoch, key)). The stream is deterministic too, and
// Restore replays the epoch's stream up to the saved batch without decoding (exact, at the cost of
// re-reading those shards). A training stream (`train`) always knows its epoch length: per rank
// DatasetSpec::wds_epoch_samples, else wds_train_samples / world_size, else the shards' count
// (wds_count.h); a rank whose shards run out first cycles through them again. An evaluation
// stream (`train` false) reads this rank's shards once, in order, and yields every sample of its
// holdout part once; its batches_per_epoch() is -1 (unknown), num_samples() is the set's size
// over all ranks, counted at creation like a training stream's (wds_count.h, cached), and Next()
// returns nullopt after its last batch.
#ifndef CONVFOREVER_DATA_LOADER_H_
#define CONVFOREVER_DATA_LOADER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "convforever/data/batch.h"
#include "convforever/data/source.h"
#include "convforever/data/transforms.h"
#include "convforever/data/wds.h"

namespace cf::data {

struct Batch {
  at::Tensor images;   // [B, C, H, W] float32, normalized
  at::Tensor targets;  // [B] int64, or [B, K] float32 soft targets
  std::vector<std::string> keys;
  int64_t epoch = 0;
  int64_t index_in_epoch = 0;
};

// Progressive resizing (e.g. FFCV, "Budgeted training"): from `from_epoch` on, images are
// `image_size` and, when > 0, batches `batch_size`.
struct ProgressiveStage {
  int64_t from_epoch = 0;
  int64_t image_size = 0;
  int64_t batch_size = 0;
};

struct LoaderOptions {
  int64_t batch_size = 128;
  int num_workers = 2;
  int prefetch_batches = 4;
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = true;
  int rank = 0, world_size = 1;
  // !drop_last: pad every rank to the same sample count by repeating a few (training), or not
  // (evaluation: each sample once over the ranks; see sharding.h).
  bool pad_shards = true;
  // > 0: keep fetched encoded samples in memory up to this many bytes (caching_source.h), for a
  // data set read many times unchanged (the evaluation set of remote data).
  int64_t cache_bytes = 0;
  bool train = true;  // train transforms, else eval resize + center crop
  TransformOptions transforms;
  MixOptions mix;     // only applied when train
  int64_t image_size = 0;  // 0: the source's native size (pixel sources only)
  int channels = 0;        // 1 or 3 as the model needs; 0: the source's own
  std::vector<ProgressiveStage> progressive;  // sorted by from_epoch
  bool pin_memory = false;  // page-locked batches when LibTorch has CUDA
  // A batch whose samples all failed comes back empty (no keys, images [0, C, H, W]) instead of
  // being skipped, so every epoch yields its planned batch count: ranks that must take the same
  // number of steps (the trainer) stay in step when one rank's batch is all unreadable.
  bool yield_empty_batches = false;
  // Polled (every 50 ms) while Next() waits and while a wds epoch length is counted: once it
  // returns true, Next() returns CANCELLED and the stream's feeder and downloads are cancelled.
  // The trainer passes base::StopRequested. Empty: never.
  std::function<bool()> should_stop;
};

struct LoaderState {
  int64_t epoch = 0;
  int64_t batches_consumed = 0;
  // Checked on Restore: a state only resumes the run it came from.
  uint64_t seed = 0;
  int rank = 0, world_size = 1;
  int64_t num_samples = 0;
  int64_t batch_size = 0;  // LoaderOptions::batch_size (progressive stages derive from it)
  std::string ToJson() const;
  static absl::StatusOr<LoaderState> FromJson(const std::string& json);
};

struct Counters {
  int64_t images = 0;   // delivered in batches
  int64_t batches = 0;
  double seconds = 0;   // since the first StartEpoch
  double images_per_sec = 0;
  std::map<std::string, int64_t> skipped;   // at load time: read_failed, fetch_failed, decode_failed
  std::map<std::string, int64_t> excluded;  // at indexing: unknown_label, label_out_of_list, malformed_line
};

absl::Status ValidateLoaderOptions(const LoaderOptions& options);

class Loader {
 public:
  // Opens spec's source and keeps spec.holdout_part of it (holdout_select.h), then spec.subset.
  static absl::StatusOr<std::unique_ptr<Loader>> Create(const DatasetSpec& spec, const LoaderOptions& options);
  // Same, over a source built elsewhere (tests, custom sources): every sample, then `subset`.
  static absl::StatusOr<std::unique_ptr<Loader>> Create(std::unique_ptr<Source> source, int64_t subset,
                                                        const LoaderOptions& options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  absl::Status StartEpoch(int64_t epoch);
  // The next batch of the epoch, or nullopt at its end. Errors are not data errors (those are
  // skipped and counted) but internal failures.
  absl::StatusOr<std::optional<Batch>> Next();

  int64_t batches_per_epoch() const;  // of the current epoch (epoch 0 before StartEpoch)
  // Of epoch `epoch`, without starting it: progressive stages with their own batch size give
  // their epochs other counts (every epoch has the same samples per rank, sharding.h). -1: unknown.
  int64_t batches_in_epoch(int64_t epoch) const;
  int64_t num_samples() const;        // in the dataset (after subset), all ranks
  int num_classes() const;
  // The source's class names (see Source::class_names); streamed (wds) data names them only
  // through a class list, which the caller reads.
  std::vector<std::string> class_names() const;
  int64_t image_size() const;         // of the current epoch
  int channels() const { return channels_; }
  LoaderState state() const;
  absl::Status Restore(const LoaderState& state);
  Counters counters() const;

 private:
  struct Plan {
    int64_t epoch = 0, image_size = 0, batch_size = 0, num_batches = 0;  // -1: unknown (stream)
    std::vector<int64_t> order;  // indices into the (subset) dataset; empty for streams
  };
  struct Produced {
    absl::StatusOr<std::optional<Batch>> batch = std::optional<Batch>();
    std::map<std::string, int64_t> skipped;
  };

  Loader(std::unique_ptr<Source> source, std::unique_ptr<WdsSource> stream, std::vector<int64_t> subset_map,
         const LoaderOptions& options, const DatasetSpec& spec);
  static absl::StatusOr<std::unique_ptr<Loader>> CreateStream(const DatasetSpec& spec, const LoaderOptions& options);
  // `keep`: the source indices to read (empty: all), before the subset.
  static absl::StatusOr<std::unique_ptr<Loader>> CreateOver(std::unique_ptr<Source> source, std::vector<int64_t> keep,
                                                            int64_t subset, const LoaderOptions& options);
  std::shared_ptr<Plan> MakePlan(int64_t epoch) const;
  absl::Status Begin(int64_t epoch, int64_t start_batch);
  // Builds batch b from `records` (streams) or by fetching the plan's indices (records null).
  Produced Produce(int64_t b, const Plan& plan, std::vector<FetchResult>* records) const;
  absl::StatusOr<std::optional<Batch>> ProduceOrThrow(int64_t b, const Plan& plan, std::vector<FetchResult>* records,
                                                      std::map<std::string, int64_t>* skipped) const;
  absl::StatusOr<Image> PrepareImage(Record& r, const Plan& plan, uint64_t id) const;
  absl::StatusOr<at::Tensor> MakeTargets(int64_t b, const Plan& plan, const std::vector<int64_t>& labels,
                                         const std::vector<std::vector<float>>& soft, at::Tensor& images) const;
  void WorkerLoop();
  // A batch buffer of this shape nobody else holds any more (or a new one, pooled up to a cap).
  at::Tensor RecycledBuffer(int64_t b, int64_t c, int64_t h, int64_t w) const;
  void StopFeeder();
  void FeederLoop(std::shared_ptr<Plan> plan, uint64_t gen, int64_t start_batch);
  bool Publish(uint64_t gen, int64_t start_batch, int64_t b, std::vector<FetchResult> batch,
               std::map<std::string, int64_t>* skipped);
  int64_t SourceIndex(int64_t i) const { return subset_map_.empty() ? i : subset_map_[i]; }

  std::unique_ptr<Source> source_;     // random-access datasets
  std::unique_ptr<WdsSource> stream_;  // or a WebDataset stream
  DatasetSpec spec_;
  std::vector<int64_t> subset_map_;
  LoaderOptions opts_;
  int channels_ = 3;
  std::vector<float> mean_, std_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  std::shared_ptr<Plan> plan_;
  uint64_t generation_ = 0;
  int64_t next_dispatch_ = 0, next_consume_ = 0;
  std::map<int64_t, Produced> ready_;
  std::map<int64_t, std::vector<FetchResult>> raw_;  // stream batches cut by the feeder, not yet built
  int64_t stream_total_ = -1;                        // batches the feeder cut this epoch, once done
  int64_t stream_eval_samples_ = -1;                 // an evaluation stream's counted size, all ranks
  std::thread feeder_;
  std::atomic<bool> feeder_cancel_{false};
  bool stop_ = false;
  std::vector<std::thread> workers_;

  mutable std::mutex pool_mu_;
  mutable std::vector<at::Tensor> pool_;

  Counters counters_;
  std::optional<std::chrono::steady_clock::time_point> started_;
};

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_LOADER_H_
