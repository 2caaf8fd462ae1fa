#include "convforever/train/eval_data.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/data/holdout.h"
#include "convforever/data/test_split.h"
#include "convforever/http/headers.h"

namespace cf::train {

absl::StatusOr<std::string> ChooseEvalData(const TrainerOptions& o, data::DatasetSpec* train,
                                           data::DatasetSpec* eval) {
  if (o.eval_fraction < 0 || o.eval_fraction >= 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--eval_fraction must be in (0, 1) (or 0 for none), got ", o.eval_fraction));
  }
  if (o.eval_fraction > 0 && !o.eval_data_dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--eval_fraction=", o.eval_fraction, " and --eval_data_dir=", http::RedactUrlsInText(o.eval_data_dir),
        " both choose the evaluation data: give one (pass --eval_fraction=0 where a recipe sets it)"));
  }
  if (!o.eval_data_dir.empty()) {
    return absl::StrCat(http::RedactUrlsInText(o.eval_data_dir), " (--eval_data_dir)");
  }
  const std::string own = data::OwnTestSplit(*eval);
  if (o.eval_fraction > 0) {
    if (!own.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--eval_fraction: --data=", o.data, " has a test split of its own (", http::RedactUrlsInText(own),
          "), which evaluation reads; drop --eval_fraction (or pass --eval_fraction=0)"));
    }
    for (data::DatasetSpec* spec : {train, eval}) {
      spec->path = train->path;
      spec->holdout_fraction = o.eval_fraction;
    }
    train->holdout_part = data::HoldoutPart::kTraining;
    eval->holdout_part = data::HoldoutPart::kHeldOut;
    eval->split = train->split;  // the same data, the other part
    return absl::StrFormat("held-out %g%% of %s by key hash", 100 * o.eval_fraction,
                           http::RedactUrlsInText(train->path));
  }
  if (own.empty()) {
    const std::string what = o.data == "folder" ? "an image folder without train/ and val/ (or test/) subfolders"
                                                : "--data=" + o.data;
    return absl::InvalidArgumentError(absl::StrCat(
        what, " has no test split of its own (", http::RedactUrlsInText(o.data_dir),
        "), so evaluating would read the training data: pass --eval_data_dir=<separate ", o.data,
        " data> or --eval_fraction=F (0 < F < 1) to hold out a fraction of --data_dir by key hash"));
  }
  return http::RedactUrlsInText(own);
}

absl::Status CheckSameClasses(const data::Loader& train, const data::Loader& eval, const std::string& eval_what) {
  const std::vector<std::string> a = train.class_names(), b = eval.class_names();
  if (a.empty() || b.empty() || a == b) return absl::OkStatus();
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return absl::InvalidArgumentError(absl::StrCat(
      "the evaluation data (", eval_what, ") has ", b.size(), " classes and the training data ", a.size(),
      "; they first differ at class ", i, " ('", i < a.size() ? a[i] : "", "' in training, '",
      i < b.size() ? b[i] : "", "' in evaluation): give both the same class folders or a --class_list"));
}

int64_t EvalCacheBytes(const TrainerOptions& o) {
  return o.data == "jsonl" ? o.eval_cache_mb * (int64_t{1} << 20) : 0;
}

}  // namespace cf::train
