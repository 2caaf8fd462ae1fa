// The batch-building half of Loader: fetch, decode, augment, assemble, mix (see loader.h).
#include <algorithm>
#include <exception>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/decode.h"
#include "convforever/data/image_ops.h"
#include "convforever/data/loader.h"
#include "convforever/data/rng.h"
#include "convforever/data/transforms.h"

namespace cf::data {
namespace {

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

Loader::Produced Loader::Produce(int64_t b, const Plan& plan, std::vector<FetchResult>* records) const {
  Produced p;
  try {
    p.batch = ProduceOrThrow(b, plan, records, &p.skipped);
  } catch (const std::exception& e) {  // c10::Error included
    p.batch = absl::InternalError(absl::StrCat("building batch ", b, " of epoch ", plan.epoch, ": ", e.what()));
  }
  return p;
}

absl::StatusOr<Image> Loader::PrepareImage(Record& r, const Plan& plan, uint64_t id) const {
  const int size = static_cast<int>(plan.image_size);
  Rng rng(SeedFrom({opts_.seed, static_cast<uint64_t>(plan.epoch), id, 0x415547ull}));
  Image img;
  if (!r.encoded.empty()) {
    const int min_side = DecodeMinSide(opts_.transforms, size, opts_.train);
    if (opts_.train) {
      // A RandomResizedCrop needs only its box: draw it from the header's size and decode just that
      // (the same pixels and draws as decoding the whole image and cropping it).
      ASSIGN_OR_RETURN(const ImageSize decoded, DecodedImageSize(r.encoded, min_side, r.key));
      if (TrainCropMode(decoded.h, decoded.w, opts_.transforms) == "rrc") {
        const CropBox b = SampleRandomResizedCrop(decoded.h, decoded.w, opts_.transforms, rng);
        ASSIGN_OR_RETURN(const ImageBand band,
                         DecodeImageBand(r.encoded, channels_, min_side, b.y, b.x, b.h, b.w, r.key));
        return TrainTransformOfBox(band.image, CropBox{band.y, band.x, b.h, b.w}, size, opts_.transforms, rng);
      }
    }
    ASSIGN_OR_RETURN(img, DecodeImage(r.encoded, channels_, min_side, r.key));
  } else {
    img = ToChannels(r.image, channels_);
  }
  if (!opts_.train) return EvalTransform(img, size, opts_.transforms);
  return TrainTransform(img, size, opts_.transforms, rng);
}

absl::StatusOr<at::Tensor> Loader::MakeTargets(int64_t b, const Plan& plan, const std::vector<int64_t>& labels,
                                               const std::vector<std::vector<float>>& soft,
                                               at::Tensor& images) const {
  const int64_t K = num_classes();
  const at::Tensor hard = at::tensor(labels, at::kLong);
  if (std::any_of(soft.begin(), soft.end(), [](const auto& s) { return !s.empty(); })) {
    at::Tensor t = at::zeros({static_cast<int64_t>(soft.size()), K}, at::kFloat);
    for (size_t i = 0; i < soft.size(); ++i) {
      if (!soft[i].empty()) {
        std::copy(soft[i].begin(), soft[i].end(), t[i].data_ptr<float>());
      } else {
        t[i][labels[i]] = 1.0f;
      }
    }
    return t;
  }
  if (!opts_.train || !(opts_.mix.enabled() || opts_.mix.label_smoothing > 0)) return hard;
  Rng rng(SeedFrom({opts_.seed, static_cast<uint64_t>(plan.epoch), static_cast<uint64_t>(opts_.rank),
                    static_cast<uint64_t>(b), 0x4D4958ull}));
  const MixDecision d = DrawMix(opts_.mix, images.size(2), images.size(3), rng);
  return ApplyMix(d, images, hard, K, opts_.mix.label_smoothing);
}

absl::StatusOr<std::optional<Batch>> Loader::ProduceOrThrow(int64_t b, const Plan& plan,
                                                            std::vector<FetchResult>* records,
                                                            std::map<std::string, int64_t>* skipped) const {
  std::vector<int64_t> ids;
  std::vector<FetchResult> fetched;
  if (records != nullptr) {
    fetched = std::move(*records);
  } else {
    const int64_t begin = b * plan.batch_size;
    const int64_t end = std::min<int64_t>(begin + plan.batch_size, plan.order.size());
    for (int64_t k = begin; k < end; ++k) ids.push_back(SourceIndex(plan.order[k]));
    fetched = source_->Fetch(ids);
  }
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
    if (!r.soft_label.empty() && static_cast<int>(r.soft_label.size()) != num_classes()) {
      ++(*skipped)["bad_soft_label"];
      continue;
    }
    // Streams have no index: their samples are named by key.
    const uint64_t id = records != nullptr ? Fnv1a(r.key) : static_cast<uint64_t>(ids[k]);
    auto img = PrepareImage(r, plan, id);
    if (!img.ok()) {
      ++(*skipped)["decode_failed"];
      continue;
    }
    images.push_back(std::move(*img));
    labels.push_back(r.label);
    soft.push_back(std::move(r.soft_label));
    batch.keys.push_back(std::move(r.key));
  }
  if (images.empty()) return std::optional<Batch>();
  ASSIGN_OR_RETURN(batch.images,
                   AssembleImages(images, mean_, std_, opts_.transforms.channels_last,
                                  RecycledBuffer(images.size(), channels_, images[0].h, images[0].w)));
  ASSIGN_OR_RETURN(batch.targets, MakeTargets(b, plan, labels, soft, batch.images));
#ifdef CF_WITH_CUDA
  if (opts_.pin_memory && at::hasCUDA()) batch.images = batch.images.pin_memory();
#endif
  batch.epoch = plan.epoch;
  batch.index_in_epoch = b;
  return std::optional<Batch>(std::move(batch));
}

at::Tensor Loader::RecycledBuffer(int64_t b, int64_t c, int64_t h, int64_t w) const {
  const auto fmt = opts_.transforms.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  std::lock_guard<std::mutex> lock(pool_mu_);
  for (const at::Tensor& t : pool_) {
    // Free when only the pool refers to it: no Batch, copy or view of it is alive.
    if (t.use_count() == 1 && t.storage().use_count() == 1 && t.sizes() == at::IntArrayRef({b, c, h, w})) return t;
  }
  at::Tensor t = at::empty({b, c, h, w}, at::TensorOptions().dtype(at::kFloat), fmt);
  const size_t cap = static_cast<size_t>(opts_.prefetch_batches + opts_.num_workers + 2);
  if (pool_.size() >= cap) {
    // Drop one buffer that is free (e.g. of an old image size) to make room, else do not pool.
    for (size_t i = 0; i < pool_.size(); ++i) {
      if (pool_[i].use_count() == 1 && pool_[i].storage().use_count() == 1) {
        pool_[i] = t;
        return t;
      }
    }
    return t;
  }
  pool_.push_back(t);
  return t;
}

}  // namespace cf::data
