// safetensors reader and writer (huggingface/safetensors format; see /work/shared/FORMATS.md):
// u64 little-endian header length N, N bytes of JSON
// `{"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}}`,
// then the data buffer, tensors C-order little-endian.
//
// The reader is strict and never crashes on bad input: a header length beyond the file or over
// 100 MB, bad JSON, a non-object entry, unknown dtype, negative or non-integer shape, sizes that
// overflow, offsets that overlap, leave holes, do not start at 0 or do not end at the buffer's end,
// `end - begin != numel * dtype size`, duplicate names and non-string metadata are all errors
// naming the file and the offending tensor. Tensors come back as fresh CPU tensors (they own their
// memory). The writer pads the header to a multiple of 8 and writes atomically (temp + rename).
// Thread-compatible (no shared state).
#ifndef CONVFOREVER_MODELS_SAFETENSORS_H_
#define CONVFOREVER_MODELS_SAFETENSORS_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cf::models {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct SafetensorsFile {
  NamedTensors tensors;  // in order of their data offsets
  std::map<std::string, std::string> metadata;
};

// Writes `tensors` (any device, dtype among F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL; copied to CPU
// contiguous) to `path` atomically. Names must be unique and non-empty and not "__metadata__".
absl::Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                              const std::map<std::string, std::string>& metadata);

// Serializes to bytes (what WriteSafetensors writes).
absl::StatusOr<std::string> SerializeSafetensors(const NamedTensors& tensors,
                                                 const std::map<std::string, std::string>& metadata);

absl::StatusOr<NamedTensors> ReadSafetensors(const std::string& path);
absl::StatusOr<SafetensorsFile> ReadSafetensorsFile(const std::string& path);

// Parses bytes already in memory; `source` names them in errors (a path, "<buffer>").
absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes,
                                                 const std::string& source = "<buffer>");

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_SAFETENSORS_H_
