#include "convforever/data/loader.h"

#include <algorithm>
#include <exception>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/decode.h"
#include "convforever/data/image_ops.h"
#include "convforever/data/rng.h"
#include "convforever/data/sharding.h"

namespace cf::data {
namespace {

absl::Status ValidateOptions(const LoaderOptions& o) {
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

}  // namespace

std::string LoaderState::ToJson() const {
  nlohmann::json j = {{"epoch", epoch},           {"batches_consumed", batches_consumed},
                      {"seed", seed},             {"rank", rank},
                      {"world_size", world_size}, {"num_samples", num_samples}};
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
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("loader state ", text, ": ", e.what()));
  }
  return s;
}

absl::StatusOr<std::unique_ptr<Loader>> Loader::Create(const DatasetSpec& spec, const LoaderOptions& options) {
  ASSIGN_OR_RETURN(auto source, OpenSource(spec));
  return Create(std::move(source), spec.subset, options);
}

absl::StatusOr<std::unique_ptr<Loader>> Loader::Create(std::unique_ptr<Source> source, int64_t subset,
                                                       const LoaderOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  const int64_t n = source->size();
  if (n <= 0) return absl::InvalidArgumentError("dataset is empty");
  std::vector<int64_t> subset_map;
  if (subset > 0 && subset < n) {
    // Evenly strided so every class of a sorted folder is represented.
    for (int64_t i = 0; i < subset; ++i) subset_map.push_back(i * n / subset);
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
  std::unique_ptr<Loader> loader(new Loader(std::move(source), std::move(subset_map), o));
  const auto plan = loader->MakePlan(0);
  if (plan->num_batches == 0) {
    return absl::InvalidArgumentError(absl::StrCat("no batches: ", loader->num_samples(), " samples over ",
                                                   o.world_size, " rank(s) with batch size ", plan->batch_size,
                                                   " and drop_last"));
  }
  return loader;
}

Loader::Loader(std::unique_ptr<Source> source, std::vector<int64_t> subset_map, const LoaderOptions& o)
    : source_(std::move(source)), subset_map_(std::move(subset_map)), opts_(o), channels_(o.channels) {
  ResolveNormalization(o.transforms, channels_, &mean_, &std_);
  counters_.excluded = source_->excluded();
  for (int i = 0; i < o.num_workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

Loader::~Loader() {
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
  ShardSpec shard{opts_.seed, opts_.shuffle, opts_.drop_last, opts_.rank, opts_.world_size};
  plan->order = ShardEpochIndices(num_samples(), epoch, shard);
  plan->num_batches = BatchesFor(plan->order.size(), plan->batch_size, opts_.drop_last);
  return plan;
}

absl::Status Loader::StartEpoch(int64_t epoch) { return Begin(epoch, 0); }

absl::Status Loader::Begin(int64_t epoch, int64_t start_batch) {
  if (epoch < 0) return absl::InvalidArgumentError(absl::StrCat("epoch must be >= 0, got ", epoch));
  auto plan = MakePlan(epoch);
  if (start_batch < 0 || start_batch > plan->num_batches) {
    return absl::OutOfRangeError(absl::StrCat("batch ", start_batch, " is outside epoch ", epoch, " (",
                                              plan->num_batches, " batches)"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;  // batches still being built for an older plan are dropped when they land
    ready_.clear();
    plan_ = std::move(plan);
    next_dispatch_ = next_consume_ = start_batch;
    if (!started_) started_ = std::chrono::steady_clock::now();
  }
  work_cv_.notify_all();
  return absl::OkStatus();
}

void Loader::WorkerLoop() {
  for (;;) {
    std::shared_ptr<Plan> plan;
    int64_t b = 0;
    uint64_t gen = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] {
        return stop_ || (plan_ && next_dispatch_ < plan_->num_batches &&
                         next_dispatch_ < next_consume_ + opts_.prefetch_batches);
      });
      if (stop_) return;
      plan = plan_;
      b = next_dispatch_++;
      gen = generation_;
    }
    Produced p = Produce(b, *plan);
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
      if (next_consume_ >= plan_->num_batches) return std::optional<Batch>();
      const int64_t b = next_consume_;
      if (workers_.empty()) {
        lock.unlock();
        p = Produce(b, *plan_);
        lock.lock();
      } else {
        ready_cv_.wait(lock, [&] { return ready_.count(b) > 0; });
        p = std::move(ready_[b]);
        ready_.erase(b);
      }
      ++next_consume_;
      for (const auto& [k, v] : p.skipped) counters_.skipped[k] += v;
    }
    work_cv_.notify_all();
    if (!p.batch.ok()) return p.batch.status();
    if (!p.batch->has_value()) continue;  // every sample of this batch failed: skipped and counted
    std::lock_guard<std::mutex> lock(mu_);
    counters_.images += (*p.batch)->images.size(0);
    ++counters_.batches;
    return std::move(p.batch);
  }
}

Loader::Produced Loader::Produce(int64_t b, const Plan& plan) const {
  Produced p;
  try {
    p.batch = ProduceOrThrow(b, plan, &p.skipped);
  } catch (const std::exception& e) {  // c10::Error included
    p.batch = absl::InternalError(absl::StrCat("building batch ", b, " of epoch ", plan.epoch, ": ", e.what()));
  }
  return p;
}

absl::StatusOr<std::optional<Batch>> Loader::ProduceOrThrow(int64_t b, const Plan& plan,
                                                            std::map<std::string, int64_t>* skipped) const {
  const int64_t begin = b * plan.batch_size;
  const int64_t end = std::min<int64_t>(begin + plan.batch_size, plan.order.size());
  std::vector<int64_t> ids;
  for (int64_t k = begin; k < end; ++k) ids.push_back(SourceIndex(plan.order[k]));
  std::vector<FetchResult> fetched = source_->Fetch(ids);
  const int size = static_cast<int>(plan.image_size);
  const int min_side = DecodeMinSide(opts_.transforms, size, opts_.train);
  std::vector<Image> images;
  std::vector<int64_t> labels;
  std::vector<std::vector<float>> soft;
  Batch batch;
  for (size_t k = 0; k < fetched.size(); ++k) {
    if (!fetched[k].record.ok()) {
      ++(*skipped)[fetched[k].skip_reason.empty() ? "fetch_failed" : fetched[k].skip_reason];
      continue;
    }
    Record& r = *fetched[k].record;
    Image img;
    if (!r.encoded.empty()) {
      auto decoded = DecodeImage(r.encoded, channels_, min_side, r.key);
      if (!decoded.ok()) {
        ++(*skipped)["decode_failed"];
        continue;
      }
      img = std::move(*decoded);
    } else {
      img = ToChannels(r.image, channels_);
    }
    if (opts_.train) {
      Rng rng(SeedFrom({opts_.seed, static_cast<uint64_t>(plan.epoch), static_cast<uint64_t>(ids[k]), 0x415547ull}));
      img = TrainTransform(img, size, opts_.transforms, rng);
    } else {
      img = EvalTransform(img, size, opts_.transforms);
    }
    images.push_back(std::move(img));
    labels.push_back(r.label);
    soft.push_back(std::move(r.soft_label));
    batch.keys.push_back(std::move(r.key));
  }
  if (images.empty()) return std::optional<Batch>();
  ASSIGN_OR_RETURN(batch.images, AssembleImages(images, mean_, std_, opts_.transforms.channels_last));
  const int64_t K = source_->num_classes();
  const bool has_soft = std::any_of(soft.begin(), soft.end(), [](const auto& s) { return !s.empty(); });
  at::Tensor hard = at::tensor(labels, at::kLong);
  if (has_soft) {
    at::Tensor t = at::zeros({static_cast<int64_t>(soft.size()), K}, at::kFloat);
    for (size_t i = 0; i < soft.size(); ++i) {
      if (!soft[i].empty()) {
        std::copy(soft[i].begin(), soft[i].end(), t[i].data_ptr<float>());
      } else {
        t[i][labels[i]] = 1.0f;
      }
    }
    batch.targets = t;
  } else if (opts_.train && (opts_.mix.enabled() || opts_.mix.label_smoothing > 0)) {
    Rng rng(SeedFrom({opts_.seed, static_cast<uint64_t>(plan.epoch), static_cast<uint64_t>(opts_.rank),
                      static_cast<uint64_t>(b), 0x4D4958ull}));
    const MixDecision d = DrawMix(opts_.mix, size, size, rng);
    ASSIGN_OR_RETURN(batch.targets, ApplyMix(d, batch.images, hard, K, opts_.mix.label_smoothing));
  } else {
    batch.targets = hard;
  }
#ifdef CF_WITH_CUDA
  if (opts_.pin_memory && at::hasCUDA()) batch.images = batch.images.pin_memory();
#endif
  batch.epoch = plan.epoch;
  batch.index_in_epoch = b;
  return std::optional<Batch>(std::move(batch));
}

int64_t Loader::batches_per_epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return plan_ ? plan_->num_batches : MakePlan(0)->num_batches;
}

int64_t Loader::num_samples() const {
  return subset_map_.empty() ? source_->size() : static_cast<int64_t>(subset_map_.size());
}

int Loader::num_classes() const { return source_->num_classes(); }

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
  return s;
}

absl::Status Loader::Restore(const LoaderState& s) {
  if (s.seed != opts_.seed || s.rank != opts_.rank || s.world_size != opts_.world_size ||
      s.num_samples != num_samples()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "loader state is from another run: seed/rank/world_size/num_samples ", s.seed, "/", s.rank, "/",
        s.world_size, "/", s.num_samples, " vs this loader's ", opts_.seed, "/", opts_.rank, "/",
        opts_.world_size, "/", num_samples()));
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
