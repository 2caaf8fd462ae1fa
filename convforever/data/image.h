// The uint8 image every kernel in convforever/data takes and returns, and the Sample a source
// yields.
//
// Layout is HWC, row-major, interleaved channels (c = 1 gray or 3 RGB), `pixels.size() == h*w*c`.
// Images stay uint8 from decode through augmentation; conversion to float and normalization
// happen once per batch when it is assembled (see batch.h). Plain values, no sharing.
#ifndef CONVFOREVER_DATA_IMAGE_H_
#define CONVFOREVER_DATA_IMAGE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace cf::data {

struct Image {
  std::vector<uint8_t> pixels;  // [h, w, c] uint8
  int h = 0, w = 0, c = 0;

  Image() = default;
  Image(int h_, int w_, int c_) : pixels(static_cast<size_t>(h_) * w_ * c_), h(h_), w(w_), c(c_) {}
  bool empty() const { return pixels.empty(); }
  uint8_t* data() { return pixels.data(); }
  const uint8_t* data() const { return pixels.data(); }
  uint8_t& at(int y, int x, int ch) { return pixels[(static_cast<size_t>(y) * w + x) * c + ch]; }
  uint8_t at(int y, int x, int ch) const { return pixels[(static_cast<size_t>(y) * w + x) * c + ch]; }
};

// One example as the trainer sees it before batching: HWC uint8 pixels plus either a hard label
// (`label >= 0`) or a soft label (`soft_label.size() == num_classes`), and a key naming where it
// came from (file path, URL, "idx:<n>").
struct Sample {
  std::vector<uint8_t> pixels;  // [h, w, c] uint8
  int h = 0, w = 0, c = 0;
  int64_t label = -1;
  std::vector<float> soft_label;
  std::string key;
};

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_IMAGE_H_
