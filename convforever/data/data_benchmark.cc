// data_benchmark: the same per-image work on both sides, over ~2,000 JPEGs of about 500x375 that
// it generates itself:
//   decode   JPEG, accurate integer DCT + fancy upsampling (both sides libjpeg-turbo), at the size
//            --decode says: "full", or "draft" = PIL's Image.draft("RGB", (224, 224)) rule (the
//            largest 1/2, 1/4, 1/8 DCT reduction keeping both sides >= 224; a 500x375 picture is
//            decoded full size either way). The same pixels reach the crop on both sides; ours
//            decodes only the crop's box (decode.h's DecodeImageRegion), torchvision all of it;
//   crop     RandomResizedCrop(224, scale (0.08, 1), ratio (3/4, 4/3)) with antialiased bilinear
//            resampling (PIL's Image.resize(BILINEAR) on the crop);
//   flip     horizontal with p = 0.5;
//   batch    float32 [64, 3, 224, 224], normalized with ImageNet mean/std;
//   threads  --threads worker threads (the Loader) vs DataLoader(num_workers=--threads) workers
//            (torchvision ImageFolder with a loader that applies the same draft rule).
// Both measured in the same run, rounds alternating, best of each reported with their ratio
// (target >= 3x). Ours runs with the trainer's malloc settings (base/allocator.h: freed memory
// kept for reuse instead of fresh page-faulted mappings per decoded image); a third side, the
// reference given the same settings, is the control that tells their share of the ratio. --profile also times the stages one image at a time on one thread, on each side.
// Run from the repository root (tools/cf bench does), or with `bazel run`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>
#include <memory>
#include <string>

#include <gflags/gflags.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "absl/strings/str_cat.h"
#include "convforever/base/allocator.h"
#include "convforever/data/batch.h"
#include "convforever/data/decode.h"
#include "convforever/data/loader.h"
#include "convforever/data/image_ops.h"
#include "convforever/data/rng.h"
#include "convforever/data/transforms.h"

DEFINE_string(dir, "/tmp/convforever_data_benchmark", "where the generated JPEG folder lives");
DEFINE_int32(images, 2000, "number of JPEGs");
DEFINE_int32(threads, 2, "worker threads (and torchvision DataLoader workers)");
DEFINE_int32(batch, 64, "batch size");
DEFINE_int32(rounds, 2, "alternating C++/Python rounds; the best of each is reported");
DEFINE_string(decode, "full", "JPEG decode size on both sides: full, or draft (PIL's Image.draft rule at 224)");
DEFINE_bool(profile, false, "also time decode / crop / flip / batch per image on one thread, both sides");
DEFINE_string(python, ".venv/bin/python", "interpreter with the reference torch (the project venv, from the workspace root)");

namespace {

namespace fs = std::filesystem;
using cf::data::Image;

// A photo-like 500x375 picture: smooth color fields, a few shapes and mild noise, so JPEG size and
// decode cost resemble natural images (about 40-80 KB at quality 90), not flat color or noise.
Image MakePicture(int i) {
  cf::data::Rng rng(cf::data::SeedFrom({77, static_cast<uint64_t>(i)}));
  const int h = 375, w = 500;
  Image img(h, w, 3);
  double base[3], gx[3], gy[3];
  for (int c = 0; c < 3; ++c) { base[c] = rng.Uniform(40, 200); gx[c] = rng.Uniform(-0.3, 0.3); gy[c] = rng.Uniform(-0.3, 0.3); }
  const int cx = rng.IntIn(50, 450), cy = rng.IntIn(50, 325), r = rng.IntIn(30, 120);
  const double fx = rng.Uniform(0.01, 0.08), fy = rng.Uniform(0.01, 0.08);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const bool inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r;
      for (int c = 0; c < 3; ++c) {
        double v = base[c] + gx[c] * x + gy[c] * y + 25 * std::sin(fx * x + c) * std::cos(fy * y);
        if (inside) v = 255 - v;
        v += rng.Uniform(-12, 12);
        img.at(y, x, c) = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
      }
    }
  }
  return img;
}

