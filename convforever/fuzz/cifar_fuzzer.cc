// CIFAR binary batches: ParseCifarBatch, which OpenCifarSource runs on every batch file, with each
// of the three record layouts (CIFAR-10; CIFAR-100 with fine or coarse labels) over the same bytes.
// Checked on every input: the batch is a whole, non-zero number of records of the layout's size,
// with one label per record, each below the layout's class count.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "convforever/data/source.h"
#include "convforever/fuzz/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  struct Layout {
    const char* kind;
    const char* labels;
    int64_t label_bytes;
    int classes;
  };
  for (const Layout& l : {Layout{"cifar10", "fine", 1, 10}, Layout{"cifar100", "fine", 2, 100},
                          Layout{"cifar100", "coarse", 2, 20}}) {
    cf::data::DatasetSpec spec{l.kind, "fuzz"};
    spec.cifar100_labels = l.labels;
    auto batch = cf::data::ParseCifarBatch(bytes, spec, "fuzz.bin");
    if (!batch.ok()) continue;
    CF_FUZZ_FAIL_IF(batch->label_bytes != l.label_bytes || batch->record_bytes != l.label_bytes + 3072);
    CF_FUZZ_FAIL_IF(batch->labels.empty() || batch->labels.size() * batch->record_bytes != size);
    for (size_t i = 0; i < batch->labels.size(); ++i) {
      const int label = batch->labels[i];
      CF_FUZZ_FAIL_IF(label < 0 || label >= l.classes);
      // The label is the record's own byte (CIFAR-100: the second one for fine labels).
      const size_t at = i * batch->record_bytes + (l.label_bytes == 2 && std::string(l.labels) == "fine");
      CF_FUZZ_FAIL_IF(data[at] != label);
    }
  }
  return 0;
}
