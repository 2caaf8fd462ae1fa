// What a run directory says about its row: the trainer's summary.json (see
// convforever/train/summary.h) and whether a complete checkpoint exists.
//
// A row is DONE when summary.json says "completed": true; it is then never started again. A run
// with a checkpoint but no completed summary is resumed by the trainer's --resume=auto; one with
// neither starts from scratch. A summary.json that does not parse is reported as an error (the
// trainer writes it atomically, so that means someone else wrote it). Reads only.
#ifndef CONVFOREVER_SWEEP_RUN_STATUS_H_
#define CONVFOREVER_SWEEP_RUN_STATUS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace cf::sweep {

enum class RowStatus { kPending, kRunning, kDone, kFailed };

// "PENDING", "RUNNING", "DONE", "FAILED" (the results.csv words).
const char* StatusName(RowStatus status);

// The run's summary.json, or nullopt when it has none.
absl::StatusOr<std::optional<nlohmann::json>> ReadRunSummary(const std::string& run_dir);

// summary.json exists and says completed: true.
bool IsCompleted(const std::optional<nlohmann::json>& summary);

// The newest checkpoints/step-*/ with a DONE marker, or "" when there is none.
std::string LatestCheckpoint(const std::string& run_dir);

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_RUN_STATUS_H_
