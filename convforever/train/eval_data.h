// Which data a run evaluates on: never the training data.
//
// Three ways, checked at start: --eval_data_dir (a separate location of the same kind); or
// --eval_fraction F, a held-out fraction of --data_dir chosen by a hash of each sample's key
// (data/holdout.h: training reads the kTraining part, evaluation the kHeldOut part, never
// overlapping); or, with neither, the data's own test split (data/test_split.h). A kind without
// one (jsonl, wds, parquet, a flat image folder) and neither flag is an error naming the kind and
// both flags; so is --eval_fraction on data that ships a test split (its samples have no stable
// keys or the split already exists), and the two flags together.
#ifndef CONVFOREVER_TRAIN_EVAL_DATA_H_
#define CONVFOREVER_TRAIN_EVAL_DATA_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "convforever/data/loader.h"
#include "convforever/data/source.h"
#include "convforever/train/trainer.h"

namespace cf::train {

// Fills the held-out fields of `train` and `eval` (the specs run_setup.cc built for the two
// splits from `o`) and returns the evaluation set in words for the log, without its size:
// "held-out 10% of /data/x by key hash", "/data/test (--eval_data_dir)", "fashion_mnist test
// split". URLs in it have their credentials redacted.
absl::StatusOr<std::string> ChooseEvalData(const TrainerOptions& o, data::DatasetSpec* train,
                                           data::DatasetSpec* eval);

// An error when the evaluation data names its classes differently from the training data (an
// --eval_data_dir image folder missing a class folder would shift every label after it).
absl::Status CheckSameClasses(const data::Loader& train, const data::Loader& eval, const std::string& eval_what);

// The byte cap of the evaluation set's in-memory sample cache for `o` (0: no cache): kinds whose
// samples may be downloaded (jsonl records with URLs) keep --eval_cache_mb.
int64_t EvalCacheBytes(const TrainerOptions& o);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_EVAL_DATA_H_
