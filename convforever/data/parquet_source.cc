#include "convforever/data/parquet_source.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/http_fetch.h"
#include "convforever/data/shard_pattern.h"
#include "convforever/data/sources_internal.h"
#include "convforever/http/headers.h"

namespace cf::data {
namespace {

namespace fs = std::filesystem;

// The directory and file-name spellings of a split on the Hub.
std::vector<std::string> SplitNames(const std::string& split) {
  if (split == "val" || split == "validation" || split == "valid") return {"validation", "val", "valid"};
  return {split};
}

// Where a file of `split` sits below the directory: the part of its relative path before the split
// (its config), or nullopt when the file is not one of the split's.
std::optional<std::string> SplitRoot(const fs::path& rel, const std::vector<std::string>& names) {
  std::vector<std::string> parts;
  for (const auto& p : rel) parts.push_back(p.string());
  const std::string stem = fs::path(parts.back()).stem().string();
  auto join = [&](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s = s.empty() ? parts[i] : s + "/" + parts[i];
    return s;
  };
  for (size_t i = 0; i + 1 < parts.size(); ++i) {  // <config>/<split>/NNNN.parquet
    for (const auto& n : names) {
      if (parts[i] == n || parts[i] == "partial-" + n) return join(i);
    }
  }
  for (const auto& n : names) {  // data/<split>-NNNNN-of-NNNNN.parquet
    if (stem == n || absl::StartsWith(stem, n + "-") || absl::StartsWith(stem, n + "_")) return join(parts.size() - 1);
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& dir, const std::string& split) {
  const std::vector<std::string> names = SplitNames(split);
  std::map<std::string, std::vector<std::string>> by_root;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {  // .cache, .git, .huggingface
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file() || it->path().extension() != ".parquet") continue;
    const fs::path rel = fs::relative(it->path(), dir);
    if (auto root = SplitRoot(rel, names)) by_root[*root].push_back(it->path().string());
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list parquet directory ", dir, ": ", ec.message()));
  if (by_root.empty()) {
    return absl::NotFoundError(absl::StrCat("no Parquet files of split '", split, "' under ", dir, " (looked for <config>/",
                                            names[0], "/*.parquet and data/", names[0], "-*.parquet)"));
  }
  if (by_root.size() > 1) {
    std::vector<std::string> roots;
    for (const auto& [root, files] : by_root) roots.push_back(root.empty() ? "." : root);
    return absl::InvalidArgumentError(absl::StrCat("split '", split, "' has Parquet files under several configs of ", dir,
                                                   ": ", absl::StrJoin(roots, ", "),
                                                   "; point the data directory at one of them"));
  }
  std::vector<std::string> files = by_root.begin()->second;
  std::sort(files.begin(), files.end());
  return files;
}

// The last path component of a file path or URL (query dropped).
std::string BaseName(const std::string& location) {
  std::string s = location.substr(0, location.find_first_of("?#"));
  return s.substr(s.find_last_of('/') + 1);
}

struct RowGroupRef {
  int file = 0;
  int row_group = 0;
  int64_t first = 0;         // global index of its first row
  int64_t first_in_file = 0; // its first row's row number in its file
  int64_t rows = 0;
};

class ParquetSource : public Source {
 public:
  ParquetSource(std::vector<std::unique_ptr<ParquetImageFile>> files, std::vector<std::string> classes,
                int num_classes, const ParquetSourceOptions& options)
      : files_(std::move(files)), classes_(std::move(classes)), num_classes_(num_classes), options_(options) {
    int64_t first = 0;
    for (int f = 0; f < static_cast<int>(files_.size()); ++f) {
      names_.push_back(BaseName(files_[f]->location()));
      int64_t in_file = 0;
      const auto& rows = files_[f]->row_group_rows();
      for (int g = 0; g < static_cast<int>(rows.size()); ++g) {
        if (rows[g] == 0) continue;
        groups_.push_back({f, g, first, in_file, rows[g]});
        first += rows[g];
        in_file += rows[g];
      }
    }
    size_ = first;
  }

  int64_t size() const override { return size_; }
  int num_classes() const override { return num_classes_; }
  std::vector<std::string> class_names() const override { return classes_; }

  std::string SampleKey(int64_t i) const override {
    const RowGroupRef& g = groups_[GroupOf(i)];
    return absl::StrCat(names_[g.file], ":", g.first_in_file + (i - g.first));
  }

  std::vector<FetchResult> Fetch(absl::Span<const int64_t> indices) override {
    std::vector<FetchResult> out(indices.size());
    std::map<size_t, std::vector<size_t>> by_group;  // row group -> slots of `indices`
    for (size_t k = 0; k < indices.size(); ++k) by_group[GroupOf(indices[k])].push_back(k);
    for (const auto& [group, slots] : by_group) {
      std::shared_ptr<const absl::StatusOr<ParquetImageRows>> rows = Get(group);
      const RowGroupRef& g = groups_[group];
      for (size_t k : slots) {
        const int64_t i = indices[k];
        const int64_t r = i - g.first;
        const std::string key = absl::StrCat(names_[g.file], ":", g.first_in_file + r);
        if (!rows->ok()) {
          out[k] = {rows->status(), "read_failed"};
        } else if (!(*rows)->has_image[r]) {
          out[k] = {absl::NotFoundError(absl::StrCat(key, ": the image (column 'image') is null")), "missing_image"};
        } else if ((*rows)->label[r] < 0 || (*rows)->label[r] >= num_classes_) {
          out[k] = {absl::InvalidArgumentError(absl::StrCat(key, ": label ", (*rows)->label[r], " is not a class in [0, ",
                                                            num_classes_, ")")),
                    "bad_label"};
        } else {
          Record rec;
          rec.encoded = (*rows)->image[r];
          rec.label = (*rows)->label[r];
          rec.key = key;
          out[k] = {std::move(rec), ""};
        }
      }
    }
    return out;
  }

 private:
  using Rows = std::shared_ptr<const absl::StatusOr<ParquetImageRows>>;

  size_t GroupOf(int64_t i) const {
    auto it = std::upper_bound(groups_.begin(), groups_.end(), i,
                               [](int64_t v, const RowGroupRef& g) { return v < g.first; });
    return static_cast<size_t>(it - groups_.begin()) - 1;
  }

  // The rows of row group `group`: from the cache, from a read another thread has under way, or
  // read here. Failed reads are not cached (the next batch tries again).
  Rows Get(size_t group) {
    std::promise<Rows> promise;
    std::shared_future<Rows> future;
    bool mine = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = cache_.find(group); it != cache_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.lru);
        return it->second.rows;
      }
      if (auto it = loading_.find(group); it != loading_.end()) {
        future = it->second;
      } else {
        future = loading_[group] = promise.get_future().share();
        mine = true;
      }
    }
    if (!mine) return future.get();
    const RowGroupRef& g = groups_[group];
    auto rows = std::make_shared<const absl::StatusOr<ParquetImageRows>>(files_[g.file]->ReadRowGroup(g.row_group));
    {
      std::lock_guard<std::mutex> lock(mu_);
      loading_.erase(group);
      if (rows->ok()) Insert(group, rows);
    }
    promise.set_value(rows);
    return rows;
  }

