#include "convforever/data/loader.h"

#include <algorithm>
#include <exception>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/caching_source.h"
#include "convforever/data/decode.h"
#include "convforever/data/holdout_select.h"
#include "convforever/data/image_ops.h"
#include "convforever/data/rng.h"
#include "convforever/data/sharding.h"

namespace cf::data {

absl::Status ValidateLoaderOptions(const LoaderOptions& o) {
  RETURN_IF_ERROR(ValidateTransformOptions(o.transforms));
  if (o.batch_size <= 0) return absl::InvalidArgumentError(absl::StrCat("batch_size must be > 0, got ", o.batch_size));
  if (o.num_workers < 0 || o.prefetch_batches < 1) {
    return absl::InvalidArgumentError("num_workers must be >= 0 and prefetch_batches >= 1");
  }
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("bad rank ", o.rank, " for world_size ", o.world_size));
  }
  if (o.channels != 0 && o.channels != 1 && o.channels != 3) {
    return absl::InvalidArgumentError(absl::StrCat("channels must be 1 or 3 (or 0 = source's), got ", o.channels));
  }
  if (o.image_size < 0) return absl::InvalidArgumentError("image_size must be >= 0");
  const MixOptions& m = o.mix;
  if (m.mixup_alpha < 0 || m.cutmix_alpha < 0 || m.prob < 0 || m.prob > 1 || m.switch_prob < 0 ||
      m.switch_prob > 1 || m.label_smoothing < 0 || m.label_smoothing >= 1) {
    return absl::InvalidArgumentError("mix options out of range (alphas >= 0, probabilities and smoothing in [0, 1))");
  }
  int64_t last = -1;
  for (const auto& s : o.progressive) {
    if (s.from_epoch <= last || s.image_size <= 0 || s.batch_size < 0) {
      return absl::InvalidArgumentError("progressive stages need increasing from_epoch, image_size > 0, batch_size >= 0");
    }
    last = s.from_epoch;
  }
  return absl::OkStatus();
}

std::string LoaderState::ToJson() const {
  nlohmann::json j = {{"epoch", epoch},           {"batches_consumed", batches_consumed},
                      {"seed", seed},             {"rank", rank},
                      {"world_size", world_size}, {"num_samples", num_samples},
                      {"batch_size", batch_size}};
  return j.dump();
}

absl::StatusOr<LoaderState> LoaderState::FromJson(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("loader state is not a JSON object: " + text);
  LoaderState s;
  try {
    s.epoch = j.at("epoch").get<int64_t>();
    s.batches_consumed = j.at("batches_consumed").get<int64_t>();
    s.seed = j.at("seed").get<uint64_t>();
    s.rank = j.at("rank").get<int>();
    s.world_size = j.at("world_size").get<int>();
    s.num_samples = j.at("num_samples").get<int64_t>();
    s.batch_size = j.at("batch_size").get<int64_t>();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("loader state ", text, ": ", e.what()));
  }
  return s;
}

absl::StatusOr<std::unique_ptr<Loader>> Loader::Create(const DatasetSpec& spec, const LoaderOptions& options) {
  if (spec.kind == "wds") return CreateStream(spec, options);
  ASSIGN_OR_RETURN(std::unique_ptr<Source> source, OpenSource(spec));
  ASSIGN_OR_RETURN(std::vector<int64_t> keep, SelectHoldoutPart(*source, spec));
  if (options.cache_bytes > 0) source = std::make_unique<CachingSource>(std::move(source), options.cache_bytes);
  return CreateOver(std::move(source), std::move(keep), spec.subset, options);
}

absl::StatusOr<std::unique_ptr<Loader>> Loader::Create(std::unique_ptr<Source> source, int64_t subset,
                                                       const LoaderOptions& options) {
  return CreateOver(std::move(source), {}, subset, options);
}

absl::StatusOr<std::unique_ptr<Loader>> Loader::CreateOver(std::unique_ptr<Source> source, std::vector<int64_t> keep,
                                                           int64_t subset, const LoaderOptions& options) {
  RETURN_IF_ERROR(ValidateLoaderOptions(options));
  const int64_t n = keep.empty() ? source->size() : static_cast<int64_t>(keep.size());
  if (n <= 0) return absl::InvalidArgumentError("dataset is empty");
  std::vector<int64_t> subset_map = std::move(keep);
  if (subset > 0 && subset < n) {
    // Evenly strided so every class of a sorted folder is represented.
    std::vector<int64_t> strided;
    for (int64_t i = 0; i < subset; ++i) {
      strided.push_back(subset_map.empty() ? i * n / subset : subset_map[i * n / subset]);
    }
    subset_map = std::move(strided);
  }
  LoaderOptions o = options;
  if (o.image_size == 0 || o.channels == 0) {
    // Learn the native size/channels from the first sample.
    auto first = source->Fetch({subset_map.empty() ? 0 : subset_map[0]});
    if (!first[0].record.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "could not read the first sample to learn the native image size/channels (set image_size and "
          "channels to skip this): ", first[0].record.status().message()));
    }
    Record& r = *first[0].record;
    if (!r.encoded.empty()) {
      if (o.image_size == 0) return absl::InvalidArgumentError("image_size must be set for encoded-image datasets");
      if (o.channels == 0) o.channels = 3;
    } else {
      if (o.image_size == 0) o.image_size = std::max(r.image.h, r.image.w);
      if (o.channels == 0) o.channels = r.image.c;
    }
  }
  std::unique_ptr<Loader> loader(new Loader(std::move(source), nullptr, std::move(subset_map), o, DatasetSpec()));
  const auto plan = loader->MakePlan(0);
  if (plan->num_batches == 0 && o.drop_last) {  // unpadded eval shards may leave a rank none
    return absl::InvalidArgumentError(absl::StrCat("no batches: ", loader->num_samples(), " samples over ",
                                                   o.world_size, " rank(s) with batch size ", plan->batch_size,
                                                   " and drop_last"));
  }
  return loader;
}

