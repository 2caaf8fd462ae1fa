#include "convforever/optim/deepspeed_config.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convforever/base/json_limits.h"
#include "convforever/base/status_macros.h"
#include "convforever/optim/deepspeed_reader.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace cf::optim {
namespace {

using internal::Reader;
using nlohmann::json;

// a * b * c, or nullopt when it overflows int64: batch sizes come from the file, and a product
// past int64 (undefined behavior) must be an error, not a wrapped number that happens to match.
std::optional<int64_t> CheckedProduct(int64_t a, int64_t b, int64_t c) {
  int64_t ab, abc;
  if (__builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &abc)) return std::nullopt;
  return abc;
}

absl::Status ResolveBatch(Reader& r, const json& root, const DeepSpeedAutoValues& f,
                          DeepSpeedConfig* c) {
  if (f.world_size < 1) return r.Err("world_size", absl::StrCat("must be >= 1, got ", f.world_size));
  std::optional<int64_t> train_flag;
  if (f.micro_batch && f.grad_accum) train_flag = CheckedProduct(*f.micro_batch, *f.grad_accum, f.world_size);
  ASSIGN_OR_RETURN(std::optional<int64_t> train, r.Get<int64_t>(root, "", "train_batch_size", train_flag, true));
  ASSIGN_OR_RETURN(std::optional<int64_t> micro,
                   r.Get<int64_t>(root, "", "train_micro_batch_size_per_gpu", f.micro_batch, true));
  ASSIGN_OR_RETURN(std::optional<int64_t> accum,
                   r.Get<int64_t>(root, "", "gradient_accumulation_steps", f.grad_accum, true));
  for (const auto& [key, v] : {std::pair<const char*, std::optional<int64_t>>{"train_batch_size", train},
                               {"train_micro_batch_size_per_gpu", micro},
                               {"gradient_accumulation_steps", accum}}) {
    if (v && *v <= 0) return r.Err(key, absl::StrCat("must be > 0, got ", *v));
  }
  const int64_t w = f.world_size;
  // DeepSpeed's _set_batch_related_parameters: any two determine the third.
  if (train && micro && !accum) {
    accum = *train / *micro / w;
  } else if (train && accum && !micro) {
    micro = *train / w / *accum;
  } else if (micro && accum && !train) {
    train = CheckedProduct(*micro, *accum, w);
    if (!train) {
      return r.Err("train_batch_size", absl::StrCat("train_micro_batch_size_per_gpu (", *micro,
                                                    ") x gradient_accumulation_steps (", *accum,
                                                    ") x world size (", w, ") overflows"));
    }
  } else if (train && !micro && !accum) {
    accum = 1;
    micro = *train / w;
  } else if (micro && !train && !accum) {
    accum = 1;
    train = CheckedProduct(*micro, 1, w);
    if (!train) {
      return r.Err("train_batch_size", absl::StrCat("train_micro_batch_size_per_gpu (", *micro,
                                                    ") x world size (", w, ") overflows"));
    }
  } else if (!train && !micro) {
    return r.Err("train_batch_size", "neither train_batch_size nor train_micro_batch_size_per_gpu "
                                     "is given (or resolvable from the flags)");
  }
  if (*micro <= 0 || *accum <= 0 || CheckedProduct(*micro, *accum, w) != *train) {
    return r.Err("train_batch_size", absl::StrCat("train_batch_size (", *train,
                                                  ") != train_micro_batch_size_per_gpu (", *micro,
                                                  ") x gradient_accumulation_steps (", *accum,
                                                  ") x world size (", w, ")"));
  }
  c->train_batch_size = *train;
  c->micro_batch_per_gpu = *micro;
  c->gradient_accumulation_steps = *accum;
  c->world_size = w;
  return absl::OkStatus();
}