bool MakeDataset(const std::string& dir, int n) {
  const std::string stamp = absl::StrCat(dir, "/.complete_", n);
  if (fs::exists(stamp)) return true;
  fs::remove_all(dir);
  std::printf("generating %d JPEGs in %s ...\n", n, dir.c_str());
  for (int i = 0; i < n; ++i) {
    const std::string sub = absl::StrCat(dir, "/class_", i % 10);
    fs::create_directories(sub);
    auto jpg = cf::data::EncodeJpeg(MakePicture(i), 90);
    if (!jpg.ok()) { std::fprintf(stderr, "%s\n", jpg.status().ToString().c_str()); return false; }
    std::ofstream(absl::StrCat(sub, "/img_", i, ".jpg"), std::ios::binary) << *jpg;
  }
  std::ofstream(stamp) << "ok\n";
  return true;
}

// Images/s of one epoch with the C++ Loader, timed from the first batch to the last.
double RunCpp(int epoch) {
  cf::data::LoaderOptions o;
  o.batch_size = FLAGS_batch;
  o.num_workers = FLAGS_threads;
  o.prefetch_batches = 2 * FLAGS_threads;
  o.seed = 1;
  o.drop_last = false;
  o.image_size = 224;
  o.channels = 3;
  o.transforms.train_crop = "rrc";
  o.transforms.interpolation = "bilinear";
  o.transforms.train_decode = FLAGS_decode;
  auto loader = cf::data::Loader::Create(cf::data::DatasetSpec{"folder", FLAGS_dir}, o);
  if (!loader.ok()) { std::fprintf(stderr, "%s\n", loader.status().ToString().c_str()); std::exit(1); }
  (void)(*loader)->StartEpoch(epoch);
  int64_t n = 0;
  std::chrono::steady_clock::time_point t0;
  bool first = true;
  for (;;) {
    auto b = (*loader)->Next();
    if (!b.ok()) { std::fprintf(stderr, "%s\n", b.status().ToString().c_str()); std::exit(1); }
    if (!b->has_value()) break;
    if (first) { t0 = std::chrono::steady_clock::now(); first = false; continue; }
    n += (*b)->images.size(0);
  }
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto skipped = (*loader)->counters().skipped;
  if (!skipped.empty()) std::fprintf(stderr, "warning: %zu skip reasons\n", skipped.size());
  return n / dt;
}

// The Python side's --draft-min-side: what DecodeMinSide gives the Loader (0 = full size).
int DraftMinSide() {
  cf::data::TransformOptions t;
  t.train_decode = FLAGS_decode;
  return cf::data::DecodeMinSide(t, 224, /*train=*/true);
}

// Per-stage time of the C++ path, one image at a time on this thread: microseconds per image.
void ProfileCpp() {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(FLAGS_dir)) {
    if (e.path().extension() == ".jpg") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  files.resize(std::min<size_t>(files.size(), 500));
  std::vector<std::string> bytes;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    bytes.emplace_back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  cf::data::TransformOptions t;
  std::vector<float> mean, std;
  cf::data::ResolveNormalization(t, 3, &mean, &std);
  // Thread CPU time, not wall time: other processes share the cores.
  struct Clock {
    static double now() {
      timespec t;
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
      return t.tv_sec + t.tv_nsec * 1e-9;
    }
  };
  double t_decode = 0, t_crop = 0, t_flip = 0, t_batch = 0;
  std::vector<Image> batch;
  at::Tensor buffer;
  for (size_t i = 0; i < bytes.size(); ++i) {
    // As the Loader: the box drawn from the header's size, only the box decoded.
    auto t0 = Clock::now();
    cf::data::Rng rng(i);
    auto size = cf::data::DecodedImageSize(bytes[i], DraftMinSide(), files[i]);
    if (!size.ok()) { std::fprintf(stderr, "%s\n", size.status().ToString().c_str()); std::exit(1); }
    const cf::data::CropBox b = cf::data::SampleRandomResizedCrop(size->h, size->w, t, rng);
    auto band = cf::data::DecodeImageBand(bytes[i], 3, DraftMinSide(), b.y, b.x, b.h, b.w, files[i]);
    if (!band.ok()) { std::fprintf(stderr, "%s\n", band.status().ToString().c_str()); std::exit(1); }
    auto t1 = Clock::now();
    Image out = cf::data::ResizedCrop(band->image, band->y, band->x, b.h, b.w, 224, 224, cf::data::Interp::kBilinear);
    auto t2 = Clock::now();
    if (rng.Bernoulli(0.5)) out = cf::data::HFlip(out);
    auto t3 = Clock::now();
    batch.push_back(std::move(out));
    if (batch.size() == static_cast<size_t>(FLAGS_batch)) {
      auto made = cf::data::AssembleImages(batch, mean, std, false, buffer);
      if (!made.ok()) std::exit(1);
      buffer = *made;
      batch.clear();
    }
    auto t4 = Clock::now();
    t_decode += t1 - t0;
    t_crop += t2 - t1;
    t_flip += t3 - t2;
    t_batch += t4 - t3;
  }
  // For comparison, the same images decoded whole (what the decode would cost without the box).
  double t_whole = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const double t0 = Clock::now();
    auto img = cf::data::DecodeImage(bytes[i], 3, DraftMinSide(), files[i]);
    if (!img.ok()) { std::fprintf(stderr, "%s\n", img.status().ToString().c_str()); std::exit(1); }
    t_whole += Clock::now() - t0;
  }
  const double n = bytes.size() / 1e6;
  std::printf("convforever stages (CPU us/image, 1 thread, %zu images): decode %.0f (whole pictures: %.0f), "
              "rrc %.0f, flip %.0f, batch+normalize %.0f, total %.0f\n", bytes.size(), t_decode / n, t_whole / n,
              t_crop / n, t_flip / n, t_batch / n, (t_decode + t_crop + t_flip + t_batch) / n);
}

