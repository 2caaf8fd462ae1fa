// Options of ZeroOptimizer (zero_optimizer.h), in a header of their own so that config parsing
// (zero_config.h) needs no LibTorch.
#ifndef CONVFOREVER_DISTRIBUTED_ZERO_OPTIONS_H_
#define CONVFOREVER_DISTRIBUTED_ZERO_OPTIONS_H_

namespace cf::distributed {

struct ZeroOptions {
  int stage = 1;                   // 1 or 2 for ZeroOptimizer; 0 (from configs) = plain DP
  bool offload_optimizer = false;  // master shard + optimizer state on the CPU
};

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_ZERO_OPTIONS_H_
