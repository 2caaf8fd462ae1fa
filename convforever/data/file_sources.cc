// Sources of encoded images: an image folder (one subfolder per class), the ImageNet ILSVRC
// layout, and JSONL records naming a local path or a URL.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/sources_internal.h"
#include "convforever/data/test_split.h"

namespace cf::data {
namespace {

namespace fs = std::filesystem;

struct Item {
  std::string location;  // file path or http(s) URL
  int64_t label;
  std::string key;       // the held-out split's key (Source::SampleKey)
};

class EncodedSource : public Source {
 public:
  EncodedSource(std::vector<Item> items, int classes, HttpFetchOptions http,
                std::map<std::string, int64_t> excluded)
      : items_(std::move(items)), classes_(classes), http_(http), excluded_(std::move(excluded)) {}
  int64_t size() const override { return static_cast<int64_t>(items_.size()); }
  int num_classes() const override { return classes_; }
  std::vector<std::string> class_names() const override { return names_; }
  std::vector<std::string> names_;  // empty or classes_ entries
  std::map<std::string, int64_t> excluded() const override { return excluded_; }
  std::string SampleKey(int64_t i) const override { return items_[i].key; }

  std::vector<FetchResult> Fetch(absl::Span<const int64_t> indices) override {
    std::vector<FetchResult> out(indices.size());
    std::vector<std::string> urls;
    std::vector<size_t> url_slots;
    for (size_t k = 0; k < indices.size(); ++k) {
      const Item& it = items_[indices[k]];
      if (IsHttpUrl(it.location)) {
        urls.push_back(it.location);
        url_slots.push_back(k);
        continue;
      }
      auto bytes = ReadFile(it.location);
      if (!bytes.ok()) {
        out[k] = {bytes.status(), "read_failed"};
      } else {
        out[k] = {Make(it, std::move(*bytes)), ""};
      }
    }
    if (!urls.empty()) {
      // All of the batch's downloads in flight together.
      std::vector<HttpFetchResult> got = HttpFetchAll(urls, http_);
      for (size_t j = 0; j < urls.size(); ++j) {
        const size_t k = url_slots[j];
        if (!got[j].body.ok()) {
          out[k] = {got[j].body.status(), "fetch_failed"};
        } else {
          out[k] = {Make(items_[indices[k]], std::move(*got[j].body)), ""};
        }
      }
    }
    return out;
  }