// glibc's malloc in the reference set as KeepFreedMemoryForReuse() sets ours (inherited by the
// DataLoader's worker processes).
constexpr char kOurMalloc[] =
    "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824 ";

double RunPython(bool profile = false, bool our_malloc = false) {
  std::string script = "tools/bench/data_benchmark.py";
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) script = std::string(ws) + "/" + script;
  const std::string cmd = absl::StrCat(our_malloc ? kOurMalloc : "", FLAGS_python, " ", script, " --dir ", FLAGS_dir, " --batch ", FLAGS_batch,
                                       " --workers ", FLAGS_threads,
                                       " --draft-min-side ", DraftMinSide(), profile ? " --profile" : "");
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[4096];
  while (fgets(buf, sizeof(buf), p)) out += buf;
  if (profile) std::printf("%s", out.substr(0, out.rfind('{')).c_str());
  if (pclose(p) != 0) { std::fprintf(stderr, "python reference failed: %s\n%s\n", cmd.c_str(), out.c_str()); return -1; }
  const auto j = nlohmann::json::parse(out.substr(out.rfind('{')), nullptr, false);
  return j.is_discarded() ? -1 : j["images_per_sec"].get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_decode != "full" && FLAGS_decode != "draft") {
    std::fprintf(stderr, "--decode must be full or draft, got '%s'\n", FLAGS_decode.c_str());
    return 1;
  }
  // OpenCV's own thread pool would add threads beyond --threads inside each worker.
  cv::setNumThreads(0);
  cf::base::KeepFreedMemoryForReuse();  // as the trainer does at start
  if (!MakeDataset(FLAGS_dir, FLAGS_images)) return 1;
  RunCpp(100);  // warm the page cache and the allocator
  double best_cpp = 0, best_py = 0, best_py_malloc = 0;
  for (int r = 0; r < FLAGS_rounds; ++r) {
    const double cpp = RunCpp(r), py = RunPython(), py_malloc = RunPython(false, /*our_malloc=*/true);
    std::printf("round %d: convforever %.1f images/s, torchvision %.1f images/s (%.2fx), torchvision with our "
                "malloc settings %.1f images/s\n", r, cpp, py, cpp / py, py_malloc);
    best_cpp = std::max(best_cpp, cpp);
    best_py = std::max(best_py, py);
    best_py_malloc = std::max(best_py_malloc, py_malloc);
  }
  if (best_py <= 0 || best_py_malloc <= 0) return 1;
  if (FLAGS_profile) {
    ProfileCpp();
    RunPython(/*profile=*/true);
  }
  std::printf("data_benchmark (%d JPEGs ~500x375; decode %s (min side %d), RandomResizedCrop 224 antialiased "
              "bilinear, hflip, normalize, float32 batch %d; %d threads vs DataLoader(num_workers=%d))\n",
              FLAGS_images, FLAGS_decode.c_str(), DraftMinSide(), FLAGS_batch, FLAGS_threads, FLAGS_threads);
  std::printf("  convforever Loader : %8.1f images/s\n", best_cpp);
  std::printf("  torchvision        : %8.1f images/s\n", best_py);
  std::printf("  ratio              : %8.2fx (target >= 3x)\n", best_cpp / best_py);
  std::printf("  control: torchvision given our malloc settings %.1f images/s, ratio %.2fx\n", best_py_malloc,
              best_cpp / best_py_malloc);
  return 0;
}
