#include "convforever/train/estimate_mode.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <memory>
#include <optional>
#include <thread>

#include <ATen/Parallel.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/base/allocator.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/scratch_dir.h"
#include "convforever/base/status_macros.h"
#include "convforever/models/convnext.h"
#include "convforever/models/registry.h"
#include "convforever/plan/gpus.h"
#include "convforever/plan/measure.h"
#include "convforever/data/source.h"
#include "convforever/distributed/powersgd.h"
#include "convforever/train/calibrate.h"
#include "convforever/train/run_setup.h"
#include "glog/logging.h"

namespace cf::train {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// PowerSGD's bytes per step over the plain gradients': the compressed matrices' rank-r factors,
// 4 r (n+m) bytes, and the rest whole, with PowerSGD's own rules (convforever/distributed/powersgd.h).
double PowerSgdByteFraction(const models::Model& model, const TrainerOptions& o) {
  double whole = 0, sent = 0;
  for (const auto& p : model.named_parameters(/*recurse=*/true)) {
    const at::Tensor& t = p.value();
    if (!t.requires_grad()) continue;
    const double numel = static_cast<double>(t.numel());
    whole += 4 * numel;
    const auto [n, m] = distributed::MatrixShape(t.sizes().vec());
    if (distributed::WorthCompressing(n, m, o.powersgd_rank, o.powersgd_min_compression_rate)) {
      const int64_t r = std::min<int64_t>({o.powersgd_rank, n, m});
      sent += 4.0 * static_cast<double>(r * (n + m));
    } else {
      sent += 4 * numel;
    }
  }
  return whole > 0 ? sent / whole : 1.0;
}

constexpr char kSamplesHint[] =
    ". For data that is not present locally pass --samples=N (images to train on, all epochs) "
    "and, for the evaluation cost, --eval_samples=N";

// Seconds since this process started (Linux: /proc/self/stat's start time against /proc/uptime),
// so startup includes loading LibTorch; -1 where unknown.
double SecondsSinceProcessStart() {
  std::ifstream stat("/proc/self/stat"), uptime("/proc/uptime");
  std::string line;
  double up = 0;
  if (!std::getline(stat, line) || !(uptime >> up)) return -1;
  // Field 22 (starttime, clock ticks after boot) counts from the field after ")" (comm may hold spaces).
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(line.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return up - std::stod(field) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return -1;
}

// Synthetic data of the recipe's shape in place of data that is not here: image size, channels
// and classes as the model's registry entry expects them (--class_list still names the classes),
// so the model and optimizer are the real ones; sample counts come from --samples.
void UseSyntheticData(TrainerOptions* o) {
  const models::ModelOptions defaults = models::DefaultOptions(o->model);
  o->data = "synthetic";
  o->data_dir.clear();
  o->eval_data_dir.clear();
  o->eval_fraction = 0;  // synthetic data has its own test split
  o->synthetic_samples = std::max<int64_t>(4 * o->micro_batch_size * o->gradient_accumulation_steps, 64);
  o->synthetic_classes = defaults.num_classes;
  // The recipe's class list (the depth study's 50 categories) sizes the head when it is here.
  if (!o->class_list.empty()) {
    absl::StatusOr<std::vector<std::string>> classes = data::ReadClassList(o->class_list);
    if (classes.ok() && !classes->empty()) o->synthetic_classes = static_cast<int64_t>(classes->size());
  }
  if (o->channels <= 0) o->channels = static_cast<int>(defaults.in_channels);
}

// The run as Train() builds it, with outputs that go nowhere. Data that does not open here is
// replaced by synthetic data of the same shape when the sample count is given.
absl::StatusOr<std::unique_ptr<RunSetup>> BuildRun(TrainerOptions o, const EstimateRequest& r,
                                                   const std::string& run_dir,
                                                   std::vector<std::string>* notes,
                                                   bool* stand_in) {
  o.run_dir = run_dir;
  o.tensorboard = false;
  o.trackio_project.clear();
  o.hub_repo.clear();
  o.resume.clear();
  o.init_from.clear();
  if (!r.depths.empty()) o.depth = r.depths.front();
  absl::StatusOr<std::unique_ptr<RunSetup>> run = RunSetup::Create(o);
  if (run.ok() || o.data == "synthetic") return run;
  if (r.samples <= 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the training data (--data=", o.data, " --data_dir=", o.data_dir,
        ") does not open here: ", run.status().message(), kSamplesHint));
  }
  notes->push_back(absl::StrCat("the data does not open here (", run.status().message(),
                                "): the model was built on synthetic data of the same shape"));
  UseSyntheticData(&o);
  *stand_in = true;
  return RunSetup::Create(o);
}

// One configuration: name, depth, params, MACs, and (ConvNeXt) the activation-model shape.
struct ModelConfig {
  int depth = 0;
  int64_t params = 0;
  double macs = 0;
  bool convnext = false;
  plan::ConvNeXtShape shape;
};

absl::StatusOr<std::vector<ModelConfig>> ModelConfigs(RunSetup& run, const TrainerOptions& o,
                                                      const EstimateRequest& r) {
  std::vector<ModelConfig> out;
  auto* convnext = dynamic_cast<models::ConvNeXt*>(&run.model());
  if (convnext == nullptr) {
    if (!r.depths.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--depths: --model=", o.model,
                                                     " has no depth setting (use --model=convforever)"));
    }
    ModelConfig m;
    m.params = models::CountParameters(run.model());
    m.macs = run.model().ForwardMacs(o.image_size);
    out.push_back(m);
    return out;
  }
  if (!r.depths.empty() && o.model != "convforever") {
    return absl::InvalidArgumentError(absl::StrCat("--depths: only --model=convforever takes a depth, not ", o.model));
  }
  std::vector<int> depths = r.depths;
  if (depths.empty()) depths.push_back(o.model == "convforever" ? o.depth : 0);
  for (int depth : depths) {
    models::ConvNeXtOptions c = convnext->options();
    if (depth > 0) {
      if (depth < 4) return absl::InvalidArgumentError(absl::StrCat("--depths: ", depth, " < 4 (one block per stage at least)"));
      c.depths(models::SplitDepth(depth, 4));
    }
    ModelConfig m;
    m.depth = depth;
    m.convnext = true;
    m.params = models::ConvNeXtParameterCount(c);
    m.macs = models::ConvNeXtMacs(c, o.image_size);
    m.shape.depths = c.depths();
    m.shape.dims = c.dims();
    m.shape.stem_stride = c.stem_stride();
    m.shape.in_chans = c.in_chans();
    m.shape.num_classes = c.num_classes();
    m.shape.layer_scale = c.layer_scale_init() > 0;
    out.push_back(m);
  }
  return out;
}

