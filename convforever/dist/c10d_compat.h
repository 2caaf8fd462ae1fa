// The c10d types that moved between LibTorch 1.13 and 2.x, kept in one place for this package:
// in 2.x the concrete process groups (ProcessGroupGloo, ProcessGroupNCCL) derive from
// c10d::Backend instead of c10d::ProcessGroup, and their collectives are reached through it.
// Header-only; include it instead of naming either base directly.
#ifndef CONVFOREVER_DIST_C10D_COMPAT_H_
#define CONVFOREVER_DIST_C10D_COMPAT_H_

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include "convforever/base/torch_compat.h"

#if CF_TORCH_VERSION_AT_LEAST(2, 0)
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif

namespace cf::dist::compat {

#if CF_TORCH_VERSION_AT_LEAST(2, 0)
using ProcessGroupBase = c10d::Backend;
#else
using ProcessGroupBase = c10d::ProcessGroup;
#endif
using WorkPtr = c10::intrusive_ptr<c10d::Work>;

}  // namespace cf::dist::compat

#endif  // CONVFOREVER_DIST_C10D_COMPAT_H_
