// In-memory sources whose pixels are already decoded: IDX (MNIST family), CIFAR-10/100 binaries,
// and the synthetic generator.
#include <algorithm>
#include <cmath>
#include <limits>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/rng.h"
#include "convforever/data/sources_internal.h"

namespace cf::data {
namespace {

namespace fs = std::filesystem;

// The largest image height or width taken from an IDX file (MNIST's are 28).
constexpr int64_t kMaxIdxSide = 1 << 16;

// A source over n fixed-size uint8 images held in one buffer, with a label per image.
class DenseSource : public Source {
 public:
  DenseSource(std::string name, int h, int w, int c, bool planar, int classes)
      : name_(std::move(name)), h_(h), w_(w), c_(c), planar_(planar), classes_(classes) {}
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  int num_classes() const override { return classes_; }
  std::vector<std::string> class_names() const override { return names_; }
  std::vector<FetchResult> Fetch(absl::Span<const int64_t> indices) override {
    std::vector<FetchResult> out;
    const size_t px = static_cast<size_t>(h_) * w_ * c_;
    for (int64_t i : indices) {
      Record r;
      r.image = Image(h_, w_, c_);
      const auto* src = reinterpret_cast<const uint8_t*>(pixels_.data()) + offsets_[i];
      if (planar_) {  // CIFAR stores CHW planes
        const size_t plane = static_cast<size_t>(h_) * w_;
        for (size_t p = 0; p < plane; ++p) {
          for (int ch = 0; ch < c_; ++ch) r.image.pixels[p * c_ + ch] = src[ch * plane + p];
        }
      } else {
        std::copy(src, src + px, r.image.pixels.begin());
      }
      r.label = labels_[i];
      r.key = absl::StrCat(name_, ":", i);
      out.push_back({std::move(r), ""});
    }
    return out;
  }
  std::string pixels_;
  std::vector<size_t> offsets_;
  std::vector<int64_t> labels_;
  std::vector<std::string> names_;  // empty or classes_ entries

 private:
  std::string name_;
  int h_, w_, c_;
  bool planar_;
  int classes_;
};

uint32_t BigEndian32(absl::string_view b, size_t at) {
  return (uint32_t(uint8_t(b[at])) << 24) | (uint32_t(uint8_t(b[at + 1])) << 16) |
         (uint32_t(uint8_t(b[at + 2])) << 8) | uint32_t(uint8_t(b[at + 3]));
}

std::string FindIdx(const std::string& dir, const std::string& stem) {
  for (const char* ext : {".gz", ""}) {
    const std::string p = dir + "/" + stem + ext;
    if (fs::exists(p)) return p;
  }
  return dir + "/" + stem + ".gz";
}

// Zalando's label names (github.com/zalandoresearch/fashion-mnist, README "Labels").
std::vector<std::string> FashionMnistClassNames() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
}

// The label names the CIFAR binary archives ship beside the batches (cifar-10: batches.meta.txt;
// cifar-100: fine_label_names.txt / coarse_label_names.txt), one per line; none when absent.
absl::StatusOr<std::vector<std::string>> CifarClassNames(const std::string& dir, const DatasetSpec& spec,
                                                        int classes) {
  const std::string file = spec.kind == "cifar10" ? "batches.meta.txt"
                           : spec.cifar100_labels == "fine" ? "fine_label_names.txt"
                                                            : "coarse_label_names.txt";
  if (!fs::exists(dir + "/" + file)) return std::vector<std::string>{};
  ASSIGN_OR_RETURN(std::vector<std::string> names, ReadClassList(dir + "/" + file));
  if (static_cast<int>(names.size()) != classes) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/", file, " names ", names.size(),
                                                   " classes, the data has ", classes));
  }
  return names;
}

}  // namespace

