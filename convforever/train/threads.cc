#include "convforever/train/threads.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include <string>

#include "absl/strings/str_cat.h"

namespace cf::train {

ThreadChoice ChooseIntraOpThreads(const ThreadInputs& in) {
  if (in.threads_flag > 0) return {in.threads_flag, "set by --threads"};
  int omp = 0;
  if (in.omp_num_threads && absl::SimpleAtoi(*in.omp_num_threads, &omp) && omp > 0) {
    return {omp, "set by OMP_NUM_THREADS"};
  }
  const int local = std::max(1, in.local_world_size);
  const int per_rank = std::max(1, std::max(1, in.cores) / local);
  const std::string share = absl::StrCat(in.cores, " cores / ", local, " local rank",
                                         local == 1 ? "" : "s", " = ", per_rank, " per rank, ");
  if (in.light_data) {
    return {per_rank, absl::StrCat(share, "in-memory data the ", in.num_workers,
                                   " data workers barely use (--threads or OMP_NUM_THREADS to "
                                   "override)")};
  }
  const int threads = per_rank <= 2 ? 1 : std::max(1, per_rank - std::max(0, in.num_workers - 1));
  return {threads, absl::StrCat(share, in.num_workers,
                                " data workers (--threads or OMP_NUM_THREADS to override)")};
}

}  // namespace cf::train