  void Insert(size_t group, const Rows& rows) {  // mu_ held
    int64_t bytes = 0;
    for (const auto& s : (*rows)->image) bytes += static_cast<int64_t>(s.size()) + 32;
    lru_.push_front(group);
    cache_[group] = {rows, bytes, lru_.begin()};
    cached_bytes_ += bytes;
    while (cached_bytes_ > options_.cache_bytes && lru_.size() > 1) {
      const size_t victim = lru_.back();
      lru_.pop_back();
      cached_bytes_ -= cache_[victim].bytes;
      cache_.erase(victim);
    }
  }

  std::vector<std::unique_ptr<ParquetImageFile>> files_;
  std::vector<std::string> names_;  // base name of each file
  std::vector<std::string> classes_;
  int num_classes_;
  ParquetSourceOptions options_;
  std::vector<RowGroupRef> groups_;  // non-empty row groups, by `first`
  int64_t size_ = 0;

  struct Cached {
    Rows rows;
    int64_t bytes = 0;
    std::list<size_t>::iterator lru;
  };
  std::mutex mu_;
  std::map<size_t, Cached> cache_;                        // guarded by mu_
  std::list<size_t> lru_;                                 // guarded by mu_; most recent first
  std::map<size_t, std::shared_future<Rows>> loading_;    // guarded by mu_
  int64_t cached_bytes_ = 0;                              // guarded by mu_
};

