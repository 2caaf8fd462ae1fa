// How many intra-op threads LibTorch gets in one trainer process. The machine's cores are shared
// by every rank launched on it (torchrun's LOCAL_WORLD_SIZE, SLURM's tasks per node, Open MPI's
// local size: distributed/launch_env.h), so each rank takes cores / local ranks, less its data
// workers beyond the first, at least 1; with 2 cores or fewer per rank, 1 (OpenMP and OpenBLAS
// threads compete; one was measured faster for small ConvNeXts). An explicit choice wins: the
// trainer's --threads, else OMP_NUM_THREADS (which torchrun sets to 1 for several local ranks).
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
