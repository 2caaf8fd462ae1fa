#include "convforever/train/run_data.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convforever/base/signals.h"
#include "convforever/base/status_macros.h"
#include "convforever/train/eval_data.h"
#include "glog/logging.h"

namespace cf::train {
namespace {

absl::StatusOr<std::vector<data::ProgressiveStage>> ParseProgressive(const std::string& text) {
  std::vector<data::ProgressiveStage> stages;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    data::ProgressiveStage stage;
    if (parts.size() < 2 || parts.size() > 3 || !absl::SimpleAtoi(parts[0], &stage.from_epoch) ||
        !absl::SimpleAtoi(parts[1], &stage.image_size) ||
        (parts.size() == 3 && !absl::SimpleAtoi(parts[2], &stage.batch_size)) ||
        stage.image_size <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--progressive_resize: bad stage '", item, "' (want epoch:size[:batch], e.g. 0:64,10:128)"));
    }
    stages.push_back(stage);
  }
  return stages;
}

}  // namespace

data::DatasetSpec MakeDatasetSpec(const TrainerOptions& o, bool train) {
  data::DatasetSpec spec;
  spec.kind = o.data;
  spec.path = o.data_dir;
  if (o.data == "fashion_mnist" && spec.path.empty()) spec.path = data::kFashionMnistDir;
  if (!train && !o.eval_data_dir.empty()) spec.path = o.eval_data_dir;
  spec.split = train ? "train" : "test";
  spec.subset = train ? o.subset : 0;
  spec.class_list_path = o.class_list;
  if (train) spec.wds_epoch_samples = o.wds_epoch_samples;
  if (train) spec.wds_train_samples = o.train_samples;
  spec.synthetic_samples = train ? o.synthetic_samples : std::max<int64_t>(o.synthetic_samples / 4, 64);
  spec.synthetic_classes = static_cast<int>(o.synthetic_classes);
  spec.synthetic_size = static_cast<int>(o.image_size);
  spec.synthetic_channels = o.channels > 0 ? o.channels : 3;
  spec.synthetic_seed = train ? o.seed : o.seed + 1;  // the eval set is different data
  return spec;
}

absl::StatusOr<data::LoaderOptions> MakeLoaderOptions(const TrainerOptions& o, bool train) {
  data::LoaderOptions l;
  l.batch_size = o.micro_batch_size;
  l.num_workers = o.num_workers;
  l.prefetch_batches = o.prefetch_batches;
  l.seed = o.seed;
  l.shuffle = train;
  l.drop_last = train;  // every eval sample counts exactly once:
  l.pad_shards = train;  // on exactly one rank
  if (!train) l.cache_bytes = EvalCacheBytes(o);
  l.train = train;
  l.image_size = o.image_size;
  l.channels = o.channels;
  l.should_stop = base::StopRequested;  // a blocked Next() (stalled download) wakes on SIGINT/SIGTERM
  data::TransformOptions& t = l.transforms;
  t.train_crop = o.random_resized_crop ? "rrc" : (o.random_crop_padding > 0 ? "pad_crop" : "none");
  t.pad = static_cast<int>(o.random_crop_padding);
  t.hflip = o.hflip ? 0.5 : 0.0;
  t.color_jitter = o.color_jitter;
  t.random_erasing = o.random_erasing;
  t.crop_pct = o.crop_pct;
  t.channels_last = o.channels_last;
  if (!o.randaugment.empty()) {
    std::vector<absl::string_view> nm = absl::StrSplit(o.randaugment, '/');
    if (nm.size() != 2 || !absl::SimpleAtoi(nm[0], &t.randaugment_n) ||
        !absl::SimpleAtoi(nm[1], &t.randaugment_m)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--randaugment: want \"n/m\" like \"2/9\", got '", o.randaugment, "'"));
    }
  }
  if (train) {
    l.mix.mixup_alpha = o.mixup;
    l.mix.cutmix_alpha = o.cutmix;
    l.mix.prob = o.mixup_prob;
    l.mix.switch_prob = o.mixup_switch_prob;
    // Without mixing, keep hard labels: the loss applies smoothing more cheaply than [B, K] targets.
    if (l.mix.enabled()) l.mix.label_smoothing = o.label_smoothing;
    ASSIGN_OR_RETURN(l.progressive, ParseProgressive(o.progressive_resize));
    l.yield_empty_batches = true;  // ranks keep the same step count (empty_step.h)
  }
  return l;
}

absl::StatusOr<RunData> BuildRunData(const TrainerOptions& options, int rank, int world_size) {
  RunData d;
  if (!options.class_list.empty()) {
    ASSIGN_OR_RETURN(d.class_names, data::ReadClassList(options.class_list));
  }
  data::DatasetSpec train_spec = MakeDatasetSpec(options, true), eval_spec = MakeDatasetSpec(options, false);
  ASSIGN_OR_RETURN(const std::string eval_what, ChooseEvalData(options, &train_spec, &eval_spec));
  ASSIGN_OR_RETURN(data::LoaderOptions train_opts, MakeLoaderOptions(options, /*train=*/true));
  train_opts.rank = rank;
  train_opts.world_size = world_size;
  // Several ranks stop together at a step all of them agree on (RunSetup::AnyRank); a loader that
  // gave up on its own at a signal would leave this rank out of that step's checkpoint.
  if (world_size > 1) train_opts.should_stop = nullptr;
  ASSIGN_OR_RETURN(d.train, data::Loader::Create(train_spec, train_opts));
  ASSIGN_OR_RETURN(data::LoaderOptions eval_opts, MakeLoaderOptions(options, /*train=*/false));
  eval_opts.channels = d.train->channels();
  eval_opts.rank = rank;  // each rank evaluates its part; the evaluation sums the counts
  eval_opts.world_size = world_size;
  if (world_size > 1) eval_opts.should_stop = nullptr;
  ASSIGN_OR_RETURN(d.eval, data::Loader::Create(eval_spec, eval_opts));
  RETURN_IF_ERROR(CheckSameClasses(*d.train, *d.eval, eval_what));
  const int64_t eval_n = d.eval->num_samples();
  LOG(INFO) << "eval: " << eval_what << ", "
            << (eval_n >= 0 ? absl::StrCat(eval_n, " samples") : std::string("size known after a pass (streamed)"));
  // Without --class_list, the names the data defines (for config.json's id2label, model cards).
  if (d.class_names.empty() && d.train->class_names().size() == size_t(d.train->num_classes())) {
    d.class_names = d.train->class_names();
  }
  return d;
}

}  // namespace cf::train
