#include "convforever/data/test_split.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace cf::data {

namespace fs = std::filesystem;

FolderSplits FindFolderSplits(const std::string& root) {
  std::error_code ec;
  const fs::path train = fs::path(root) / "train";
  if (!fs::is_directory(train, ec)) return {};
  for (const char* name : {"val", "test"}) {
    const fs::path test = fs::path(root) / name;
    if (fs::is_directory(test, ec)) return {train.string(), test.string()};
  }
  return {};
}

std::string OwnTestSplit(const DatasetSpec& spec) {
  const std::string& k = spec.kind;
  if (k == "idx" || k == "fashion_mnist" || k == "cifar10" || k == "cifar100" || k == "synthetic") {
    return k + " test split";
  }
  if (k == "imagenet") return absl::StrCat("imagenet validation split of ", spec.path);
  if (k == "folder") {
    const FolderSplits s = FindFolderSplits(spec.path);
    if (s.has_splits()) return "image folder " + s.test;
  }
  return "";  // jsonl, wds, parquet, a flat folder
}

}  // namespace cf::data
