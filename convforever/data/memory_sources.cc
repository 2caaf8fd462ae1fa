// In-memory sources whose pixels are already decoded: IDX (MNIST family), CIFAR-10/100 binaries,
// and the synthetic generator.
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/rng.h"
#include "convforever/data/sources_internal.h"

namespace cf::data {
namespace {

namespace fs = std::filesystem;

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

uint32_t BigEndian32(const std::string& b, size_t at) {
  return (uint32_t(uint8_t(b[at])) << 24) | (uint32_t(uint8_t(b[at + 1])) << 16) |
         (uint32_t(uint8_t(b[at + 2])) << 8) | uint32_t(uint8_t(b[at + 3]));
}

// Parses an IDX header (LeCun's format: 0, 0, type 0x08 = uint8, ndim, then ndim big-endian
// int32 dims) and checks the file holds all the data it announces.
absl::StatusOr<std::vector<int64_t>> IdxDims(const std::string& data, const std::string& path) {
  if (data.size() < 4 || data[0] != 0 || data[1] != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not an IDX file (bad magic)"));
  }
  if (uint8_t(data[2]) != 0x08) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": IDX element type 0x", absl::Hex(uint8_t(data[2])),
                                                   " unsupported (only 0x08 uint8)"));
  }
  const int ndim = uint8_t(data[3]);
  if (ndim < 1 || ndim > 4 || data.size() < 4 + 4 * static_cast<size_t>(ndim)) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX header (", ndim, " dims)"));
  }
  std::vector<int64_t> dims;
  int64_t total = 1;
  for (int d = 0; d < ndim; ++d) {
    dims.push_back(BigEndian32(data, 4 + 4 * d));
    total *= dims.back();
    if (total > (int64_t{1} << 36)) return absl::InvalidArgumentError(absl::StrCat(path, ": absurd IDX dims"));
  }
  const int64_t expected = 4 + 4 * ndim + total;
  if (static_cast<int64_t>(data.size()) < expected) {
    return absl::DataLossError(absl::StrCat("truncated IDX file ", path, ": expected ", expected,
                                            " bytes (decompressed), got ", data.size()));
  }
  return dims;
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
  ASSIGN_OR_RETURN(auto idims, IdxDims(images, images_path));
  ASSIGN_OR_RETURN(auto ldims, IdxDims(labels, labels_path));
  if (idims.size() < 3 || ldims.size() != 1 || idims[0] != ldims[0]) {
    return absl::InvalidArgumentError(absl::StrCat("IDX files disagree: ", images_path, " has ", idims[0],
                                                   " images, ", labels_path, " has ", ldims[0], " labels"));
  }
  const int h = idims[1], w = idims[2], c = idims.size() == 4 ? idims[3] : 1;
  const size_t header = 4 + 4 * idims.size(), px = static_cast<size_t>(h) * w * c;
  int max_label = 0;
  for (int64_t i = 0; i < idims[0]; ++i) max_label = std::max<int>(max_label, uint8_t(labels[8 + i]));
  auto src = std::make_unique<DenseSource>("idx", h, w, c, false, std::max(10, max_label + 1));
  for (int64_t i = 0; i < idims[0]; ++i) {
    src->offsets_.push_back(header + i * px);
    src->labels_.push_back(uint8_t(labels[8 + i]));
  }
  src->pixels_ = std::move(images);
  if (spec.kind == "fashion_mnist" && src->num_classes() == 10) src->names_ = FashionMnistClassNames();
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
  const size_t label_bytes = c100 ? 2 : 1, record = label_bytes + 3072;
  const int classes = c100 ? (spec.cifar100_labels == "fine" ? 100 : 20) : 10;
  auto src = std::make_unique<DenseSource>(spec.kind, 32, 32, 3, true, classes);
  for (const std::string& f : files) {
    ASSIGN_OR_RETURN(std::string data, ReadFile(f));
    if (data.empty() || data.size() % record != 0) {
      return absl::DataLossError(absl::StrCat(
          "truncated CIFAR file ", f, ": ", data.size(), " bytes is not a whole number of ", record,
          "-byte records (expected ", (data.size() / record + 1) * record, " bytes for ",
          data.size() / record + 1, " records)"));
    }
    const size_t base = src->pixels_.size();
    for (size_t off = 0; off < data.size(); off += record) {
      const int label = uint8_t(data[off + (c100 && spec.cifar100_labels == "fine" ? 1 : 0)]);
      if (label >= classes) {
        return absl::InvalidArgumentError(absl::StrCat(f, ": record ", off / record, " has label ", label,
                                                       " >= ", classes, " (wrong kind cifar10/cifar100?)"));
      }
      src->labels_.push_back(label);
      src->offsets_.push_back(base + off + label_bytes);
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
