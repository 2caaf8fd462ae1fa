// Internal to deepspeed_config: reads typed values out of a DeepSpeed config, resolving "auto",
// collecting unknown keys, and making errors that name the source and the dotted key.
#ifndef CONVFOREVER_OPTIM_DEEPSPEED_READER_H_
#define CONVFOREVER_OPTIM_DEEPSPEED_READER_H_

#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "convforever/optim/deepspeed_config.h"
#include "nlohmann/json.hpp"

namespace cf::optim::internal {

using nlohmann::json;

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  absl::Status Err(const std::string& key, const std::string& why) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", key, ": ", why));
  }
  static std::string Join(const std::string& prefix, const std::string& key) {
    return prefix.empty() ? key : absl::StrCat(prefix, ".", key);
  }
  void Unknown(const json& obj, const std::string& prefix, const std::set<std::string>& known) {
    for (const auto& [k, v] : obj.items()) {
      if (!known.count(k)) unsupported_.push_back(Join(prefix, k));
    }
  }
  absl::StatusOr<const json*> Object(const json& obj, const std::string& prefix, const char* key) {
    if (!obj.contains(key)) return nullptr;
    const json& v = obj[key];
    if (!v.is_object()) return Err(Join(prefix, key), absl::StrCat("expected an object, got ", v.dump()));
    return &v;
  }
  // nullopt when absent, or when "auto" has no flag value and `auto_may_stay_unset`.
  template <typename T>
  absl::StatusOr<std::optional<T>> Get(const json& obj, const std::string& prefix, const char* key,
                                       std::optional<T> flag, bool auto_may_stay_unset = false) {
    if (!obj.contains(key)) return std::optional<T>();
    const json& v = obj[key];
    const std::string path = Join(prefix, key);
    if (v.is_string() && v.get<std::string>() == "auto") {
      if (flag.has_value() || auto_may_stay_unset) return flag;
      return Err(path, "is \"auto\" but the trainer gave no value for it (set the matching flag)");
    }
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) return Err(path, absl::StrCat("expected true, false or \"auto\", got ", v.dump()));
      return std::optional<T>(v.get<bool>());
    } else if constexpr (std::is_same_v<T, int64_t>) {
      if (!v.is_number_integer()) return Err(path, absl::StrCat("expected an integer or \"auto\", got ", v.dump()));
      return std::optional<T>(v.get<int64_t>());
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) return Err(path, absl::StrCat("expected a string, got ", v.dump()));
      return std::optional<T>(v.get<std::string>());
    } else {
      if (!v.is_number() || !std::isfinite(v.get<double>())) {
        return Err(path, absl::StrCat("expected a number or \"auto\", got ", v.dump()));
      }
      return std::optional<T>(v.get<double>());
    }
  }

  const std::string& source() const { return source_; }
  std::vector<std::string>& unsupported() { return unsupported_; }

 private:
  std::string source_;
  std::vector<std::string> unsupported_;
};

absl::Status ParseScheduler(Reader& r, const json& root, const DeepSpeedAutoValues& f,
                            DeepSpeedConfig* c);
absl::Status ParsePrecision(Reader& r, const json& root, const DeepSpeedAutoValues& f,
                            DeepSpeedConfig* c);
absl::Status ParseZeroAndClipping(Reader& r, const json& root, const DeepSpeedAutoValues& f,
                                  DeepSpeedConfig* c);

// ConvForever's "diloco" section (deepspeed_diloco.cc).
absl::Status ParseDiLoCo(Reader& r, const json& root, DeepSpeedConfig* c);

}  // namespace cf::optim::internal

#endif  // CONVFOREVER_OPTIM_DEEPSPEED_READER_H_