Loader::Loader(std::unique_ptr<Source> source, std::unique_ptr<WdsSource> stream, std::vector<int64_t> subset_map,
               const LoaderOptions& o, const DatasetSpec& spec)
    : source_(std::move(source)),
      stream_(std::move(stream)),
      spec_(spec),
      subset_map_(std::move(subset_map)),
      opts_(o),
      channels_(o.channels) {
  ResolveNormalization(o.transforms, channels_, &mean_, &std_);
  if (source_) counters_.excluded = source_->excluded();
  for (int i = 0; i < o.num_workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

Loader::~Loader() {
  StopFeeder();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

std::shared_ptr<Loader::Plan> Loader::MakePlan(int64_t epoch) const {
  auto plan = std::make_shared<Plan>();
  plan->epoch = epoch;
  plan->image_size = opts_.image_size;
  plan->batch_size = opts_.batch_size;
  for (const auto& s : opts_.progressive) {
    if (s.from_epoch > epoch) break;
    plan->image_size = s.image_size;
    if (s.batch_size > 0) plan->batch_size = s.batch_size;
  }
  if (stream_) {
    const int64_t n = spec_.wds_epoch_samples;
    plan->num_batches = n > 0 ? BatchesFor(n, plan->batch_size, opts_.drop_last) : -1;
    return plan;
  }
  ShardSpec shard{opts_.seed, opts_.shuffle, opts_.drop_last, opts_.rank, opts_.world_size, opts_.pad_shards};
  plan->order = ShardEpochIndices(num_samples(), epoch, shard);
  plan->num_batches = BatchesFor(plan->order.size(), plan->batch_size, opts_.drop_last);
  return plan;
}

absl::Status Loader::StartEpoch(int64_t epoch) { return Begin(epoch, 0); }

absl::Status Loader::Begin(int64_t epoch, int64_t start_batch) {
  if (epoch < 0) return absl::InvalidArgumentError(absl::StrCat("epoch must be >= 0, got ", epoch));
  StopFeeder();
  auto plan = MakePlan(epoch);
  if (start_batch < 0 || (plan->num_batches >= 0 && start_batch > plan->num_batches)) {
    return absl::OutOfRangeError(absl::StrCat("batch ", start_batch, " is outside epoch ", epoch, " (",
                                              plan->num_batches, " batches)"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;  // batches still being built for an older plan are dropped when they land
    ready_.clear();
    raw_.clear();
    stream_total_ = -1;
    plan_ = plan;
    next_dispatch_ = next_consume_ = start_batch;
    if (!started_) started_ = std::chrono::steady_clock::now();
    if (stream_) feeder_ = std::thread(&Loader::FeederLoop, this, plan, generation_, start_batch);
  }
  work_cv_.notify_all();
  return absl::OkStatus();
}

void Loader::WorkerLoop() {
  for (;;) {
    std::shared_ptr<Plan> plan;
    std::vector<FetchResult> records;
    int64_t b = 0;
    uint64_t gen = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] {
        if (stop_) return true;
        if (!plan_ || next_dispatch_ >= next_consume_ + opts_.prefetch_batches) return false;
        return stream_ ? raw_.count(next_dispatch_) > 0 : next_dispatch_ < plan_->num_batches;
      });
      if (stop_) return;
      plan = plan_;
      b = next_dispatch_++;
      gen = generation_;
      if (stream_) {
        records = std::move(raw_[b]);
        raw_.erase(b);
      }
    }
    Produced p = Produce(b, *plan, stream_ ? &records : nullptr);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (gen != generation_) continue;
      ready_.emplace(b, std::move(p));
    }
    ready_cv_.notify_all();
  }
}

absl::StatusOr<std::optional<Batch>> Loader::Next() {
  for (;;) {
    Produced p;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!plan_) return absl::FailedPreconditionError("call StartEpoch (or Restore) before Next");
      const int64_t b = next_consume_;
      auto at_end = [&] {
        return (plan_->num_batches >= 0 && b >= plan_->num_batches) || (stream_total_ >= 0 && b >= stream_total_);
      };
      // Waits for `ready`; false when a stop was requested first (see LoaderOptions::should_stop).
      auto wait = [&](const auto& ready) {
        if (!opts_.should_stop) {
          ready_cv_.wait(lock, ready);
          return true;
        }
        while (!ready()) {
          if (opts_.should_stop()) {
            feeder_cancel_ = true;  // under mu_, which Publish waits with
            work_cv_.notify_all();
            return false;
          }
          ready_cv_.wait_for(lock, std::chrono::milliseconds(50));
        }
        return true;
      };
      const auto stopped = [&] {
        return absl::CancelledError(absl::StrCat("stop requested while waiting for batch ", b, " of epoch ",
                                                 plan_->epoch));
      };
      if (workers_.empty()) {
        std::vector<FetchResult> records;
        if (stream_) {
          if (!wait([&] { return raw_.count(b) > 0 || at_end(); })) return stopped();
          if (raw_.count(b) == 0) return std::optional<Batch>();
          records = std::move(raw_[b]);
          raw_.erase(b);
        } else if (at_end()) {
          return std::optional<Batch>();
        }
        lock.unlock();
        p = Produce(b, *plan_, stream_ ? &records : nullptr);
        lock.lock();
      } else {
        if (!wait([&] { return ready_.count(b) > 0 || at_end(); })) return stopped();
        if (ready_.count(b) == 0) return std::optional<Batch>();
        p = std::move(ready_[b]);
        ready_.erase(b);
      }
      ++next_consume_;
      for (const auto& [k, v] : p.skipped) counters_.skipped[k] += v;
    }
    work_cv_.notify_all();
    if (!p.batch.ok()) return p.batch.status();
    if (!p.batch->has_value()) {  // every sample of this batch failed: counted, and skipped ...
      if (!opts_.yield_empty_batches) continue;
      Batch empty;  // ... or handed on empty, so the consumer still sees the epoch's batch count
      std::lock_guard<std::mutex> lock(mu_);
      empty.images = at::empty({0, channels_, plan_->image_size, plan_->image_size});
      empty.targets = at::empty({0}, at::kLong);
      empty.epoch = plan_->epoch;
      empty.index_in_epoch = next_consume_ - 1;
      return std::optional<Batch>(std::move(empty));
    }
    std::lock_guard<std::mutex> lock(mu_);
    counters_.images += (*p.batch)->images.size(0);
    ++counters_.batches;
    return std::move(p.batch);
  }
}

