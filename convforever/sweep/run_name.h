// Run names: `<row>-<short key values>-<hash>`, e.g. `03-d32-b16x1-lr1e-4-5f0c2a91`.
//
// <row> is the 0-based data row, at least 2 digits. The short part names the values people sort
// by, taken from the flags the row trains with: d<--depth>, b<--micro_batch_size>x
// <--gradient_accumulation_steps>, lr<--lr> (each only when set; characters other than letters,
// digits, '.', '+' and '-' become '_'). <hash> is 8 hex digits of a 64-bit FNV-1a hash of the
// run's identity (everything that decides what it trains; see plan.h), so two rows, or one row
// before and after an edit, never share a run directory. Pure functions.
#ifndef CONVFOREVER_SWEEP_RUN_NAME_H_
#define CONVFOREVER_SWEEP_RUN_NAME_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "convforever/sweep/column_mapping.h"

namespace cf::sweep {

uint64_t Fnv1a64(absl::string_view bytes);

// `flags`: the row's effective flags (later entries win over earlier ones of the same name).
std::string RunName(size_t row, const std::vector<FlagValue>& flags, absl::string_view identity);

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_RUN_NAME_H_
