// Reads the `zero_optimization` section of a DeepSpeed JSON config into ZeroOptions, so a run can
// select ZeRO the way DeepSpeed users do. Understood keys: `stage` (0, 1, 2; 0 or a missing
// section = plain data parallel, returned as stage 0), `offload_optimizer.device` ("cpu" or
// "none"). Other keys of the section (contiguous_gradients, overlap_comm, bucket sizes, ...) are
// DeepSpeed tuning knobs with no equivalent here and are ignored. Stage 3, NVMe offload or a
// malformed value is an error naming the file and key. Pure functions; thread-safe.
#ifndef CONVFOREVER_DISTRIBUTED_ZERO_CONFIG_H_
#define CONVFOREVER_DISTRIBUTED_ZERO_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convforever/distributed/zero_options.h"

namespace cf::distributed {

// `source` names the text in error messages (usually its path).
absl::StatusOr<ZeroOptions> ZeroOptionsFromDeepSpeedJson(absl::string_view json_text,
                                                         absl::string_view source);
absl::StatusOr<ZeroOptions> ZeroOptionsFromDeepSpeedConfigFile(const std::string& path);

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_ZERO_CONFIG_H_
