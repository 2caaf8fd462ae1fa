#include "convforever/data/test_split.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "convforever/data/parquet_source.h"

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
  // A local Hugging Face dataset directory that holds a test split beside the training one.
  if (k == "parquet" && !IsHttpUrl(spec.path) && std::filesystem::is_directory(spec.path)) {
    absl::StatusOr<std::vector<std::string>> test = ListParquetFiles(spec.path, "test");
    if (test.ok() && !test->empty()) return absl::StrCat("parquet test split of ", spec.path);
  }
  return "";  // jsonl, wds, parquet files or URLs without a test split, a flat folder
}

}  // namespace cf::data