// "first difference at class k: 'a' vs 'b'" or the sizes, for a class-list mismatch message.
std::string FirstDifference(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (size_t k = 0; k < std::min(a.size(), b.size()); ++k) {
    if (a[k] != b[k]) return absl::StrCat("class ", k, " is '", a[k], "' in one and '", b[k], "' in the other");
  }
  return absl::StrCat(a.size(), " vs ", b.size(), " classes");
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListParquetFiles(const std::string& path, const std::string& split) {
  if (path.empty()) return absl::InvalidArgumentError("--data=parquet needs a data directory, file or URL");
  ASSIGN_OR_RETURN(const std::vector<std::string> expanded, ExpandBraces(path));
  std::vector<std::string> files;
  for (const std::string& p : expanded) {
    if (!IsHttpUrl(p) && fs::is_directory(p)) {
      ASSIGN_OR_RETURN(auto found, ListDirectory(p, split));
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(p);  // a file or URL; opening it checks it
    }
  }
  return files;
}

ParquetSourceOptions DefaultParquetSourceOptions(const DatasetSpec& spec) {
  ParquetSourceOptions o;
  o.http.timeout = absl::Milliseconds(spec.http.timeout_ms);
  o.http.connect_timeout = absl::Milliseconds(spec.http.connect_timeout_ms);
  o.http.retry.max_attempts = spec.http.retries + 1;
  o.http.retry.base_delay = absl::Milliseconds(spec.http.backoff_ms);
  o.http.user_agent = spec.http.user_agent;
  if (const char* token = std::getenv("HF_TOKEN"); token != nullptr) o.http.bearer_token = token;
  const char* endpoint = std::getenv("HF_ENDPOINT");
  o.http.token_host = endpoint != nullptr && *endpoint != '\0' ? UrlHost(endpoint) : "huggingface.co";
  return o;
}

absl::StatusOr<std::unique_ptr<Source>> OpenParquetSource(const DatasetSpec& spec, const ParquetSourceOptions& options) {
  ASSIGN_OR_RETURN(const std::vector<std::string> locations, ListParquetFiles(spec.path, spec.split));
  std::vector<std::unique_ptr<ParquetImageFile>> files;
  std::vector<std::string> names;
  std::string names_from;
  for (const std::string& loc : locations) {
    ASSIGN_OR_RETURN(auto file, ParquetImageFile::Open(loc, options.http));
    const std::string shown = IsHttpUrl(loc) ? http::RedactUrl(loc) : loc;
    if (!file->class_names().empty()) {
      if (names_from.empty()) {
        names = file->class_names();
        names_from = shown;
      } else if (file->class_names() != names) {
        return absl::InvalidArgumentError(absl::StrCat("the ClassLabel names of 'label' differ between ", names_from,
                                                       " and ", shown, ": ", FirstDifference(names, file->class_names())));
      }
    }
    files.push_back(std::move(file));
  }
  if (!spec.class_list_path.empty()) {
    ASSIGN_OR_RETURN(auto list, ReadClassList(spec.class_list_path));
    if (!names.empty() && list != names) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class list ", spec.class_list_path, " does not match the ClassLabel names in the \"huggingface\" metadata of ",
          names_from, ": ", FirstDifference(list, names), " (list: ", absl::StrJoin(list, ","), "; data: ",
          absl::StrJoin(names, ","), ")"));
    }
    names = std::move(list);
  }
  const int num_classes = names.empty() ? spec.num_classes : static_cast<int>(names.size());
  if (num_classes <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("the Parquet files of ", spec.path,
                                                   " name no classes (no ClassLabel in their \"huggingface\" "
                                                   "metadata): give a class list"));
  }
  auto source = std::make_unique<ParquetSource>(std::move(files), std::move(names), num_classes, options);
  if (source->size() == 0) return absl::NotFoundError(absl::StrCat("the Parquet files of ", spec.path, " hold no rows"));
  return std::unique_ptr<Source>(std::move(source));
}

absl::StatusOr<std::unique_ptr<Source>> OpenParquetSource(const DatasetSpec& spec) {
  return OpenParquetSource(spec, DefaultParquetSourceOptions(spec));
}

}  // namespace cf::data
