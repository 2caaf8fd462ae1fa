// The preflight's data side: the training data opens and gives a batch (data), the held-out set
// opens (heldout), and the real loader's speed against the step's (input). The loaders are built
// from the trainer's own specs and options (run_data.h, eval_data.h), so what opens here opens in
// training. A remote location is probed first with one small request and the preflight's timeout,
// so an address that does not answer fails in seconds, not after the loader's retries.
#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/data/http_fetch.h"
#include "convforever/data/shard_pattern.h"
#include "convforever/http/client.h"
#include "convforever/http/headers.h"
#include "convforever/train/epoch_steps.h"
#include "convforever/train/eval_data.h"
#include "convforever/train/preflight_checks.h"
#include "convforever/train/run_data.h"

namespace cf::train::preflight {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string Redacted(const absl::Status& s) { return http::RedactUrlsInText(std::string(s.message())); }

// One ranged GET of the first file a URL location names (the first shard of a brace pattern):
// it must connect within the timeout and answer 2xx (or 416 for an empty file).
absl::Status ProbeUrl(const std::string& location, double timeout_s) {
  std::string url = location;
  if (absl::StatusOr<std::vector<std::string>> shards = data::ExpandBraces(location);
      shards.ok() && !shards->empty()) {
    url = shards->front();
  }
  http::Request req;
  req.url = url;
  req.headers.Set("Range", "bytes=0-0");
  req.timeout = absl::Seconds(timeout_s);
  req.connect_timeout = absl::Seconds(timeout_s);
  absl::StatusOr<http::Response> resp = http::Fetch(req);
  if (!resp.ok()) {
    return absl::UnavailableError(absl::StrFormat("%s does not answer within %gs: %s",
                                                  http::RedactUrl(url), timeout_s, Redacted(resp.status())));
  }
  if (!resp->ok() && resp->status != 416) return http::HttpStatusToError(req, *resp);
  return absl::OkStatus();
}

// The specs of both splits, with the held-out choice applied when it is valid (the heldout check
// reports it when it is not).
void Specs(const TrainerOptions& o, data::DatasetSpec* train, data::DatasetSpec* eval) {
  *train = MakeDatasetSpec(o, true);
  *eval = MakeDatasetSpec(o, false);
  data::DatasetSpec t = *train, e = *eval;
  if (ChooseEvalData(o, &t, &e).ok()) {
    *train = t;
    *eval = e;
  }
}

absl::StatusOr<data::LoaderOptions> LoaderOptionsFor(const Context& c, bool train) {
  absl::StatusOr<data::LoaderOptions> l = MakeLoaderOptions(c.options, train);
  if (!l.ok()) return l;
  l->rank = 0;
  l->world_size = c.world_size;
  if (c.world_size > 1) l->should_stop = nullptr;
  return l;
}

std::string Shape(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) absl::StrAppend(&s, i ? ", " : "", t.size(i));
  return s + "]";
}

}  // namespace

CheckRow CheckData(Context& c) {
  const TrainerOptions& o = c.options;
  data::DatasetSpec train, eval;
  Specs(o, &train, &eval);
  const std::string where = train.path.empty() ? o.data : http::RedactUrl(train.path);
  if (data::IsHttpUrl(train.path)) {
    if (absl::Status s = ProbeUrl(train.path, c.preflight.timeout_s); !s.ok()) {
      return {"data", CheckStatus::kFail, absl::StrCat("--data=", o.data, ": ", Redacted(s))};
    }
  }
  absl::StatusOr<data::LoaderOptions> opts = LoaderOptionsFor(c, true);
  if (!opts.ok()) return {"data", CheckStatus::kFail, Redacted(opts.status())};
  const auto start = Clock::now();
  absl::StatusOr<std::unique_ptr<data::Loader>> loader = data::Loader::Create(train, *opts);
  if (!loader.ok()) {
    return {"data", CheckStatus::kFail, absl::StrCat("--data=", o.data, " ", where, ": ", Redacted(loader.status()))};
  }
  data::Loader& l = **loader;
  if (absl::Status s = l.StartEpoch(0); !s.ok()) return {"data", CheckStatus::kFail, Redacted(s)};
  absl::StatusOr<std::optional<data::Batch>> batch = l.Next();
  if (!batch.ok()) return {"data", CheckStatus::kFail, absl::StrCat(where, ": reading a batch: ", Redacted(batch.status()))};
  if (!*batch || (*batch)->images.size(0) == 0) {
    return {"data", CheckStatus::kFail,
            absl::StrCat(where, ": the first batch came back empty (every sample failed to load or decode)")};
  }
  const double first_batch_s = Since(start);
  const int64_t accum = o.gradient_accumulation_steps;
  if (accum < 1 || l.batches_per_epoch() / accum == 0) {
    return {"data", CheckStatus::kFail,
            absl::StrFormat("%s gives %d batches of %d per rank per epoch (world size %d), fewer than "
                            "--gradient_accumulation_steps=%d",
                            where, l.batches_per_epoch(), o.micro_batch_size, c.world_size, accum)};
  }
  absl::StatusOr<EpochSteps> steps =
      EpochSteps::Count(o.epochs, accum, [&](int64_t e) { return l.batches_in_epoch(e); });
  if (steps.ok()) {
    c.total_steps = o.max_steps > 0 ? o.max_steps : steps->total();
    c.steps_per_epoch = l.batches_per_epoch() / accum;
    c.epoch_steps = *steps;
  }
  const std::string detail = absl::StrFormat(
      "%s: %d samples, %d classes; first batch %s in %.2g s; %d steps/epoch per rank, %d steps",
      where, l.num_samples(), l.num_classes(), Shape((*batch)->images), first_batch_s,
      l.batches_per_epoch() / accum, c.total_steps);
  c.train = *std::move(loader);
  return {"data", CheckStatus::kOk, detail};
}

