// The trainer's flags (name -> gflags type), learned from the trainer binary itself, so a sweep
// column named like any trainer flag is accepted and typed without a list kept by hand here.
//
// ParseHelpXml() reads the output of `train --helpxml` (gflags' <flag><name>..</name>..<type>..
// </type></flag> elements). QueryTrainerFlags() runs the binary with --helpxml and parses what it
// prints (gflags exits non-zero after help, so the exit status is not looked at; an output without
// flags is the error). Blocking; call before any child is started.
#ifndef CONVFOREVER_SWEEP_TRAINER_FLAGS_H_
#define CONVFOREVER_SWEEP_TRAINER_FLAGS_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cf::sweep {

// flag name -> gflags type ("bool", "int32", "int64", "uint64", "double", "string").
using TrainerFlags = std::map<std::string, std::string>;

absl::StatusOr<TrainerFlags> ParseHelpXml(absl::string_view xml);
absl::StatusOr<TrainerFlags> QueryTrainerFlags(const std::string& train_binary);

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_TRAINER_FLAGS_H_
