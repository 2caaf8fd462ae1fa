// Which data ships a test split of its own, and where an image folder keeps its splits.
//
// IDX (Fashion-MNIST), CIFAR and synthetic data have a test split by construction, ImageNet its
// val/ folder, and an image folder one when it is laid out as <root>/train/<class>/... beside
// <root>/val/<class>/... (or test/), a local Hugging Face Parquet directory its test split (the
// `datasets` layouts of parquet_source.h). A flat image folder, a JSONL list, WebDataset shards and
// Parquet files or URLs without a test split have none: the trainer then needs a separate evaluation location or a held-out
// fraction (holdout.h). Pure functions; FindFolderSplits and OwnTestSplit only look at directory
// and file names.
#ifndef CONVFOREVER_DATA_TEST_SPLIT_H_
#define CONVFOREVER_DATA_TEST_SPLIT_H_

#include <string>

#include "convforever/data/source.h"

namespace cf::data {

// An image folder's split subfolders: both set, or both empty when `root` is a flat class
// folder (no train/ subfolder, or no val/ nor test/ beside it). val/ wins over test/.
struct FolderSplits {
  std::string train;
  std::string test;
  bool has_splits() const { return !train.empty(); }
};
FolderSplits FindFolderSplits(const std::string& root);

// The data's own test split in words for logs ("fashion_mnist test split", "imagenet val/ of
// /data/in1k", "folder /data/x/val"), or empty when spec.kind has none for spec.path.
std::string OwnTestSplit(const DatasetSpec& spec);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_TEST_SPLIT_H_
