#include "convforever/distributed/zero_config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace cf::distributed {

absl::StatusOr<ZeroOptions> ZeroOptionsFromDeepSpeedJson(absl::string_view json_text,
                                                         absl::string_view source) {
  nlohmann::json config = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  ZeroOptions options;
  options.stage = 0;
  auto section = config.find("zero_optimization");
  if (section == config.end() || section->is_null()) return options;
  if (!section->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": zero_optimization must be an object"));
  }
  if (auto stage = section->find("stage"); stage != section->end()) {
    if (!stage->is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": zero_optimization.stage must be an integer, got ", stage->dump()));
    }
    options.stage = stage->get<int>();
  }
  if (options.stage == 3) {
    return absl::UnimplementedError(absl::StrCat(
        source, ": zero_optimization.stage 3 (parameter sharding) is not implemented; use 1 or 2"));
  }
  if (options.stage < 0 || options.stage > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": zero_optimization.stage ", options.stage, " is not 0, 1 or 2"));
  }
  if (auto offload = section->find("offload_optimizer");
      offload != section->end() && !offload->is_null()) {
    std::string device = "none";
    if (offload->is_object() && offload->contains("device") && (*offload)["device"].is_string()) {
      device = (*offload)["device"].get<std::string>();
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": zero_optimization.offload_optimizer must be {\"device\": \"cpu\"|\"none\"}, got ",
          offload->dump()));
    }
    if (device != "cpu" && device != "none") {
      return absl::UnimplementedError(absl::StrCat(source, ": zero_optimization.offload_optimizer.device '",
                                                   device, "' is not supported (cpu or none)"));
    }
    options.offload_optimizer = device == "cpu";
  }
  return options;
}

absl::StatusOr<ZeroOptions> ZeroOptionsFromDeepSpeedConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read DeepSpeed config ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ZeroOptionsFromDeepSpeedJson(text.str(), path);
}

}  // namespace cf::distributed
