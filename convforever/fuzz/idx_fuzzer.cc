// IDX files (the MNIST family): ParseIdx, which OpenIdxSource runs on every image and label file,
// and, for inputs that parse as images, IdxSourceFromBytes, the source OpenIdxSource makes of the
// files it read (the input as images, with a labels file that matches it), every sample fetched.
// Checked on every input: ParseIdx's promises (1 to 4 dims, num_elements the product of the dims,
// every element inside the input) and that fetched images are what the header says.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "convforever/data/source.h"
#include "convforever/fuzz/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto idx = cf::data::ParseIdx(bytes, "fuzz.idx");
  if (!idx.ok()) return 0;
  const size_t ndim = idx->dims.size();
  CF_FUZZ_CHECK(ndim >= 1 && ndim <= 4);
  CF_FUZZ_CHECK(idx->header_bytes == static_cast<int64_t>(4 + 4 * ndim));
  unsigned __int128 product = 1;  // four dims < 2^32 each: no overflow here
  for (int64_t d : idx->dims) {
    CF_FUZZ_CHECK(d >= 0 && d <= 0xFFFFFFFFll);
    product *= static_cast<uint64_t>(d);
  }
  CF_FUZZ_CHECK(product == static_cast<unsigned __int128>(idx->num_elements));
  CF_FUZZ_CHECK(idx->header_bytes + idx->num_elements <= static_cast<int64_t>(size));
  uint8_t mix = 0;  // every promised element is there (ASan sees a read past the end)
  for (int64_t i = 0; i < idx->num_elements; ++i) mix ^= data[idx->header_bytes + i];
  (void)mix;

  // Images: the input as the images file, with a labels file of one label per image.
  const int64_t n = idx->dims[0];
  if (ndim < 3 || n > 4096) return 0;
  std::string labels = {0, 0, 0x08, 1, static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                        static_cast<char>(n >> 8), static_cast<char>(n)};
  for (int64_t i = 0; i < n; ++i) labels.push_back(static_cast<char>(i < size ? data[i] : 0));
  auto src = cf::data::IdxSourceFromBytes(std::string(bytes), "images.idx", std::move(labels), "labels.idx", "idx");
  if (!src.ok()) return 0;
  CF_FUZZ_CHECK((*src)->size() == n);
  const int64_t h = idx->dims[1], w = idx->dims[2], c = ndim == 4 ? idx->dims[3] : 1;
  for (int64_t i = 0; i < n; ++i) {
    auto got = (*src)->Fetch({i});
    CF_FUZZ_CHECK(got.size() == 1 && got[0].record.ok());
    const cf::data::Record& r = *got[0].record;
    CF_FUZZ_CHECK(r.image.h == h && r.image.w == w && r.image.c == c);
    CF_FUZZ_CHECK(r.image.pixels.size() == static_cast<size_t>(h * w * c));
    CF_FUZZ_CHECK(r.label >= 0 && r.label < (*src)->num_classes());
  }
  return 0;
}
