// The preflight's microbatch check: the largest micro-batch whose training steps fit in memory.
//
// The run is built as Train() builds it (RunSetup: the recipe's model, optimizer, EMA, precision,
// channels_last, gradient checkpointing) on synthetic data of the training data's shape (image
// size, channels, classes), in a scratch run directory. Micro-batches of 1, 2, 4, ... up to the
// recipe's --micro_batch_size (the last trial is the recipe's own) each take two real steps
// (forward + loss + backward + the trainer's optimizer step) on random pixels, and their peak
// memory is measured:
//   CUDA  the caching allocator's peak of allocated bytes, reset before each trial; an
//         out-of-memory error is a trial that does not fit;
//   CPU   the growth of the process's peak resident set (VmHWM, reset before each trial by
//         writing "5" to /proc/self/clear_refs) over its size before the first trial, so the
//         optimizer state created by the first step counts, and memory the allocator keeps
//         after a trial counts again (an overestimate, never an underestimate).
// The budget per rank is PreflightOptions::memory_gb, else on CUDA the GPU's total memory (shared
// out when this machine has more ranks than GPUs), on the CPU MemAvailable over the ranks on
// this machine. Trials stop at the first that does not fit. The largest trial that fits gives the
// step rate (images/s) the input and time checks compare against: its timed step, or, when that
// took under half a second, the median of three more.
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#ifdef CF_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif
#include <torch/cuda.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/base/scratch_dir.h"
#include "convforever/data/source.h"
#include "convforever/models/registry.h"
#include "convforever/train/preflight_checks.h"
#include "convforever/train/run_setup.h"
#include "glog/logging.h"

namespace cf::train::preflight {
namespace {

constexpr char kName[] = "microbatch";
using Clock = std::chrono::steady_clock;

// A /proc/self/status or /proc/meminfo field in bytes ("VmHWM:   123 kB"); -1 when absent.
double ProcField(const char* file, const std::string& field) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, field + ":")) {
      std::istringstream rest(line.substr(field.size() + 1));
      double kb = -1;
      rest >> kb;
      return kb * 1024;
    }
  }
  return -1;
}

bool ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

struct Budget {
  double bytes = 0;
  std::string source;
};

Budget MemoryBudget(const Context& c, const c10::Device& device) {
  if (c.preflight.memory_gb > 0) {
    return {c.preflight.memory_gb * (1 << 30), "--preflight_memory_gb"};
  }
  const int ranks = std::max(1, c.local_ranks);
#ifdef CF_WITH_CUDA
  if (device.is_cuda()) {
    const double total = static_cast<double>(at::cuda::getDeviceProperties(device.index())->totalGlobalMem);
    const int gpus = std::max<int>(1, static_cast<int>(torch::cuda::device_count()));
    const double share = ranks > gpus ? total * gpus / ranks : total;
    return {share, ranks > gpus ? absl::StrCat("GPU memory shared by ", ranks, " ranks on ", gpus, " GPU(s)")
                                : std::string("the GPU's memory")};
  }
#endif
  const double available = ProcField("/proc/meminfo", "MemAvailable");
  return {available / ranks, ranks > 1 ? absl::StrCat("MemAvailable / ", ranks, " ranks on this host")
                                       : std::string("MemAvailable")};
}

// The options of the probe's run: the recipe's compute, synthetic data of the data's shape.
TrainerOptions ProbeOptions(const Context& c, const std::string& run_dir) {
  TrainerOptions o = c.options;
  const models::ModelOptions defaults = models::DefaultOptions(o.model);
  int64_t classes = defaults.num_classes;
  if (c.train) classes = c.train->num_classes();
  if (!o.class_list.empty()) {
    absl::StatusOr<std::vector<std::string>> names = data::ReadClassList(o.class_list);
    if (names.ok() && !names->empty()) classes = static_cast<int64_t>(names->size());
  }
  if (o.channels <= 0) o.channels = c.train ? c.train->channels() : static_cast<int>(defaults.in_channels);
  o.data = "synthetic";
  o.data_dir.clear();
  o.eval_data_dir.clear();
  o.eval_fraction = 0;
  o.class_list.clear();
  o.subset = 0;
  o.progressive_resize.clear();
  o.synthetic_classes = classes;
  o.synthetic_samples = std::max<int64_t>(64, o.micro_batch_size * o.gradient_accumulation_steps);
  o.num_workers = 0;
  o.max_steps = 1000;
  o.run_dir = run_dir;
  o.tensorboard = false;
  o.trackio_project.clear();
  o.hub_repo.clear();
  o.resume.clear();
  o.init_from.clear();
  return o;
}

struct Trial {
  int64_t batch = 0;
  bool fits = false;
  double peak = 0;          // bytes
  double step_seconds = 0;  // the median of the steps after the first
  std::string error;        // a failure other than running out of memory
};

