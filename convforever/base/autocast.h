// Autocast (mixed precision) as a scope: LibTorch's C++ API has the per-device switches but no
// equivalent of Python's `with torch.autocast(...)`; AutocastGuard is that.
//
// Header-only and light: it pulls <ATen/autocast_mode.h>, not <torch/torch.h>.
#ifndef CONVFOREVER_BASE_AUTOCAST_H_
#define CONVFOREVER_BASE_AUTOCAST_H_

#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace cf::base {

inline bool IsAutocastEnabled(c10::DeviceType device) {
  return at::autocast::is_autocast_enabled(device);
}

// RAII equivalent of Python's `with torch.autocast(device_type, dtype)`: enables autocast for
// `device` with `dtype` for its lifetime and restores the previous state; leaving the outermost
// scope clears the cast cache, as Python does. `enabled=false` makes it a no-op, so call sites
// need no branch.
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, c10::ScalarType dtype, bool enabled = true)
      : device_(device),
        active_(enabled),
        previous_enabled_(IsAutocastEnabled(device)),
        previous_dtype_(at::autocast::get_autocast_dtype(device)) {
    if (!active_) return;
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::set_autocast_dtype(device_, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!active_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_, previous_enabled_);
    at::autocast::set_autocast_dtype(device_, previous_dtype_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool active_;
  bool previous_enabled_;
  c10::ScalarType previous_dtype_;
};

}  // namespace cf::base

#endif  // CONVFOREVER_BASE_AUTOCAST_H_