std::string OptimizerName(const TrainerOptions& o) {
  return o.optimizer_override ? o.optimizer_override->type : o.optimizer;
}

// The row's per-GPU memory: analytic activations for a ConvNeXt, the CPU measurement (per
// sample, x micro-batch) otherwise; unknown when neither is available. gpu_memory_gb 0: no fit.
absl::Status FillMemory(const ModelConfig& m, const TrainerOptions& o, int gpus,
                        double measured_per_sample, double gpu_memory_gb, plan::EstimateRow* row) {
  const int64_t micro = o.micro_batch_size;
  double activations = -1;
  if (m.convnext) {
    plan::ActivationOptions a;
    a.image_size = o.image_size;
    a.batch = micro;
    a.precision = o.precision;
    a.gradient_checkpointing = o.gradient_checkpointing;
    activations = plan::ConvNeXtPeakActivationBytes(m.shape, a);
    row->memory_method = "analytic";
  } else if (measured_per_sample >= 0) {
    activations = measured_per_sample * micro * (o.precision == "fp32" ? 1.0 : 0.5);
    row->memory_method = o.precision == "fp32" ? "measured (CPU fp32)"
                                              : "measured (CPU fp32, halved for autocast)";
  }
  if (activations >= 0) {
    plan::MemoryInput mi;
    mi.params = m.params;
    mi.optimizer = OptimizerName(o);
    mi.momentum = o.optimizer_override ? o.optimizer_override->momentum : o.momentum;
    mi.ema = o.ema_decay > 0;
    mi.world_size = gpus;
    mi.zero_stage = o.zero_stage;
    mi.zero_offload = o.zero_offload_optimizer;
    mi.activation_bytes = activations;
    ASSIGN_OR_RETURN(row->memory, plan::EstimateMemory(mi));
    row->memory_known = true;
    row->fits = gpu_memory_gb > 0 && plan::FitsInMemory(row->memory.total, gpu_memory_gb);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<plan::EstimateReport> Estimate(const TrainerOptions& given,
                                              const EstimateRequest& r) {
  plan::EstimateReport report;
  TrainerOptions options = given;
  bool stand_in = false;  // synthetic data in place of the real one: no epoch length known
  const bool has_default_location = options.data == "fashion_mnist" || options.data == "synthetic";
  if (r.samples > 0 && options.data_dir.empty() && !has_default_location) {
    report.notes.push_back(absl::StrCat("no --data_dir for --data=", options.data,
                                        ": the model was built on synthetic data of the same shape"));
    UseSyntheticData(&options);
    stand_in = true;
  }
  if (absl::Status valid = ValidateOptions(options); !valid.ok()) {
    // Only a complaint about the data gets the hint; a bad schedule is just a bad schedule.
    const bool about_data = absl::StrContains(valid.message(), "--data");
    if (r.samples > 0 || !options.data_dir.empty() || !about_data) return valid;
    return absl::Status(valid.code(), absl::StrCat(valid.message(), kSamplesHint));
  }
  if (r.gpus < 1) return absl::InvalidArgumentError(absl::StrCat("--gpus must be >= 1, got ", r.gpus));
  const bool local = r.gpu == "local";
  std::vector<plan::GpuSpec> table;
  plan::GpuSpec gpu;
  if (!local || !r.calibrate_gpu.empty()) {
    ASSIGN_OR_RETURN(table, plan::ReadGpuTable(r.gpu_table));
  }
  if (!local) {
    ASSIGN_OR_RETURN(gpu, plan::FindGpu(table, r.gpu, r.gpu_table));
  }

  ConfigureRuntime(options);  // the trainer's allocator and thread settings: what it measures
  base::ScratchDir scratch("cf-estimate");
  if (scratch.path().empty()) return absl::InternalError("cannot create a scratch run directory");
  const auto start = Clock::now();
  ASSIGN_OR_RETURN(std::unique_ptr<RunSetup> run, BuildRun(options, r, scratch.path(), &report.notes, &stand_in));
  const double since_start = SecondsSinceProcessStart();
  const double startup_seconds = since_start > 0 ? since_start : Since(start);
  const TrainerOptions& o = run->options();

  // Images trained on, and the step counts of a run on r.gpus ranks (the trainer's arithmetic).
  const int64_t micro = o.micro_batch_size, accum = o.gradient_accumulation_steps;
  const int64_t global_batch = micro * accum * r.gpus;
  const int64_t per_rank = run->train_loader().num_samples() / r.gpus;
  const int64_t steps_per_epoch = std::max<int64_t>(1, per_rank / micro / accum);
  int64_t train_samples = 0;
  if (r.samples > 0) {
    train_samples = r.samples;
  } else if (o.max_steps > 0) {
    train_samples = o.max_steps * global_batch;
  } else {
    train_samples = static_cast<int64_t>(std::ceil(o.epochs * steps_per_epoch)) * global_batch;
  }
  const int64_t total_steps = (train_samples + global_batch - 1) / global_batch;
  const int64_t per_pass = r.eval_samples >= 0 ? r.eval_samples : run->eval_samples();
  // Without the data the epoch length is unknown: an evaluation per --epochs (rounded up).
  const int64_t epochs = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(o.epochs)));
  const int64_t eval_steps_per_epoch =
      stand_in ? std::max<int64_t>(1, (total_steps + epochs - 1) / epochs) : steps_per_epoch;
  const int64_t passes = plan::EvalPasses(total_steps, eval_steps_per_epoch, o.eval_every_steps) *
                         (o.ema_decay > 0 ? 2 : 1);
  if (!o.progressive_resize.empty()) {
    report.notes.push_back("--progressive_resize is not modelled: every epoch at --image_size");
  }

  ASSIGN_OR_RETURN(std::vector<ModelConfig> configs, ModelConfigs(*run, o, r));
  const double first_flops = plan::TrainFlopsPerImage(configs.front().macs, o.gradient_checkpointing);
  // Other families' activations, measured on the CPU (before calibration starts the loader's
  // threads, whose allocations would count).
  double measured_per_sample = -1;
  if (!configs.front().convnext && run->device().is_cpu()) {
    ASSIGN_OR_RETURN(measured_per_sample,
                     plan::ActivationBytesPerSample(run->model(), run->train_loader().channels(),
                                                    o.image_size, o.channels_last));
  }
  Calibration cal;
  const bool calibrate = r.calibrate || local;
  if (calibrate) {
    CalibrationOptions c;
    c.steps = r.calibrate_steps;
    c.real_data = !stand_in;
    c.train_flops_per_image = first_flops;
    plan::GpuSpec this_gpu;
    const std::string this_gpu_name = r.calibrate_gpu.empty() ? r.gpu : r.calibrate_gpu;
    if (run->device().is_cuda() && this_gpu_name != "local") {
      ASSIGN_OR_RETURN(this_gpu, plan::FindGpu(table, this_gpu_name, r.gpu_table));
      c.cuda_gpu = &this_gpu;
    }
    ASSIGN_OR_RETURN(cal, Calibrate(*run, c));
    LOG(INFO) << absl::StrFormat(
        "calibration on %s: %.4f s per optimizer step, %.3g ms per eval image, %.3g GFLOP/s "
        "achieved, peak %.3g GFLOP/s (%s): utilisation %.3f",
        run->device().str(), cal.step_seconds, 1e3 * cal.eval_seconds_per_image,
        cal.achieved_flops / 1e9, cal.device_peak_flops / 1e9, cal.device_peak_source, cal.utilization);
  }

  double utilization = r.utilization > 0 ? r.utilization
                       : calibrate       ? cal.utilization
                                         : plan::kDefaultUtilization;
  double peak = 0;
  if (!local) {
    ASSIGN_OR_RETURN(peak, plan::PeakFlops(gpu, o.precision));
  }
  report.gpu = r.gpu;
  report.gpus = r.gpus;
  report.precision = o.precision;
  report.peak_tflops = peak / 1e12;
  report.utilization = utilization;
  report.usd_per_hour = r.price_per_hour >= 0 ? r.price_per_hour : (local ? 0.0 : gpu.usd_per_hour);
  report.memory_gb = local ? 0.0 : gpu.memory_gb;
  report.train_samples = train_samples;
  report.eval_images = per_pass * passes;
  report.micro_batch = micro;
  report.accumulation = accum;
  report.image_size = o.image_size;
  if (local) {
    report.throughput = absl::StrFormat(
        "measured on this machine (%s): %.4f s per optimizer step, %.3g ms per eval image, "
        "startup %.1f s (utilisation %.3f of %s)",
        run->device().str(), cal.step_seconds, 1e3 * cal.eval_seconds_per_image, startup_seconds,
        cal.utilization, cal.device_peak_source);
  } else if (calibrate && r.utilization <= 0) {
    report.throughput = absl::StrFormat(
        "datasheet %.1f TFLOPS (%s) x utilisation %.3f calibrated on %s (%.3g GFLOP/s achieved / "
        "%.3g peak, %s)",
        peak / 1e12, o.precision, utilization, run->device().str(), cal.achieved_flops / 1e9,
        cal.device_peak_flops / 1e9, cal.device_peak_source);
  } else {
    report.throughput = absl::StrFormat("datasheet %.1f TFLOPS (%s) x utilisation %.2f (%s)",
                                        peak / 1e12, o.precision, utilization,
                                        r.utilization > 0 ? "--utilization" : "assumed default");
  }
  if (local && configs.size() > 1) {
    report.notes.push_back("--gpu=local: rows after the first scale the measured step time by FLOPs");
  }
  const plan::SyncTraffic traffic =
      plan::SyncTrafficOf(o.sync, r.gpus, PowerSgdByteFraction(run->model(), o), o.diloco_inner_steps,
                          o.diloco_dtype, o.diloco_int8_chunk);
  if (r.gpus > 1) {
    report.notes.push_back(absl::StrFormat(
        "padding: --sync=%s moves %.3g x the bytes of a ring all-reduce of fp32 gradients per step, "
        "at %.0f Gbit/s per GPU (--link_gbps), %s",
        o.sync, traffic.bytes_scale, r.link_gbps,
        traffic.hidden_by_backward ? "hidden under the last micro-batch's backward where it fits"
                                   : "after the step (not overlapped)"));
  }

  for (size_t i = 0; i < configs.size(); ++i) {
    const ModelConfig& m = configs[i];
    plan::EstimateRow row;
    row.model = o.model;
    row.depth = m.depth;
    row.params = m.params;
    row.gmacs_per_image = m.macs / 1e9;
    plan::CostInput in;
    in.forward_macs = m.macs;
    in.gradient_checkpointing = o.gradient_checkpointing;
    in.train_samples = train_samples;
    in.eval_images = report.eval_images;
    in.params = m.params;
    in.micro_batch = micro;
    in.accumulation = accum;
    in.gpus = r.gpus;
    in.link_gbps = r.link_gbps;
    in.sync = traffic;
    in.usd_per_hour = report.usd_per_hour;
    in.local = local;
    in.peak_flops = peak;
    in.utilization = utilization;
    if (local) {
      // Other depths: the first configuration's measured times scaled by FLOPs.
      const double scale = m.macs / configs.front().macs;
      in.step_seconds = cal.step_seconds * scale;
      in.eval_seconds_per_image = cal.eval_seconds_per_image * scale;
      in.startup_seconds = startup_seconds;
    }
    row.cost = plan::EstimateCost(in);

    RETURN_IF_ERROR(FillMemory(m, o, r.gpus, measured_per_sample, local ? 0.0 : gpu.memory_gb, &row));
    report.rows.push_back(row);
  }
  return report;
}

int EstimateMain(const TrainerOptions& options, const EstimateRequest& request, bool json,
                 const std::string& json_path) {
  absl::StatusOr<plan::EstimateReport> report = Estimate(options, request);
  if (!report.ok()) {
    std::fprintf(stderr, "train: --estimate: %s\n", report.status().ToString().c_str());
    return absl::IsInvalidArgument(report.status()) || absl::IsNotFound(report.status()) ||
                   absl::IsFailedPrecondition(report.status())
               ? 2
               : 1;
  }
  const std::string as_json = plan::FormatJson(*report);
  if (!json_path.empty()) {
    if (absl::Status s = base::WriteFileAtomically(json_path, as_json); !s.ok()) {
      std::fprintf(stderr, "train: --estimate_json: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::fputs(json ? as_json.c_str() : plan::FormatTable(*report).c_str(), stdout);
  return 0;
}

}  // namespace cf::train