int64_t Loader::batches_per_epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return plan_ ? plan_->num_batches : MakePlan(0)->num_batches;
}

int64_t Loader::batches_in_epoch(int64_t epoch) const {
  int64_t batch_size = opts_.batch_size;  // the stage's, as MakePlan picks it
  for (const auto& s : opts_.progressive) {
    if (s.from_epoch > epoch) break;
    if (s.batch_size > 0) batch_size = s.batch_size;
  }
  if (stream_) {
    const int64_t n = spec_.wds_epoch_samples;
    return n > 0 ? BatchesFor(n, batch_size, opts_.drop_last) : -1;
  }
  ShardSpec shard{opts_.seed, opts_.shuffle, opts_.drop_last, opts_.rank, opts_.world_size};
  return BatchesFor(SamplesPerRank(num_samples(), shard), batch_size, opts_.drop_last);
}

int64_t Loader::num_samples() const {
  if (stream_) {
    if (!opts_.train) return stream_eval_samples_;
    return spec_.wds_epoch_samples > 0 ? spec_.wds_epoch_samples * opts_.world_size : -1;
  }
  return subset_map_.empty() ? source_->size() : static_cast<int64_t>(subset_map_.size());
}

std::vector<std::string> Loader::class_names() const {
  return stream_ ? std::vector<std::string>{} : source_->class_names();
}

int Loader::num_classes() const { return stream_ ? stream_->num_classes() : source_->num_classes(); }

int64_t Loader::image_size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return plan_ ? plan_->image_size : MakePlan(0)->image_size;
}

LoaderState Loader::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  LoaderState s;
  s.epoch = plan_ ? plan_->epoch : 0;
  s.batches_consumed = plan_ ? next_consume_ : 0;
  s.seed = opts_.seed;
  s.rank = opts_.rank;
  s.world_size = opts_.world_size;
  s.num_samples = num_samples();
  s.batch_size = opts_.batch_size;
  return s;
}

absl::Status Loader::Restore(const LoaderState& s) {
  if (s.seed != opts_.seed || s.rank != opts_.rank || s.world_size != opts_.world_size ||
      s.num_samples != num_samples() || s.batch_size != opts_.batch_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "loader state is from another run: seed/rank/world_size/num_samples/batch_size ", s.seed, "/", s.rank,
        "/", s.world_size, "/", s.num_samples, "/", s.batch_size, " vs this loader's ", opts_.seed, "/",
        opts_.rank, "/", opts_.world_size, "/", num_samples(), "/", opts_.batch_size));
  }
  return Begin(s.epoch, s.batches_consumed);
}

Counters Loader::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  Counters c = counters_;
  if (started_) {
    c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - *started_).count();
    c.images_per_sec = c.seconds > 0 ? c.images / c.seconds : 0;
  }
  return c;
}

}  // namespace cf::data