CheckRow CheckHeldOut(Context& c) {
  const TrainerOptions& o = c.options;
  data::DatasetSpec train = MakeDatasetSpec(o, true), eval = MakeDatasetSpec(o, false);
  absl::StatusOr<std::string> what = ChooseEvalData(o, &train, &eval);
  if (!what.ok()) return {"heldout", CheckStatus::kFail, Redacted(what.status())};
  if (data::IsHttpUrl(eval.path)) {
    if (absl::Status s = ProbeUrl(eval.path, c.preflight.timeout_s); !s.ok()) {
      return {"heldout", CheckStatus::kFail, absl::StrCat(*what, ": ", Redacted(s))};
    }
  }
  absl::StatusOr<data::LoaderOptions> opts = LoaderOptionsFor(c, false);
  if (!opts.ok()) return {"heldout", CheckStatus::kFail, Redacted(opts.status())};
  if (c.train) opts->channels = c.train->channels();
  opts->world_size = 1;  // the whole set's size
  absl::StatusOr<std::unique_ptr<data::Loader>> loader = data::Loader::Create(eval, *opts);
  if (!loader.ok()) return {"heldout", CheckStatus::kFail, absl::StrCat(*what, ": ", Redacted(loader.status()))};
  if (c.train) {
    if (absl::Status s = CheckSameClasses(*c.train, **loader, *what); !s.ok()) {
      return {"heldout", CheckStatus::kFail, Redacted(s)};
    }
  }
  const int64_t n = (*loader)->num_samples();
  if (n == 0) return {"heldout", CheckStatus::kFail, absl::StrCat(*what, ": no samples")};
  return {"heldout", CheckStatus::kOk,
          absl::StrCat(*what, ": ", n >= 0 ? absl::StrCat(n, " samples") : std::string("streamed, size known after a pass"))};
}

// The loader restarted (a new epoch: its workers start cold, as at every epoch); the batches its
// prefetch queue holds are taken untimed, then the next ones are timed for up to 2 s (50 at most).
CheckRow CheckInput(Context& c) {
  if (!c.train) return {"input", CheckStatus::kSkip, "no training loader (data check)"};
  data::Loader& l = *c.train;
  int64_t epoch = 1;
  if (absl::Status s = l.StartEpoch(epoch); !s.ok()) return {"input", CheckStatus::kFail, Redacted(s)};
  int64_t images = 0, batches = 0, taken = 0;
  std::optional<Clock::time_point> start;
  while (batches < 50 && (!start || Since(*start) < 2)) {
    if (!start && taken >= c.options.prefetch_batches) start = Clock::now();
    absl::StatusOr<std::optional<data::Batch>> b = l.Next();
    if (!b.ok()) return {"input", CheckStatus::kFail, Redacted(b.status())};
    if (!*b) {
      if (absl::Status s = l.StartEpoch(++epoch); !s.ok()) return {"input", CheckStatus::kFail, Redacted(s)};
      continue;
    }
    if (!start) {
      ++taken;
      continue;
    }
    images += (*b)->images.size(0);
    ++batches;
  }
  const double seconds = start ? Since(*start) : 0;
  if (images == 0 || seconds <= 0) return {"input", CheckStatus::kFail, "the loader gave no images"};
  c.loader_images_per_s = images / seconds;
  const std::string loader = absl::StrFormat("loader %.0f images/s (%d batches, --num_workers=%d)",
                                             c.loader_images_per_s, batches, c.options.num_workers);
  if (c.step_images_per_s <= 0) return {"input", CheckStatus::kOk, loader + "; no step rate to compare"};
  if (c.loader_images_per_s < c.step_images_per_s) {
    return {"input", CheckStatus::kWarn,
            absl::StrFormat("input-bound: %s < step %.0f images/s: raise --num_workers or pack the "
                            "data (tools/cf pack)", loader, c.step_images_per_s)};
  }
  return {"input", CheckStatus::kOk, absl::StrFormat("%s >= step %.0f images/s", loader, c.step_images_per_s)};
}

}  // namespace cf::train::preflight
