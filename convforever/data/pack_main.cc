// The pack binary: any data kind -> WebDataset tar shards or Hugging Face Parquet files (pack.h).
//   bazel run //convforever/data:pack -- --data=fashion_mnist --out=/tmp/fmnist-wds --format=wds --shard_size=10000
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convforever/base/cli_help.h"
#include "convforever/data/pack.h"
#include "convforever/data/source.h"
#include "gflags/gflags.h"

DEFINE_string(data, "fashion_mnist", "source kind: fashion_mnist|idx|cifar10|cifar100|folder|imagenet|jsonl|parquet|synthetic");
DEFINE_string(data_dir, "", "source location (default for fashion_mnist: /usr/share/datasets/fashion-mnist)");
DEFINE_string(split, "train", "which split of the source to read (train|test|val); also the output split name");
DEFINE_string(class_list, "", "class names, one per line (folder/jsonl/parquet)");
DEFINE_int32(num_classes, 0, "jsonl/parquet without class names: the number of classes");
DEFINE_int64(subset, 0, "> 0: pack this many samples, evenly strided");
DEFINE_double(eval_fraction, 0, "held-out fraction of a split by sample key (holdout.h); with --part");
DEFINE_string(part, "all", "all|train|heldout: which side of the --eval_fraction split to pack");
DEFINE_string(out, "", "output directory");
DEFINE_string(format, "wds", "wds (tar shards + classes.txt) | parquet (<out>/<split>/NNNN.parquet, the datasets layout)");
DEFINE_int64(shard_size, 10000, "samples per shard");
DEFINE_string(prefix, "", "wds shard name prefix (default: the split)");

namespace {

absl::StatusOr<cf::data::PackSummary> Run() {
  if (FLAGS_out.empty()) return absl::InvalidArgumentError("--out is required");
  cf::data::DatasetSpec spec;
  spec.kind = FLAGS_data;
  spec.path = FLAGS_data_dir.empty() && FLAGS_data == "fashion_mnist" ? cf::data::kFashionMnistDir : FLAGS_data_dir;
  spec.split = FLAGS_split;
  spec.class_list_path = FLAGS_class_list;
  spec.num_classes = FLAGS_num_classes;
  cf::data::PackOptions o;
  o.out_dir = FLAGS_out;
  o.format = FLAGS_format;
  o.shard_size = FLAGS_shard_size;
  o.split = FLAGS_split;
  o.prefix = FLAGS_prefix;
  o.subset = FLAGS_subset;
  o.holdout_fraction = FLAGS_eval_fraction;
  if (FLAGS_part == "train") {
    o.holdout_part = cf::data::HoldoutPart::kTraining;
  } else if (FLAGS_part == "heldout") {
    o.holdout_part = cf::data::HoldoutPart::kHeldOut;
  } else if (FLAGS_part != "all") {
    return absl::InvalidArgumentError(absl::StrCat("--part=", FLAGS_part, ": expected all, train or heldout"));
  }
  if (o.holdout_part != cf::data::HoldoutPart::kAll && !(FLAGS_eval_fraction > 0 && FLAGS_eval_fraction < 1)) {
    return absl::InvalidArgumentError("--part=train|heldout needs --eval_fraction in (0, 1)");
  }
  auto source = cf::data::OpenSource(spec);
  if (!source.ok()) return source.status();
  return cf::data::Pack(**source, o);
}

}  // namespace

int main(int argc, char** argv) {
  constexpr char kUsage[] = "packs a dataset into WebDataset or Parquet shards.\n"
                            "  pack --data=KIND [--data_dir=...] --out=DIR --format=wds|parquet [--shard_size=N]";
  if (cf::base::PrintHelpIfAsked(argc, argv, kUsage, "convforever/data/pack_main.cc")) return 0;
  gflags::SetUsageMessage(kUsage);
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (argc > 1) {
    std::fprintf(stderr, "pack: unexpected argument '%s' (flags look like --name=value)\n", argv[1]);
    return 2;
  }
  absl::StatusOr<cf::data::PackSummary> s = Run();
  if (!s.ok()) {
    std::fprintf(stderr, "pack: error: %s\n", s.status().ToString().c_str());
    return absl::IsInvalidArgument(s.status()) ? 2 : 1;
  }
  std::string skipped;
  for (const auto& [reason, n] : s->skipped) skipped += absl::StrCat(" ", reason, "=", n);
  std::printf("pack: %lld samples in %lld %s shards, %lld bytes, under %s%s%s\n",
              static_cast<long long>(s->samples), static_cast<long long>(s->shards), FLAGS_format.c_str(),
              static_cast<long long>(s->bytes), FLAGS_out.c_str(), skipped.empty() ? "" : "; skipped:",
              skipped.c_str());
  return 0;
}