void Sync(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

// `steps` training steps (at least 2) of micro-batch `b`; the first is not timed (it allocates).
Trial RunTrial(RunSetup& run, int64_t b, double baseline, const Budget& budget, int64_t* step, int steps = 2) {
  const TrainerOptions& o = run.options();
  const c10::Device device = run.device();
  Trial t;
  t.batch = b;
#ifdef CF_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
  if (device.is_cpu()) ResetPeakRss();
  const auto on = at::TensorOptions().device(device);
  std::vector<double> times;
  for (int i = 0; i < std::max(2, steps); ++i) {
    const auto start = Clock::now();
    StepBatch batch;
    batch.images = at::randn({b, run.train_loader().channels(), o.image_size, o.image_size}, on);
    if (o.channels_last) batch.images = batch.images.contiguous(at::MemoryFormat::ChannelsLast);
    batch.targets = at::randint(run.model().num_classes(), {b}, on.dtype(at::kLong));
    absl::Status s;
    try {  // the optimizer step's first allocation of its state may be the one that runs out
      s = run.ForwardBackward(batch, 1, *step).status();
      if (s.ok()) s = run.ApplyGradients((*step)++, /*loss_finite=*/true).status();
    } catch (const c10::Error& e) {
      s = absl::InternalError(e.what_without_backtrace());
    }
    if (!s.ok()) {
      if (absl::StrContains(absl::AsciiStrToLower(s.message()), "out of memory")) {
        for (at::Tensor& p : run.model().parameters()) p.mutable_grad().reset();
#ifdef CF_WITH_CUDA
        if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
        t.peak = budget.bytes;
        t.error = "out of memory";
        return t;
      }
      t.error = std::string(s.message());
      return t;
    }
    Sync(device);
    if (i > 0) times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  t.step_seconds = times[times.size() / 2];
#ifdef CF_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    t.peak = static_cast<double>(
        stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak);
  }
#endif
  if (device.is_cpu()) t.peak = std::max(0.0, ProcField("/proc/self/status", "VmHWM") - baseline);
  t.fits = t.peak <= budget.bytes;
  return t;
}

}  // namespace

CheckRow CheckMicroBatch(Context& c) {
  if (!c.flags_ok) return {kName, CheckStatus::kSkip, "the flags are invalid (flags check)"};
  const TrainerOptions& o = c.options;
  cf::base::ScratchDir scratch("cf-preflight");
  if (scratch.path().empty()) return {kName, CheckStatus::kFail, "cannot create a scratch run directory"};
  const TrainerOptions probe = ProbeOptions(c, scratch.path());
  ConfigureRuntime(o);  // the threads training would have (the probe has no data workers)
  absl::StatusOr<std::unique_ptr<RunSetup>> built = RunSetup::Create(probe);
  if (!built.ok()) {
    return {kName, CheckStatus::kFail, absl::StrCat("building the model: ", built.status().message())};
  }
  RunSetup& run = **built;
  c.params = models::CountParameters(run.model());
  const Budget budget = MemoryBudget(c, run.device());
  const double baseline = ProcField("/proc/self/status", "VmRSS");
  std::vector<int64_t> sizes;
  for (int64_t b = 1; b < o.micro_batch_size; b *= 2) sizes.push_back(b);
  sizes.push_back(o.micro_batch_size);
  const char* what = run.device().is_cuda() ? "CUDA allocator peak" : "peak RSS growth";
  int64_t step = 0;
  std::optional<Trial> best;  // the largest that fits
  Trial last;
  for (int64_t b : sizes) {
    last = RunTrial(run, b, baseline, budget, &step);
    LOG(INFO) << "preflight microbatch " << b << ": peak " << Bytes(last.peak) << " of " << Bytes(budget.bytes)
              << (last.error.empty() ? "" : ", " + last.error);
    if (!last.error.empty() && last.error != "out of memory") {
      return {kName, CheckStatus::kFail, absl::StrCat("micro-batch ", b, ": ", last.error)};
    }
    if (!last.fits) break;
    best = last;
  }
  if (best) {
    // The step rate from a few more steps at that size: a trial's single timed step is noisy when
    // short (a long one is measured well enough, and more would cost seconds each).
    if (best->step_seconds < 0.5) {
      const Trial timed = RunTrial(run, best->batch, baseline, budget, &step, /*steps=*/4);
      if (timed.error.empty()) best->step_seconds = timed.step_seconds;
    }
    c.step_micro_batch = best->batch;
    c.step_images_per_s = best->step_seconds > 0 ? best->batch / best->step_seconds : 0;
  }
  const std::string budget_text = absl::StrCat(Bytes(budget.bytes), " budget (", budget.source, ")");
  if (best && best->batch == o.micro_batch_size) {
    return {kName, CheckStatus::kOk,
            absl::StrFormat("--micro_batch_size=%d fits: %s %s of %s; step %.0f images/s", o.micro_batch_size,
                            what, Bytes(best->peak), budget_text, c.step_images_per_s)};
  }
  const std::string need =
      last.error.empty()
          ? absl::StrFormat("--micro_batch_size=%d does not fit: %s %s over the %s", o.micro_batch_size, what,
                            Bytes(last.peak), budget_text)
          : absl::StrFormat("--micro_batch_size=%d does not fit: micro-batch %d ran out of memory on %s (%s)",
                            o.micro_batch_size, last.batch, run.device().str(), budget_text);
  if (!best) return {kName, CheckStatus::kFail, absl::StrCat(need, "; not even a micro-batch of 1 fits")};
  const int64_t global = o.micro_batch_size * o.gradient_accumulation_steps;
  const int64_t accum = (global + best->batch - 1) / best->batch;
  return {kName, CheckStatus::kFail,
          absl::StrFormat("%s; the largest that fits is %d (%s): use --micro_batch_size=%d "
                          "--gradient_accumulation_steps=%d for a global batch of %d per rank%s",
                          need, best->batch, Bytes(best->peak), best->batch, accum, best->batch * accum,
                          best->batch * accum == global ? "" : absl::StrCat(" (the recipe's is ", global, ")"))};
}

}  // namespace cf::train::preflight
