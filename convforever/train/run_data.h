// The data side of a training run: the training and evaluation loaders that the flags describe.
//
// From TrainerOptions: the dataset spec of each side (the data kind, its location and defaults:
// Fashion-MNIST's Debian path, synthetic data's sizes, a wds epoch length), the held-out set
// evaluation reads (eval_data.h: --eval_data_dir, --eval_fraction by key hash, or the data's own
// test split, else an error), the loader options (augmentation, MixUp/CutMix, progressive stages
// for training; resize + center crop for evaluation; a stop signal wakes a loader waiting on
// data), this rank's shard of each (evaluation unpadded: each sample on exactly one rank), and the
// class names (--class_list, else the ones the data defines). Logs which eval set is used and its
// size. Errors name the flag or the file.
#ifndef CONVFOREVER_TRAIN_RUN_DATA_H_
#define CONVFOREVER_TRAIN_RUN_DATA_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/data/loader.h"
#include "convforever/train/trainer.h"

namespace cf::train {

struct RunData {
  std::unique_ptr<data::Loader> train;
  std::unique_ptr<data::Loader> eval;
  std::vector<std::string> class_names;  // empty when neither a class list nor the data names them
};

// The pieces BuildRunData builds the loaders from (the preflight builds them one at a time):
// one split's dataset spec (the kind's default location, synthetic sizes, wds counts; the
// held-out choice is applied afterwards by ChooseEvalData) and its loader options (augmentation,
// mixing and progressive stages for training; resize + center crop for evaluation). The loader
// options leave rank and world size at one rank; an unparsable --randaugment or
// --progressive_resize is an error naming the flag.
data::DatasetSpec MakeDatasetSpec(const TrainerOptions& options, bool train);
absl::StatusOr<data::LoaderOptions> MakeLoaderOptions(const TrainerOptions& options, bool train);

absl::StatusOr<RunData> BuildRunData(const TrainerOptions& options, int rank, int world_size);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_RUN_DATA_H_