absl::StatusOr<IdxArray> ParseIdx(absl::string_view bytes, const std::string& source) {
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, " is not an IDX file (bad magic)"));
  }
  if (uint8_t(bytes[2]) != 0x08) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": IDX element type 0x", absl::Hex(uint8_t(bytes[2])),
                                                   " unsupported (only 0x08 uint8)"));
  }
  const int ndim = uint8_t(bytes[3]);
  if (ndim < 1 || ndim > 4 || bytes.size() < 4 + 4 * static_cast<size_t>(ndim)) {
    return absl::DataLossError(absl::StrCat(source, ": truncated IDX header (", ndim, " dims)"));
  }
  IdxArray out;
  out.header_bytes = 4 + 4 * ndim;
  for (int d = 0; d < ndim; ++d) out.dims.push_back(BigEndian32(bytes, 4 + 4 * d));  // each < 2^32
  // The dims are untrusted: four of them multiply to up to 2^128, so the product is formed with
  // an overflow check before it is compared with the size of the file.
  constexpr int64_t kMaxTotal = std::numeric_limits<int64_t>::max() - 4 - 4 * 4;
  const bool empty = std::count(out.dims.begin(), out.dims.end(), 0) > 0;
  int64_t total = empty ? 0 : 1;
  for (size_t d = 0; total > 0 && d < out.dims.size(); ++d) {
    const int64_t dim = out.dims[d];
    if (total > kMaxTotal / dim) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": absurd IDX dims ", absl::StrJoin(out.dims, "x"),
                                                     " (file of ", bytes.size(), " bytes)"));
    }
    total *= dim;
  }
  if (total > static_cast<int64_t>(bytes.size()) - out.header_bytes) {
    return absl::DataLossError(absl::StrCat("truncated IDX file ", source, ": expected ", out.header_bytes + total,
                                            " bytes (decompressed) for dims ", absl::StrJoin(out.dims, "x"),
                                            ", got ", bytes.size()));
  }
  out.num_elements = total;
  return out;
}

absl::StatusOr<CifarBatch> ParseCifarBatch(absl::string_view bytes, const DatasetSpec& spec,
                                           const std::string& source) {
  const bool c100 = spec.kind == "cifar100";
  if (!c100 && spec.kind != "cifar10") {
    return absl::InvalidArgumentError("CIFAR kind must be cifar10 or cifar100, got '" + spec.kind + "'");
  }
  if (c100 && spec.cifar100_labels != "fine" && spec.cifar100_labels != "coarse") {
    return absl::InvalidArgumentError("cifar100_labels must be fine or coarse, got '" + spec.cifar100_labels + "'");
  }
  CifarBatch out;
  out.label_bytes = c100 ? 2 : 1;
  out.record_bytes = out.label_bytes + 3072;
  const size_t record = out.record_bytes;
  const int classes = c100 ? (spec.cifar100_labels == "fine" ? 100 : 20) : 10;
  if (bytes.empty() || bytes.size() % record != 0) {
    return absl::DataLossError(absl::StrCat(
        "truncated CIFAR file ", source, ": ", bytes.size(), " bytes is not a whole number of ", record,
        "-byte records (expected ", (bytes.size() / record + 1) * record, " bytes for ",
        bytes.size() / record + 1, " records)"));
  }
  const size_t label_at = c100 && spec.cifar100_labels == "fine" ? 1 : 0;
  for (size_t off = 0; off < bytes.size(); off += record) {
    const int label = uint8_t(bytes[off + label_at]);
    if (label >= classes) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": record ", off / record, " has label ", label,
                                                     " >= ", classes, " (wrong kind cifar10/cifar100?)"));
    }
    out.labels.push_back(label);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Source>> OpenIdxSource(const DatasetSpec& spec) {
  std::string images_path, labels_path;
  if (fs::is_directory(spec.path)) {
    const std::string prefix = spec.split == "train" ? "train" : "t10k";
    images_path = FindIdx(spec.path, prefix + "-images-idx3-ubyte");
    labels_path = FindIdx(spec.path, prefix + "-labels-idx1-ubyte");
  } else {
    images_path = spec.path;
    labels_path = spec.path;
    const size_t at = labels_path.find("images-idx3");
    if (at == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("IDX path ", spec.path,
                                                     " is neither a directory nor an *images-idx3* file"));
    }
    labels_path.replace(at, 11, "labels-idx1");
  }
  ASSIGN_OR_RETURN(std::string images, ReadMaybeGzipFile(images_path));
  ASSIGN_OR_RETURN(std::string labels, ReadMaybeGzipFile(labels_path));
  return IdxSourceFromBytes(std::move(images), images_path, std::move(labels), labels_path, spec.kind);
}

