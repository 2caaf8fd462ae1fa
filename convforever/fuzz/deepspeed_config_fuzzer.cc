// ParseDeepSpeedConfig on inline JSON text. The first input byte picks the trainer's flags that
// "auto" resolves to (bit 0: micro batch and accumulation, bit 1: optimizer values, bit 2:
// schedule steps, bit 3: fp16; bits 4-5: world size 1, 2, 8 or 3); the rest is the config. A
// config must start with '{' to be read as text rather than opened as a path, so other inputs
// get one prepended.
//
// Promises checked on every accepted config: DeepSpeed's batch rule holds exactly
// (train = micro x accum x world, all > 0); optimizer values are in their documented ranges;
// fp16 and bf16 are not both on; the ZeRO stage is 0..3 and offload is none or cpu.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "convforever/optim/deepspeed_config.h"
#include "glog/logging.h"
#include "convforever/fuzz/check.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  FLAGS_minloglevel = google::GLOG_ERROR;  // the one warning about unsupported keys
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '{') text.insert(0, "{");

  cf::optim::DeepSpeedAutoValues flags;
  static constexpr int64_t kWorld[] = {1, 2, 8, 3};
  flags.world_size = kWorld[(mode >> 4) & 3];
  if (mode & 1) {
    flags.micro_batch = 32;
    flags.grad_accum = 4;
  }
  if (mode & 2) {
    flags.lr = 4e-3;
    flags.weight_decay = 0.05;
    flags.beta1 = 0.9;
    flags.beta2 = 0.999;
    flags.eps = 1e-8;
    flags.max_grad_norm = 1.0;
  }
  if (mode & 4) {
    flags.warmup_steps = 100;
    flags.total_steps = 10000;
  }
  if (mode & 8) flags.fp16 = true;

  const auto config = cf::optim::ParseDeepSpeedConfig(text, flags);
  if (!config.ok()) return 0;
  const cf::optim::DeepSpeedConfig& c = *config;
  if (c.train_batch_size <= 0 || c.micro_batch_per_gpu <= 0 || c.gradient_accumulation_steps <= 0 ||
      c.world_size != flags.world_size) {
    CF_FUZZ_FAIL("batch sizes positive, world size as given");
  }
  int64_t product;
  if (__builtin_mul_overflow(c.micro_batch_per_gpu, c.gradient_accumulation_steps, &product) ||
      __builtin_mul_overflow(product, c.world_size, &product) || product != c.train_batch_size) {
    CF_FUZZ_FAIL("train_batch_size = micro x accumulation x world");
  }
  if (c.has_optimizer) {
    const auto& o = c.optimizer;
    if (!(o.lr >= 0) || !(o.eps >= 0) || !(o.weight_decay >= 0) || !(o.beta1 >= 0 && o.beta1 < 1) ||
        !(o.beta2 >= 0 && o.beta2 < 1) || !(o.momentum >= 0)) {
      CF_FUZZ_FAIL("optimizer hyper-parameters in range");
    }
  }
  CF_FUZZ_FAIL_IF(c.fp16 && c.bf16);
  CF_FUZZ_FAIL_IF(c.loss_scaler.enabled != c.fp16);
  CF_FUZZ_FAIL_IF(c.zero_stage < 0 || c.zero_stage > 3);
  CF_FUZZ_FAIL_IF(c.offload_optimizer_device != "none" && c.offload_optimizer_device != "cpu");
  CF_FUZZ_FAIL_IF(!(c.gradient_clipping >= 0));
  return 0;
}