 private:
  static Record Make(const Item& it, std::string bytes) {
    Record r;
    r.encoded = std::move(bytes);
    r.label = it.label;
    r.key = it.location;
    return r;
  }
  std::vector<Item> items_;
  int classes_;
  HttpFetchOptions http_;
  std::map<std::string, int64_t> excluded_;
};

bool IsImageFile(const fs::path& p) {
  const std::string ext = absl::AsciiStrToLower(p.extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp";
}

// Sorted subdirectory names of `dir` (the class list of an image folder).
absl::StatusOr<std::vector<std::string>> SubdirNames(const std::string& dir) {
  if (!fs::is_directory(dir)) return absl::NotFoundError(absl::StrCat("image folder ", dir, " does not exist"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory()) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) return absl::NotFoundError(absl::StrCat("image folder ", dir, " has no class subfolders"));
  return names;
}

// Keys are paths relative to `key_root` ("<class>/<file>" for an image folder).
absl::StatusOr<std::vector<Item>> ScanClassFolders(const std::string& dir, const std::vector<std::string>& classes,
                                                   const std::string& key_root) {
  std::vector<Item> items;
  for (size_t k = 0; k < classes.size(); ++k) {
    const fs::path sub = fs::path(dir) / classes[k];
    if (!fs::is_directory(sub)) continue;  // a class without training images is allowed
    std::vector<std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(sub)) {
      if (e.is_regular_file() && IsImageFile(e.path())) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      std::string key = fs::path(f).lexically_relative(key_root).generic_string();
      items.push_back({std::move(f), static_cast<int64_t>(k), std::move(key)});
    }
  }
  if (items.empty()) return absl::NotFoundError(absl::StrCat("no .jpg/.jpeg/.png/.webp images under ", dir));
  return items;
}

// A source over `items` whose class k is named `classes[k]` (folder names, wnids, a class list).
std::unique_ptr<EncodedSource> Named(std::vector<Item> items, const std::vector<std::string>& classes,
                                     const HttpFetchOptions& http) {
  auto s = std::make_unique<EncodedSource>(std::move(items), classes.size(), http, std::map<std::string, int64_t>{});
  s->names_ = classes;
  return s;
}

std::map<std::string, int64_t> IndexOf(const std::vector<std::string>& names) {
  std::map<std::string, int64_t> m;
  for (size_t i = 0; i < names.size(); ++i) m[names[i]] = i;
  return m;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Source>> OpenFolderSource(const DatasetSpec& spec) {
  // <path>/train + <path>/val (or test): the classes are train/'s, the split picks the folder.
  const FolderSplits splits = FindFolderSplits(spec.path);
  const std::string class_dir = splits.has_splits() ? splits.train : spec.path;
  const std::string dir = !splits.has_splits() ? spec.path : spec.split == "train" ? splits.train : splits.test;
  std::vector<std::string> classes;
  if (!spec.class_list_path.empty()) {
    ASSIGN_OR_RETURN(classes, ReadClassList(spec.class_list_path));
  } else {
    ASSIGN_OR_RETURN(classes, SubdirNames(class_dir));
  }
  ASSIGN_OR_RETURN(auto items, ScanClassFolders(dir, classes, dir));
  return std::unique_ptr<Source>(Named(std::move(items), classes, spec.http));
}

absl::StatusOr<std::unique_ptr<Source>> OpenImageNetSource(const DatasetSpec& spec) {
  std::string data = spec.path;
  for (const char* sub : {"/ILSVRC/Data/CLS-LOC", "/Data/CLS-LOC"}) {
    if (fs::is_directory(spec.path + sub)) { data = spec.path + sub; break; }
  }
  std::vector<std::string> classes;
  if (!spec.class_list_path.empty()) {
    // LOC_synset_mapping.txt lines are "n01440764 tench, Tinca tinca": the wnid is the first word.
    ASSIGN_OR_RETURN(auto lines, ReadClassList(spec.class_list_path));
    for (const auto& l : lines) classes.push_back(std::string(l.substr(0, l.find(' '))));
  } else {
    ASSIGN_OR_RETURN(classes, SubdirNames(data + "/train"));
  }
  if (spec.split == "train") {
    ASSIGN_OR_RETURN(auto items, ScanClassFolders(data + "/train", classes, spec.path));
    return std::unique_ptr<Source>(Named(std::move(items), classes, spec.http));
  }
  const auto index = IndexOf(classes);
  const std::string val_dir = data + "/val";
  if (!fs::is_directory(val_dir)) return absl::NotFoundError("ImageNet validation folder " + val_dir + " does not exist");
  std::string list_path;
  for (const std::string& cand : {spec.path + "/LOC_val_solution.csv", data + "/LOC_val_solution.csv",
                                  spec.path + "/val.txt", data + "/val.txt"}) {
    if (fs::exists(cand)) { list_path = cand; break; }
  }
  if (list_path.empty()) {
    return absl::NotFoundError("no LOC_val_solution.csv or val.txt under " + spec.path + " for ImageNet validation labels");
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(list_path));
  const bool csv = absl::EndsWith(list_path, ".csv");
  std::vector<Item> items;
  int lineno = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++lineno;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || (csv && lineno == 1 && absl::StartsWith(line, "ImageId"))) continue;
    // CSV: "ILSVRC2012_val_00008726,n02119789 255 142 454 329 ..."; val.txt: "name.JPEG 65".
    std::vector<std::string> parts = absl::StrSplit(line, csv ? absl::ByChar(',') : absl::ByChar(' '), absl::SkipEmpty());
    if (parts.size() < 2) return absl::InvalidArgumentError(absl::StrCat(list_path, ":", lineno, ": expected 'image class'"));
    std::string cls = parts[1].substr(0, parts[1].find(' '));
    int64_t label = -1;
    if (auto it = index.find(cls); it != index.end()) {
      label = it->second;
    } else if (!absl::SimpleAtoi(cls, &label) || label < 0 || label >= static_cast<int64_t>(classes.size())) {
      return absl::InvalidArgumentError(absl::StrCat(list_path, ":", lineno, ": unknown class '", cls, "'"));
    }
    std::string name = parts[0];
    if (csv) name += ".JPEG";
    std::string location = val_dir + "/" + name;
    std::string key = fs::path(location).lexically_relative(spec.path).generic_string();
    items.push_back({std::move(location), label, std::move(key)});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.location < b.location; });
  if (items.empty()) return absl::NotFoundError("validation list " + list_path + " is empty");
  return std::unique_ptr<Source>(Named(std::move(items), classes, spec.http));
}