absl::StatusOr<std::unique_ptr<Source>> IdxSourceFromBytes(std::string images, const std::string& images_path,
                                                           std::string labels, const std::string& labels_path,
                                                           const std::string& kind) {
  ASSIGN_OR_RETURN(IdxArray idx_images, ParseIdx(images, images_path));
  ASSIGN_OR_RETURN(IdxArray idx_labels, ParseIdx(labels, labels_path));
  const std::vector<int64_t>& idims = idx_images.dims;
  if (idims.size() < 3 || idx_labels.dims.size() != 1 || idims[0] != idx_labels.dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat("IDX files disagree: ", images_path, " has dims ",
                                                   absl::StrJoin(idims, "x"), " (want N x H x W [x C]), ",
                                                   labels_path, " has dims ", absl::StrJoin(idx_labels.dims, "x"),
                                                   " (want N)"));
  }
  // ParseIdx bounds the product of the dims by the file size, but not a dim next to a zero one.
  const int64_t c_dim = idims.size() == 4 ? idims[3] : 1;
  if (idims[1] < 1 || idims[1] > kMaxIdxSide || idims[2] < 1 || idims[2] > kMaxIdxSide ||
      (c_dim != 1 && c_dim != 3)) {
    return absl::InvalidArgumentError(absl::StrCat(images_path, ": IDX images of ", absl::StrJoin(idims, "x"),
                                                   " are not N x H x W [x 1 or 3] with H, W in [1, ",
                                                   kMaxIdxSide, "]"));
  }
  const int h = idims[1], w = idims[2], c = c_dim;
  const size_t header = idx_images.header_bytes, px = static_cast<size_t>(h) * w * c;
  int max_label = 0;
  for (int64_t i = 0; i < idims[0]; ++i) max_label = std::max<int>(max_label, uint8_t(labels[idx_labels.header_bytes + i]));
  auto src = std::make_unique<DenseSource>("idx", h, w, c, false, std::max(10, max_label + 1));
  for (int64_t i = 0; i < idims[0]; ++i) {
    src->offsets_.push_back(header + i * px);
    src->labels_.push_back(uint8_t(labels[idx_labels.header_bytes + i]));
  }
  src->pixels_ = std::move(images);
  if (kind == "fashion_mnist" && src->num_classes() == 10) src->names_ = FashionMnistClassNames();
  return std::unique_ptr<Source>(std::move(src));
}

absl::StatusOr<std::unique_ptr<Source>> OpenCifarSource(const DatasetSpec& spec) {
  const bool c100 = spec.kind == "cifar100";
  if (c100 && spec.cifar100_labels != "fine" && spec.cifar100_labels != "coarse") {
    return absl::InvalidArgumentError("cifar100_labels must be fine or coarse, got '" + spec.cifar100_labels + "'");
  }
  std::string dir = spec.path;
  for (const char* sub : {"cifar-10-batches-bin", "cifar-100-binary"}) {
    if (fs::is_directory(dir + "/" + sub)) dir = dir + "/" + sub;
  }
  std::vector<std::string> files;
  if (c100) {
    files = {dir + (spec.split == "train" ? "/train.bin" : "/test.bin")};
  } else if (spec.split == "train") {
    for (int b = 1; b <= 5; ++b) files.push_back(absl::StrCat(dir, "/data_batch_", b, ".bin"));
  } else {
    files = {dir + "/test_batch.bin"};
  }
  const int classes = c100 ? (spec.cifar100_labels == "fine" ? 100 : 20) : 10;
  auto src = std::make_unique<DenseSource>(spec.kind, 32, 32, 3, true, classes);
  for (const std::string& f : files) {
    ASSIGN_OR_RETURN(std::string data, ReadFile(f));
    ASSIGN_OR_RETURN(CifarBatch batch, ParseCifarBatch(data, spec, f));
    const size_t base = src->pixels_.size();
    for (size_t i = 0; i < batch.labels.size(); ++i) {
      src->labels_.push_back(batch.labels[i]);
      src->offsets_.push_back(base + i * batch.record_bytes + batch.label_bytes);
    }
    src->pixels_ += data;
  }
  ASSIGN_OR_RETURN(src->names_, CifarClassNames(dir, spec, classes));
  return std::unique_ptr<Source>(std::move(src));
}

