// `eval_batch`: the first --count images of a dataset as our eval pipeline delivers them
// (data::Loader with train=false: eval resize + center crop, normalization), written to a
// safetensors file as "input" [N, C, S, S] float32 and "label" [N] int64, in dataset order.
// The interop checks hand the same images to transformers' image processor and compare.
#include <cstdio>

#include "absl/status/status.h"
#include "convforever/data/loader.h"
#include "convforever/models/safetensors.h"
#include "gflags/gflags.h"

DEFINE_string(data, "fashion_mnist", "dataset kind (data/source.h DatasetSpec.kind)");
DEFINE_string(data_dir, "/usr/share/datasets/fashion-mnist", "dataset location");
DEFINE_string(split, "test", "train|val|test");
DEFINE_int64(image_size, 0, "eval size (0 = native)");
DEFINE_double(crop_pct, 0.875, "eval center-crop fraction, as the trainer's --crop_pct");
DEFINE_int32(channels, 0, "1 or 3 (0 = the data's own)");
DEFINE_int64(count, 8, "images");
DEFINE_string(out, "", "safetensors file to write");

namespace {

absl::Status Run() {
  cf::data::DatasetSpec spec;
  spec.kind = FLAGS_data;
  spec.path = FLAGS_data_dir;
  spec.split = FLAGS_split;
  cf::data::LoaderOptions o;
  o.batch_size = FLAGS_count;
  o.num_workers = 1;
  o.shuffle = false;
  o.drop_last = false;
  o.train = false;
  o.image_size = FLAGS_image_size;
  o.channels = FLAGS_channels;
  o.transforms.crop_pct = FLAGS_crop_pct;
  auto loader = cf::data::Loader::Create(spec, o);
  if (!loader.ok()) return loader.status();
  if (absl::Status s = (*loader)->StartEpoch(0); !s.ok()) return s;
  auto batch = (*loader)->Next();
  if (!batch.ok()) return batch.status();
  if (!batch->has_value()) return absl::NotFoundError("the dataset gave no batch");
  return cf::models::WriteSafetensors(
      FLAGS_out, {{"input", (*batch)->images.contiguous()}, {"label", (*batch)->targets.contiguous()}},
      {{"format", "pt"}});
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  absl::Status s = FLAGS_out.empty() ? absl::InvalidArgumentError("--out is required") : Run();
  if (!s.ok()) {
    std::fprintf(stderr, "eval_batch: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
