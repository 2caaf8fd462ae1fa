// The GPU table: published peak throughput, memory and a typical rental price per GPU model,
// read from a small CSV file users edit (convforever/plan/gpus.csv documents the columns and
// where the numbers come from).
//
// Format: '#' comment lines and blank lines anywhere; one header line naming exactly the columns
// name,bf16_tflops,fp16_tflops,fp32_tflops,tf32_tflops,memory_gb,usd_per_hour (in that order);
// then one GPU a row. Names are lower case [a-z0-9_]; numbers are >= 0 (a 0 TFLOPS cell means the
// GPU lacks that format); memory must be > 0. Every bad row is an InvalidArgument error naming
// the file, the line number and the column. Pure functions; thread-safe.
#ifndef CONVFOREVER_PLAN_GPUS_H_
#define CONVFOREVER_PLAN_GPUS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cf::plan {

struct GpuSpec {
  std::string name;
  double bf16_tflops = 0;  // dense tensor-core, FP32 accumulate; 0 = unsupported
  double fp16_tflops = 0;
  double fp32_tflops = 0;  // CUDA cores, no TF32
  double tf32_tflops = 0;
  double memory_gb = 0;    // 1e9 bytes
  double usd_per_hour = 0;
};

// Parses the CSV text; `source` names it in errors (a path, or "<string>").
absl::StatusOr<std::vector<GpuSpec>> ParseGpuTable(absl::string_view text,
                                                   const std::string& source);

// Reads and parses a file (NotFound naming the path when it cannot be read).
absl::StatusOr<std::vector<GpuSpec>> ReadGpuTable(const std::string& path);

// The row named `name` (case-insensitive); NotFound lists the names the table has.
absl::StatusOr<GpuSpec> FindGpu(const std::vector<GpuSpec>& table, const std::string& name,
                                const std::string& source);

// Peak dense FLOP/s of `gpu` for a training precision: bf16/fp16 -> the tensor-core column,
// fp32 -> the plain fp32 column. InvalidArgument when the GPU lacks the format (e.g. t4 + bf16).
absl::StatusOr<double> PeakFlops(const GpuSpec& gpu, const std::string& precision);

}  // namespace cf::plan

#endif  // CONVFOREVER_PLAN_GPUS_H_