namespace {

// Class k is a colored sinusoidal grating with its own frequency, orientation and phase; samples
// add uniform noise (and a small random shift) so the task is learnable but not trivial.
class SyntheticSource : public Source {
 public:
  explicit SyntheticSource(const DatasetSpec& s) : s_(s) {}
  int64_t size() const override { return s_.synthetic_samples; }
  int num_classes() const override { return s_.synthetic_classes; }
  std::vector<FetchResult> Fetch(absl::Span<const int64_t> indices) override {
    std::vector<FetchResult> out;
    for (int64_t i : indices) out.push_back({Make(i), ""});
    return out;
  }

 private:
  Record Make(int64_t i) const {
    Rng rng(SeedFrom({s_.synthetic_seed, static_cast<uint64_t>(i), 0x53594eull}));
    const int n = s_.synthetic_size, c = s_.synthetic_channels, k_count = s_.synthetic_classes;
    Record r;
    r.image = Image(n, n, c);
    r.key = absl::StrCat("synthetic:", i);
    if (s_.synthetic_pure_noise) {
      r.label = static_cast<int64_t>(rng.Below(k_count));
      for (auto& v : r.image.pixels) v = static_cast<uint8_t>(rng.Below(256));
      return r;
    }
    const int k = static_cast<int>(i % k_count);
    r.label = k;
    Rng cls(SeedFrom({0xC1A55ull, static_cast<uint64_t>(k)}));
    const double angle = cls.Uniform(0, M_PI), freq = 1.0 + cls.Uniform(0, 3.0);
    const double fx = std::cos(angle) * freq / n, fy = std::sin(angle) * freq / n;
    double phase[4];
    for (double& p : phase) p = cls.Uniform(0, 2 * M_PI);
    const double shift = rng.Uniform(-0.5, 0.5), noise = std::clamp(s_.synthetic_noise, 0.0, 1.0);
    for (int y = 0; y < n; ++y) {
      for (int x = 0; x < n; ++x) {
        for (int ch = 0; ch < c; ++ch) {
          const double pattern = std::sin(2 * M_PI * (fx * x + fy * y) + phase[ch % 4] + shift);
          const double v = 127.5 + 127.5 * ((1 - noise) * pattern + noise * rng.Uniform(-1, 1));
          r.image.at(y, x, ch) = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
        }
      }
    }
    return r;
  }
  DatasetSpec s_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Source>> OpenSyntheticSource(const DatasetSpec& spec) {
  if (spec.synthetic_samples <= 0 || spec.synthetic_classes <= 0 || spec.synthetic_size <= 0 ||
      (spec.synthetic_channels != 1 && spec.synthetic_channels != 3)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "synthetic dataset needs samples > 0, classes > 0, size > 0 and 1 or 3 channels; got ",
        spec.synthetic_samples, ", ", spec.synthetic_classes, ", ", spec.synthetic_size, ", ",
        spec.synthetic_channels));
  }
  return std::unique_ptr<Source>(std::make_unique<SyntheticSource>(spec));
}

}  // namespace cf::data