absl::StatusOr<JsonlRecords> ParseJsonlRecords(absl::string_view text, const DatasetSpec& spec,
                                               const std::vector<std::string>& classes) {
  const int num_classes = classes.empty() ? spec.num_classes : static_cast<int>(classes.size());
  const auto index = IndexOf(classes);
  const fs::path base = fs::path(spec.path).parent_path();
  JsonlRecords out;
  std::map<std::string, int64_t>& excluded = out.excluded;
  int64_t lineno = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++lineno;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    auto malformed = [&](const std::string& why) -> absl::Status {
      if (spec.skip_malformed) { ++excluded["malformed_line"]; return absl::OkStatus(); }
      return absl::InvalidArgumentError(absl::StrCat(spec.path, ":", lineno, ": ", why,
                                                     " (set skip_malformed to skip and count such lines)"));
    };
    nlohmann::json rec = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (rec.is_discarded() || !rec.is_object()) { RETURN_IF_ERROR(malformed("not a JSON object")); continue; }
    std::string location, key;
    if (rec.contains("url") && rec["url"].is_string()) {
      location = key = rec["url"].get<std::string>();
    } else if (rec.contains("path") && rec["path"].is_string()) {
      key = rec["path"].get<std::string>();
      fs::path p = key;
      location = p.is_absolute() ? p.string() : (base / p).string();
    } else {
      RETURN_IF_ERROR(malformed("record has no string 'url' or 'path'"));
      continue;
    }
    if (!rec.contains("label")) { RETURN_IF_ERROR(malformed("record has no 'label'")); continue; }
    const auto& lab = rec["label"];
    int64_t label = -1;
    if (lab.is_string()) {
      const std::string name = lab.get<std::string>();
      if (absl::AsciiStrToLower(name) == "unknown") { ++excluded["unknown_label"]; continue; }
      auto it = index.find(name);
      if (it == index.end()) { ++excluded["label_out_of_list"]; continue; }
      label = it->second;
    } else if (lab.is_number_integer()) {
      label = lab.get<int64_t>();
      if (label < 0 || label >= num_classes) { ++excluded["label_out_of_list"]; continue; }
    } else {
      RETURN_IF_ERROR(malformed("'label' is neither a string nor an integer"));
      continue;
    }
    out.items.push_back({location, label, std::move(key)});
  }
  if (out.items.empty()) return absl::InvalidArgumentError("JSONL file " + spec.path + " has no usable records");
  return out;
}

absl::StatusOr<std::unique_ptr<Source>> OpenJsonlSource(const DatasetSpec& spec) {
  std::vector<std::string> classes;
  if (!spec.class_list_path.empty()) {
    ASSIGN_OR_RETURN(classes, ReadClassList(spec.class_list_path));
  }
  const int num_classes = classes.empty() ? spec.num_classes : static_cast<int>(classes.size());
  if (num_classes <= 0) {
    return absl::InvalidArgumentError("jsonl dataset " + spec.path + " needs a class list or num_classes > 0");
  }
  ASSIGN_OR_RETURN(const std::string text, ReadFile(spec.path));  // NOT_FOUND, or DATA_LOSS on a read error
  ASSIGN_OR_RETURN(JsonlRecords records, ParseJsonlRecords(text, spec, classes));
  std::vector<Item> items;
  items.reserve(records.items.size());
  for (auto& it : records.items) items.push_back({std::move(it.location), it.label, std::move(it.key)});
  auto source = std::make_unique<EncodedSource>(std::move(items), num_classes, spec.http, std::move(records.excluded));
  source->names_ = std::move(classes);  // empty without a class list
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace cf::data
