// The scheduler, precision, ZeRO and clipping sections of a DeepSpeed config (see
// deepspeed_config.h); DeepSpeed's defaults where a key is absent.
#include <algorithm>
#include <cmath>

#include "convforever/base/status_macros.h"
#include "convforever/optim/deepspeed_reader.h"

namespace cf::optim::internal {
namespace {

constexpr char kP[] = "scheduler.params";

// WarmupLR / WarmupDecayLR: warmup from warmup_min_lr to warmup_max_lr, then constant or a linear
// decay back to warmup_min_lr at total_num_steps.
absl::Status WarmupFamily(Reader& r, const json& p, const DeepSpeedAutoValues& f, bool decay,
                          ScheduleOptions* s) {
  std::set<std::string> known = {"warmup_min_lr", "warmup_max_lr", "warmup_num_steps", "warmup_type"};
  if (decay) known.insert("total_num_steps");
  r.Unknown(p, kP, known);
  ASSIGN_OR_RETURN(auto min_lr, r.Get<double>(p, kP, "warmup_min_lr", std::optional<double>(0.0)));
  ASSIGN_OR_RETURN(auto max_lr, r.Get<double>(p, kP, "warmup_max_lr", f.lr));
  const double lo = min_lr.value_or(0.0), hi = max_lr.value_or(0.001);
  if (lo < 0) return r.Err(absl::StrCat(kP, ".warmup_min_lr"), "must be >= 0");
  if (hi < lo) return r.Err(absl::StrCat(kP, ".warmup_max_lr"), absl::StrCat(hi, " < warmup_min_lr ", lo));
  s->type = decay ? "linear" : "constant";
  s->base_lr = hi;
  s->min_lr = decay ? lo : 0.0;
  s->warmup_start_factor = hi > 0 ? lo / hi : 0.0;
  return absl::OkStatus();
}

absl::Status Cosine(Reader& r, const json& p, const DeepSpeedConfig& c,
                    const DeepSpeedAutoValues& f, ScheduleOptions* s) {
  r.Unknown(p, kP, {"total_num_steps", "warmup_min_ratio", "warmup_num_steps", "cos_min_ratio", "warmup_type"});
  ASSIGN_OR_RETURN(auto warm_ratio, r.Get<double>(p, kP, "warmup_min_ratio", {}));
  ASSIGN_OR_RETURN(auto cos_ratio, r.Get<double>(p, kP, "cos_min_ratio", {}));
  const double wr = warm_ratio.value_or(0.0), cr = cos_ratio.value_or(1e-4);
  if (!(wr >= 0 && wr <= 1)) return r.Err(absl::StrCat(kP, ".warmup_min_ratio"), "must be in [0, 1]");
  if (!(cr >= 0 && cr <= 1)) return r.Err(absl::StrCat(kP, ".cos_min_ratio"), "must be in [0, 1]");
  // The ratios scale the optimizer's lr.
  std::optional<double> lr = c.has_optimizer ? std::optional<double>(c.optimizer.lr) : f.lr;
  if (!lr) return r.Err("scheduler", "WarmupCosineLR needs an lr: an optimizer section or the lr flag");
  s->type = "cosine";
  s->base_lr = *lr;
  s->warmup_start_factor = wr;
  s->min_lr = cr * *lr;
  return absl::OkStatus();
}

absl::Status OneCycle(Reader& r, const json& p, ScheduleOptions* s) {
  r.Unknown(p, kP, {"cycle_min_lr", "cycle_max_lr", "decay_lr_rate", "cycle_first_step_size",
                    "cycle_second_step_size", "decay_step_size"});
  ASSIGN_OR_RETURN(auto lo, r.Get<double>(p, kP, "cycle_min_lr", {}));
  ASSIGN_OR_RETURN(auto hi, r.Get<double>(p, kP, "cycle_max_lr", {}));
  if (!lo) return r.Err(absl::StrCat(kP, ".cycle_min_lr"), "missing (required by OneCycle)");
  if (!hi) return r.Err(absl::StrCat(kP, ".cycle_max_lr"), "missing (required by OneCycle)");
  if (*lo < 0 || *hi < *lo) return r.Err(absl::StrCat(kP, ".cycle_max_lr"), "must be >= cycle_min_lr >= 0");
  ASSIGN_OR_RETURN(auto rate, r.Get<double>(p, kP, "decay_lr_rate", {}));
  ASSIGN_OR_RETURN(auto first, r.Get<int64_t>(p, kP, "cycle_first_step_size", {}));
  ASSIGN_OR_RETURN(auto second, r.Get<int64_t>(p, kP, "cycle_second_step_size", {}));
  ASSIGN_OR_RETURN(auto decay_steps, r.Get<int64_t>(p, kP, "decay_step_size", {}));
  s->type = "ds_onecycle";
  s->base_lr = *hi;
  s->min_lr = *lo;
  s->decay_lr_rate = rate.value_or(0.0);
  s->cycle_first_step_size = first.value_or(2000);
  s->cycle_second_step_size = second.value_or(0);
  s->decay_step_size = decay_steps.value_or(0);
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseScheduler(Reader& r, const json& root, const DeepSpeedAutoValues& f,
                            DeepSpeedConfig* c) {
  ASSIGN_OR_RETURN(const json* sch, r.Object(root, "", "scheduler"));
  if (sch == nullptr) return absl::OkStatus();
  r.Unknown(*sch, "scheduler", {"type", "params"});
  ASSIGN_OR_RETURN(auto type, r.Get<std::string>(*sch, "scheduler", "type", {}));
  if (!type) return r.Err("scheduler.type", "missing");
  ASSIGN_OR_RETURN(const json* params, r.Object(*sch, "scheduler", "params"));
  const json empty = json::object();
  const json& p = params ? *params : empty;
  ScheduleOptions& s = c->schedule;
  s.warmup_type = "log";  // DeepSpeed's default
  if (*type == "WarmupLR" || *type == "WarmupDecayLR") {
    RETURN_IF_ERROR(WarmupFamily(r, p, f, *type == "WarmupDecayLR", &s));
  } else if (*type == "WarmupCosineLR") {
    RETURN_IF_ERROR(Cosine(r, p, *c, f, &s));
  } else if (*type == "OneCycle") {
    RETURN_IF_ERROR(OneCycle(r, p, &s));
  } else {
    return r.Err("scheduler.type", absl::StrCat("\"", *type, "\" unsupported: expected WarmupLR, "
                                                "WarmupDecayLR, WarmupCosineLR or OneCycle"));
  }
  if (s.type != "ds_onecycle") {
    ASSIGN_OR_RETURN(auto warmup, r.Get<int64_t>(p, kP, "warmup_num_steps", f.warmup_steps));
    ASSIGN_OR_RETURN(auto wtype, r.Get<std::string>(p, kP, "warmup_type", {}));
    // DeepSpeed clamps the warmup to >= 2 steps so the log form is defined.
    s.warmup_steps = std::max<int64_t>(warmup.value_or(1000), 2);
    if (warmup && *warmup < 0) return r.Err(absl::StrCat(kP, ".warmup_num_steps"), "must be >= 0");
    if (wtype) s.warmup_type = *wtype;
    if (s.warmup_type != "log" && s.warmup_type != "linear") {
      return r.Err(absl::StrCat(kP, ".warmup_type"), absl::StrCat("\"", s.warmup_type, "\": expected log or linear"));
    }
  }
  if (s.type == "linear" || s.type == "cosine") {
    ASSIGN_OR_RETURN(auto total, r.Get<int64_t>(p, kP, "total_num_steps", f.total_steps));
    if (!total) return r.Err(absl::StrCat(kP, ".total_num_steps"), absl::StrCat("missing (required by ", *type, ")"));
    if (*total <= s.warmup_steps) {
      return r.Err(absl::StrCat(kP, ".total_num_steps"),
                   absl::StrCat(*total, " is not more than warmup_num_steps ", s.warmup_steps));
    }
    s.total_steps = *total;
  }
  absl::Status st = ValidateSchedule(s);
  if (!st.ok()) return r.Err("scheduler", std::string(st.message()));
  c->has_scheduler = true;
  return absl::OkStatus();
}

absl::Status ParsePrecision(Reader& r, const json& root, const DeepSpeedAutoValues& f,
                            DeepSpeedConfig* c) {
  LossScalerOptions& ls = c->loss_scaler;
  ls.enabled = false;
  ASSIGN_OR_RETURN(const json* fp16, r.Object(root, "", "fp16"));
  if (fp16 != nullptr) {
    const std::string k = "fp16";
    r.Unknown(*fp16, k, {"enabled", "loss_scale", "initial_scale_power", "loss_scale_window",
                         "hysteresis", "min_loss_scale"});
    ASSIGN_OR_RETURN(auto enabled, r.Get<bool>(*fp16, k, "enabled", f.fp16));
    ASSIGN_OR_RETURN(auto loss_scale, r.Get<double>(*fp16, k, "loss_scale", {}));
    ASSIGN_OR_RETURN(auto power, r.Get<int64_t>(*fp16, k, "initial_scale_power", {}));
    ASSIGN_OR_RETURN(auto window, r.Get<int64_t>(*fp16, k, "loss_scale_window", {}));
    ASSIGN_OR_RETURN(auto hysteresis, r.Get<int64_t>(*fp16, k, "hysteresis", {}));
    ASSIGN_OR_RETURN(auto min_scale, r.Get<double>(*fp16, k, "min_loss_scale", {}));
    if (loss_scale && *loss_scale < 0) return r.Err("fp16.loss_scale", "must be >= 0 (0 = dynamic)");
    if (power && (*power < 0 || *power > 63)) return r.Err("fp16.initial_scale_power", "must be in [0, 63]");
    if (window && *window < 1) return r.Err("fp16.loss_scale_window", "must be >= 1");
    if (hysteresis && *hysteresis < 1) return r.Err("fp16.hysteresis", "must be >= 1");
    if (min_scale && !(*min_scale > 0)) return r.Err("fp16.min_loss_scale", "must be > 0");
    c->fp16 = enabled.value_or(false);
    ls.enabled = c->fp16;
    ls.dynamic = loss_scale.value_or(0.0) == 0.0;
    ls.init_scale = ls.dynamic ? std::ldexp(1.0, static_cast<int>(power.value_or(16))) : *loss_scale;
    ls.growth_interval = window.value_or(1000);
    ls.hysteresis = hysteresis.value_or(2);
    ls.min_scale = min_scale.value_or(1.0);
    if (ls.min_scale > ls.init_scale) return r.Err("fp16.min_loss_scale", "is above the initial scale");
  }
  ASSIGN_OR_RETURN(const json* bf16, r.Object(root, "", "bf16"));
  if (bf16 != nullptr) {
    r.Unknown(*bf16, "bf16", {"enabled"});
    ASSIGN_OR_RETURN(auto enabled, r.Get<bool>(*bf16, "bf16", "enabled", f.bf16));
    c->bf16 = enabled.value_or(false);
  }
  if (c->fp16 && c->bf16) return r.Err("bf16.enabled", "fp16.enabled and bf16.enabled are both true");
  return absl::OkStatus();
}

absl::Status ParseZeroAndClipping(Reader& r, const json& root, const DeepSpeedAutoValues& f,
                                  DeepSpeedConfig* c) {
  ASSIGN_OR_RETURN(auto clip, r.Get<double>(root, "", "gradient_clipping", f.max_grad_norm));
  if (clip && *clip < 0) return r.Err("gradient_clipping", absl::StrCat("must be >= 0, got ", *clip));
  c->gradient_clipping = clip.value_or(0.0);
  ASSIGN_OR_RETURN(const json* zero, r.Object(root, "", "zero_optimization"));
  if (zero == nullptr) return absl::OkStatus();
  const std::string z = "zero_optimization";
  r.Unknown(*zero, z, {"stage", "offload_optimizer"});
  ASSIGN_OR_RETURN(auto stage, r.Get<int64_t>(*zero, z, "stage", {}));
  if (stage && (*stage < 0 || *stage > 3)) return r.Err(z + ".stage", absl::StrCat("must be 0..3, got ", *stage));
  c->zero_stage = static_cast<int>(stage.value_or(0));
  ASSIGN_OR_RETURN(const json* off, r.Object(*zero, z, "offload_optimizer"));
  if (off != nullptr) {
    const std::string o = z + ".offload_optimizer";
    r.Unknown(*off, o, {"device"});
    ASSIGN_OR_RETURN(auto device, r.Get<std::string>(*off, o, "device", {}));
    c->offload_optimizer_device = device.value_or("none");
    if (c->offload_optimizer_device != "none" && c->offload_optimizer_device != "cpu") {
      return r.Err(o + ".device", absl::StrCat("\"", c->offload_optimizer_device,
                                               "\" unsupported: expected none or cpu"));
    }
    if (c->offload_optimizer_device != "none" && c->zero_stage == 0) {
      return r.Err(o + ".device", "optimizer offload needs zero_optimization.stage >= 1");
    }
  }
  return absl::OkStatus();
}

}  // namespace cf::optim::internal
