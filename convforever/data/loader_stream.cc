// The WebDataset half of Loader: creation and the feeder thread that turns this rank's shard
// stream into batches of encoded records (see the stream paragraph of loader.h).
#include <numeric>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/loader.h"
#include "convforever/data/rng.h"
#include "convforever/data/sharding.h"
#include "convforever/data/wds_count.h"

namespace cf::data {

absl::StatusOr<std::unique_ptr<Loader>> Loader::CreateStream(const DatasetSpec& spec, const LoaderOptions& options) {
  RETURN_IF_ERROR(ValidateLoaderOptions(options));
  ASSIGN_OR_RETURN(auto stream, WdsSource::Open(spec));
  if (static_cast<int>(stream->shards().size()) < options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat(spec.path, " has ", stream->shards().size(),
                                                   " shard(s), fewer than world_size ", options.world_size));
  }
  if (options.image_size <= 0) return absl::InvalidArgumentError("image_size must be set for wds datasets");
  if (spec.wds_shuffle_buffer < 0 || spec.wds_epoch_samples < 0 || spec.wds_max_member_bytes <= 0) {
    return absl::InvalidArgumentError("wds_shuffle_buffer, wds_epoch_samples must be >= 0, wds_max_member_bytes > 0");
  }
  if (spec.subset > 0) return absl::InvalidArgumentError("subset is not supported for wds; use wds_epoch_samples");
  LoaderOptions o = options;
  if (o.channels == 0) o.channels = 3;
  DatasetSpec s = spec;
  if (o.train && s.wds_epoch_samples == 0) {
    ASSIGN_OR_RETURN(WdsTrainSamples total, ResolveWdsTrainSamples(*stream, o.should_stop));
    s.wds_epoch_samples = total.samples / o.world_size;
    if (s.wds_epoch_samples == 0) {
      return absl::InvalidArgumentError(absl::StrCat(spec.path, ": ", total.samples, " training samples (", total.how,
                                                     ") are fewer than world_size ", o.world_size));
    }
  }
  // An evaluation stream reads its shards once; its size (all ranks) is counted the same way,
  // so the log and the eval count can name it.
  int64_t eval_samples = -1;
  if (!o.train) {
    ASSIGN_OR_RETURN(WdsTrainSamples total, ResolveWdsTrainSamples(*stream, o.should_stop, "evaluation"));
    eval_samples = total.samples;
  }
  std::unique_ptr<Loader> loader(new Loader(nullptr, std::move(stream), {}, o, s));
  loader->stream_eval_samples_ = eval_samples;
  if (loader->MakePlan(0)->num_batches == 0) {
    return absl::InvalidArgumentError("wds_epoch_samples smaller than one batch with drop_last");
  }
  return loader;
}

void Loader::StopFeeder() {
  if (!feeder_.joinable()) return;
  {
    // Under the lock Publish waits with, so the feeder cannot miss the wake-up between testing
    // the flag and starting to wait.
    std::lock_guard<std::mutex> lock(mu_);
    feeder_cancel_ = true;
  }
  work_cv_.notify_all();
  feeder_.join();
  std::lock_guard<std::mutex> lock(mu_);
  feeder_cancel_ = false;
}

bool Loader::Publish(uint64_t gen, int64_t start_batch, int64_t b, std::vector<FetchResult> batch,
                     std::map<std::string, int64_t>* skipped) {
  std::unique_lock<std::mutex> lock(mu_);
  for (const auto& [k, v] : *skipped) counters_.skipped[k] += v;
  skipped->clear();
  if (b < start_batch) return !feeder_cancel_;  // replaying up to a restored position: no decode
  // Bounded: cut batches wait until the consumer is within reach.
  work_cv_.wait(lock, [&] { return feeder_cancel_ || b < next_consume_ + 2 * opts_.prefetch_batches; });
  if (feeder_cancel_ || gen != generation_) return false;
  raw_[b] = std::move(batch);
  lock.unlock();
  work_cv_.notify_all();
  ready_cv_.notify_all();
  return true;
}

void Loader::FeederLoop(std::shared_ptr<Plan> plan, uint64_t gen, int64_t start_batch) {
  const int64_t n_shards = stream_->shards().size();
  std::vector<int64_t> order(n_shards);
  std::iota(order.begin(), order.end(), 0);
  if (opts_.shuffle) order = Permutation(n_shards, opts_.seed, plan->epoch);
  std::vector<std::string> mine;
  for (int64_t i = opts_.rank; i < n_shards; i += opts_.world_size) mine.push_back(stream_->shards()[order[i]]);

  Rng rng(SeedFrom({opts_.seed, static_cast<uint64_t>(plan->epoch), static_cast<uint64_t>(opts_.rank), 0x425546ull}));
  const size_t buffer_size = opts_.shuffle ? static_cast<size_t>(spec_.wds_shuffle_buffer) : 0;
  const int64_t limit = spec_.wds_epoch_samples;
  std::vector<FetchResult> buffer, batch;
  std::map<std::string, int64_t> skipped;
  int64_t b = 0, emitted = 0;
  bool open = true;  // false once the consumer no longer wants more
  auto out = [&](FetchResult r) {
    batch.push_back(std::move(r));
    ++emitted;
    if (static_cast<int64_t>(batch.size()) == plan->batch_size) {
      open = Publish(gen, start_batch, b++, std::move(batch), &skipped);
      batch.clear();
    }
    return open && (limit == 0 || emitted < limit);
  };
  auto emit = [&](FetchResult r) {
    if (buffer_size <= 1) return out(std::move(r));
    if (buffer.size() < buffer_size) {
      buffer.push_back(std::move(r));
      return true;
    }
    std::swap(buffer[rng.Below(buffer.size())], r);
    return out(std::move(r));
  };
  // With a fixed epoch length a rank cycles through its shards until it has enough.
  for (int pass = 0; open && !feeder_cancel_; ++pass) {
    const int64_t before = emitted + static_cast<int64_t>(buffer.size());
    stream_->ReadShards(mine, emit, &skipped, feeder_cancel_);
    const bool more = limit > 0 && emitted < limit && emitted + static_cast<int64_t>(buffer.size()) > before;
    if (!more || emitted + static_cast<int64_t>(buffer.size()) >= limit) break;
  }
  while (open && !buffer.empty() && !feeder_cancel_ && (limit == 0 || emitted < limit)) {
    const size_t j = rng.Below(buffer.size());
    FetchResult r = std::move(buffer[j]);
    buffer[j] = std::move(buffer.back());
    buffer.pop_back();
    out(std::move(r));  // `open` follows the consumer; the loop stops at the limit by itself
  }
  if (open && !feeder_cancel_ && !batch.empty() && !opts_.drop_last) {
    open = Publish(gen, start_batch, b++, std::move(batch), &skipped);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [k, v] : skipped) counters_.skipped[k] += v;
  if (gen == generation_ && !feeder_cancel_) {
    stream_total_ = b;
    ready_cv_.notify_all();
  }
}

}  // namespace cf::data
