// The "diloco" section of a config given to --deepspeed_config (deepspeed_config.h).
#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/optim/deepspeed_reader.h"

namespace cf::optim::internal {

absl::Status ParseDiLoCo(Reader& r, const json& root, DeepSpeedConfig* c) {
  ASSIGN_OR_RETURN(const json* d, r.Object(root, "", "diloco"));
  if (d == nullptr) return absl::OkStatus();
  const std::string k = "diloco";
  r.Unknown(*d, k, {"inner_steps", "outer_lr", "outer_momentum", "outer_nesterov", "dtype",
                    "int8_chunk", "fragments", "overlap"});
  DeepSpeedDiLoCo& o = c->diloco;
  ASSIGN_OR_RETURN(o.inner_steps, r.Get<int64_t>(*d, k, "inner_steps", {}));
  ASSIGN_OR_RETURN(o.int8_chunk, r.Get<int64_t>(*d, k, "int8_chunk", {}));
  ASSIGN_OR_RETURN(o.fragments, r.Get<int64_t>(*d, k, "fragments", {}));
  ASSIGN_OR_RETURN(o.outer_lr, r.Get<double>(*d, k, "outer_lr", {}));
  ASSIGN_OR_RETURN(o.outer_momentum, r.Get<double>(*d, k, "outer_momentum", {}));
  ASSIGN_OR_RETURN(o.outer_nesterov, r.Get<bool>(*d, k, "outer_nesterov", {}));
  ASSIGN_OR_RETURN(o.overlap, r.Get<bool>(*d, k, "overlap", {}));
  ASSIGN_OR_RETURN(o.dtype, r.Get<std::string>(*d, k, "dtype", {}));
  for (auto [key, value] : {std::pair{"inner_steps", o.inner_steps}, {"int8_chunk", o.int8_chunk},
                            {"fragments", o.fragments}}) {
    if (value && *value < 1) return r.Err(k + "." + key, absl::StrCat("must be >= 1, got ", *value));
  }
  if (o.dtype && *o.dtype != "fp32" && *o.dtype != "bf16" && *o.dtype != "int8") {
    return r.Err(k + ".dtype", absl::StrCat("\"", *o.dtype, "\" is not one of fp32, bf16, int8"));
  }
  if (o.outer_lr && !(*o.outer_lr > 0)) return r.Err(k + ".outer_lr", "must be > 0");
  if (o.outer_momentum && !(*o.outer_momentum >= 0 && *o.outer_momentum < 1)) {
    return r.Err(k + ".outer_momentum", "must be in [0, 1)");
  }
  c->has_diloco = true;
  return absl::OkStatus();
}

}  // namespace cf::optim::internal
