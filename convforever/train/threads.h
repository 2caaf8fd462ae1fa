// How many intra-op threads LibTorch gets in one trainer process. The machine's cores are shared
// by every rank launched on it (torchrun's LOCAL_WORLD_SIZE, SLURM's tasks per node, Open MPI's
// local size: distributed/launch_env.h), so each rank takes cores / local ranks, less its data
// workers beyond the first, at least 1; with 2 cores or fewer per rank, 1, leaving the other core
// to the data workers. Light data (in memory, nothing to decode: IDX, CIFAR binaries, synthetic,
// no RandAugment) leaves the workers mostly asleep, so the rank's every core computes: the default
// recipe on 2 cores ran 1.37x faster with 2 intra-op threads than with 1 (691 -> 945 images/s, as
// AVX2; OMP_WAIT_POLICY=PASSIVE or binding threads to cores did not help). An explicit choice
// wins: the trainer's --threads, else OMP_NUM_THREADS (which torchrun sets to 1 for several local
// ranks).
// Pure; thread-safe.
#ifndef CONVFOREVER_TRAIN_THREADS_H_
#define CONVFOREVER_TRAIN_THREADS_H_

#include <optional>
#include <string>

namespace cf::train {

struct ThreadInputs {
  int cores = 1;             // hardware threads of the machine
  int local_world_size = 1;  // ranks of this job on this machine
  int num_workers = 0;       // the loader's decode/augment threads
  bool light_data = false;   // in memory, nothing to decode: the workers mostly sleep
  int threads_flag = 0;      // --threads; 0 = choose
  std::optional<std::string> omp_num_threads;  // the environment's OMP_NUM_THREADS, if set
};

struct ThreadChoice {
  int threads = 1;
  std::string why;  // for the log line: which rule chose it
};

ThreadChoice ChooseIntraOpThreads(const ThreadInputs& in);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_THREADS_H_
