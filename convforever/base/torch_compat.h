// The few LibTorch APIs that differ between Debian's LibTorch 1.13 (CPU, this build machine) and
// the 2.x LibTorch inside CUDA pip wheels (GPU machines). Everything version-dependent goes through
// here so the rest of the code compiles against both unchanged.
//
// Header-only and light: it pulls <ATen/autocast_mode.h> and <torch/version.h>, not <torch/torch.h>.
#ifndef CONVFOREVER_BASE_TORCH_COMPAT_H_
#define CONVFOREVER_BASE_TORCH_COMPAT_H_

#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>
#include <torch/version.h>

#define CF_TORCH_VERSION_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||             \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace cf::base {

// LibTorch 2.4 replaced the per-device autocast functions (set_cpu_enabled, ...) with ones that
// take a DeviceType.
inline bool IsAutocastEnabled(c10::DeviceType device) {
#if CF_TORCH_VERSION_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

inline void SetAutocastEnabled(c10::DeviceType device, bool enabled) {
#if CF_TORCH_VERSION_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(enabled);
  } else {
    at::autocast::set_enabled(enabled);
  }
#endif
}

inline c10::ScalarType GetAutocastDtype(c10::DeviceType device) {
#if CF_TORCH_VERSION_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype()
                                        : at::autocast::get_autocast_gpu_dtype();
#endif
}

inline void SetAutocastDtype(c10::DeviceType device, c10::ScalarType dtype) {
#if CF_TORCH_VERSION_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
#endif
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
        previous_dtype_(GetAutocastDtype(device)) {
    if (!active_) return;
    SetAutocastEnabled(device_, true);
    SetAutocastDtype(device_, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!active_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    SetAutocastEnabled(device_, previous_enabled_);
    SetAutocastDtype(device_, previous_dtype_);
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

#endif  // CONVFOREVER_BASE_TORCH_COMPAT_H_