absl::Status ParseOptimizer(Reader& r, const json& root, const DeepSpeedAutoValues& f, DeepSpeedConfig* c) {
  ASSIGN_OR_RETURN(const json* opt, r.Object(root, "", "optimizer"));
  if (opt == nullptr) return absl::OkStatus();
  r.Unknown(*opt, "optimizer", {"type", "params"});
  ASSIGN_OR_RETURN(std::optional<std::string> type, r.Get<std::string>(*opt, "optimizer", "type", {}));
  if (!type) return r.Err("optimizer.type", "missing");
  OptimizerOptions& o = c->optimizer;
  const std::string t = absl::AsciiStrToLower(*type);
  if (t == "adam" || t == "adamw") {
    o.type = "adamw";
  } else if (t == "lamb" || t == "sgd" || t == "lion") {
    o.type = t;
  } else {
    return r.Err("optimizer.type", absl::StrCat("\"", *type, "\" unsupported: expected Adam, AdamW, Lamb, SGD or Lion"));
  }
  if (o.type == "lamb") o.eps = 1e-6;  // LAMB's paper and DeepSpeed default
  if (o.type == "lion") o.beta2 = 0.99;
  if (o.type == "sgd") o.momentum = 0.0;  // torch.optim.SGD's default
  ASSIGN_OR_RETURN(const json* params, r.Object(*opt, "optimizer", "params"));
  c->has_optimizer = true;
  if (params == nullptr) return absl::OkStatus();
  const std::string p = "optimizer.params";
  r.Unknown(*params, p, {"lr", "betas", "eps", "weight_decay", "momentum", "nesterov", "dampening",
                         "adam_w_mode", "max_coeff", "min_coeff"});
  ASSIGN_OR_RETURN(auto lr, r.Get<double>(*params, p, "lr", f.lr));
  ASSIGN_OR_RETURN(auto eps, r.Get<double>(*params, p, "eps", f.eps));
  ASSIGN_OR_RETURN(auto wd, r.Get<double>(*params, p, "weight_decay", f.weight_decay));
  ASSIGN_OR_RETURN(auto momentum, r.Get<double>(*params, p, "momentum", {}));
  ASSIGN_OR_RETURN(auto dampening, r.Get<double>(*params, p, "dampening", {}));
  ASSIGN_OR_RETURN(auto nesterov, r.Get<bool>(*params, p, "nesterov", {}));
  ASSIGN_OR_RETURN(auto adam_w_mode, r.Get<bool>(*params, p, "adam_w_mode", {}));
  ASSIGN_OR_RETURN(auto max_coeff, r.Get<double>(*params, p, "max_coeff", {}));
  ASSIGN_OR_RETURN(auto min_coeff, r.Get<double>(*params, p, "min_coeff", {}));
  if (lr) o.lr = *lr;
  if (eps) o.eps = *eps;
  if (wd) o.weight_decay = *wd;
  if (momentum) o.momentum = *momentum;
  if (dampening) o.dampening = *dampening;
  if (nesterov) o.nesterov = *nesterov;
  if (adam_w_mode) o.decoupled_weight_decay = *adam_w_mode;
  if (max_coeff) o.max_trust = *max_coeff;
  if (min_coeff) o.min_trust = *min_coeff;
  if (params->contains("betas")) {
    const json& b = (*params)["betas"];
    if (b.is_string() && b.get<std::string>() == "auto") {
      if (!f.beta1 || !f.beta2) return r.Err(p + ".betas", "is \"auto\" but the trainer gave no betas");
      o.beta1 = *f.beta1;
      o.beta2 = *f.beta2;
    } else if (b.is_array() && b.size() == 2 && b[0].is_number() && b[1].is_number()) {
      o.beta1 = b[0].get<double>();
      o.beta2 = b[1].get<double>();
    } else {
      return r.Err(p + ".betas", absl::StrCat("expected [beta1, beta2] or \"auto\", got ", b.dump()));
    }
  }
  if (!(o.lr >= 0)) return r.Err(p + ".lr", absl::StrCat("must be >= 0, got ", o.lr));
  if (!(o.eps >= 0)) return r.Err(p + ".eps", absl::StrCat("must be >= 0, got ", o.eps));
  if (!(o.weight_decay >= 0)) return r.Err(p + ".weight_decay", absl::StrCat("must be >= 0, got ", o.weight_decay));
  if (!(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1)) {
    return r.Err(p + ".betas", absl::StrCat("each must be in [0, 1), got [", o.beta1, ", ", o.beta2, "]"));
  }
  if (!(o.momentum >= 0)) return r.Err(p + ".momentum", "must be >= 0");
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0)) {
    return r.Err(p + ".nesterov", "needs momentum > 0 and dampening = 0");
  }
  if (o.min_trust < 0 || (o.max_trust > 0 && o.min_trust > o.max_trust)) {
    return r.Err(p + ".min_coeff", "must be >= 0 and <= max_coeff");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadText(const std::string& path_or_json, std::string* source) {
  const size_t first = path_or_json.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && path_or_json[first] == '{') {
    *source = "<inline json>";
    return path_or_json;
  }
  *source = path_or_json;
  std::ifstream in(path_or_json);
  if (!in) return absl::NotFoundError(absl::StrCat("DeepSpeed config ", path_or_json, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<DeepSpeedConfig> ParseDeepSpeedConfig(const std::string& path_or_json,
                                                     const DeepSpeedAutoValues& from_flags) {
  DeepSpeedConfig c;
  ASSIGN_OR_RETURN(std::string text, ReadText(path_or_json, &c.source));
  // Error messages dump values, which recurses once per nesting level.
  if (absl::Status s = CheckJsonLimits(text, {}, c.source); !s.ok()) return s;
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e500
    return absl::InvalidArgumentError(absl::StrCat(c.source, ": not valid JSON: ", e.what()));
  }
  if (!root.is_object()) return absl::InvalidArgumentError(absl::StrCat(c.source, ": top level is not an object"));
  Reader r(c.source);
  r.Unknown(root, "", {"train_batch_size", "train_micro_batch_size_per_gpu",
                       "gradient_accumulation_steps", "optimizer", "scheduler", "fp16", "bf16",
                       "gradient_clipping", "zero_optimization", "diloco"});
  RETURN_IF_ERROR(ResolveBatch(r, root, from_flags, &c));
  RETURN_IF_ERROR(ParseOptimizer(r, root, from_flags, &c));
  RETURN_IF_ERROR(internal::ParseScheduler(r, root, from_flags, &c));
  RETURN_IF_ERROR(internal::ParsePrecision(r, root, from_flags, &c));
  RETURN_IF_ERROR(internal::ParseZeroAndClipping(r, root, from_flags, &c));
  RETURN_IF_ERROR(internal::ParseDiLoCo(r, root, &c));
  c.unsupported_keys = r.unsupported();
  if (!c.unsupported_keys.empty()) {
    LOG(WARNING) << c.source << ": DeepSpeed keys not supported by ConvForever, ignored: "
                 << absl::StrJoin(c.unsupported_keys, ", ");
  }
  return c;
}

}  // namespace cf::optim
