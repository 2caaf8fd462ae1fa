// The preflight's classes check: do the labels of the data agree with the classes the model gets?
//
// The trainer leaves a sample out when its label is not a class (a jsonl record's name missing from
// --class_list, a wds sample's "bad_label"): a class list that disagrees with the data trains
// quietly on part of it. Here the first `scan_samples` samples are read and the first offender is
// named, with where it was seen:
//   jsonl  the records' "label" (a name must be in --class_list; "unknown" is left out by design;
//          a number must be below the class count), by line;
//   wds    the stream's own label parsing (WdsSource's bad-label observer), by sample key;
//   others (random access: idx, cifar, folder, parquet, synthetic) samples evenly spaced over the
//          set; a label at or above the class count, and class names the data defines that differ
//          from --class_list (a Parquet ClassLabel: the source refuses to open, and says why).
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/data/http_fetch.h"
#include "convforever/data/source.h"
#include "convforever/data/wds.h"
#include "convforever/http/headers.h"
#include "convforever/train/preflight_checks.h"
#include "convforever/train/run_data.h"
#include "nlohmann/json.hpp"

namespace cf::train::preflight {
namespace {

constexpr char kName[] = "classes";

std::string Redacted(const absl::Status& s) { return http::RedactUrlsInText(std::string(s.message())); }

std::string ClassesPhrase(size_t n, bool from_list) {
  return from_list ? absl::StrCat("the ", n, " classes of --class_list") : absl::StrCat("the data's ", n, " classes");
}

CheckRow ScanJsonl(const std::string& path, const std::vector<std::string>& names, int64_t limit) {
  std::ifstream in(path);
  if (!in) return {kName, CheckStatus::kFail, absl::StrCat("cannot open ", path)};
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < names.size(); ++i) index[names[i]] = static_cast<int64_t>(i);
  std::string line;
  int64_t lineno = 0, scanned = 0, unknown = 0;
  while (scanned < limit && std::getline(in, line)) {
    ++lineno;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    nlohmann::json rec = nlohmann::json::parse(line, nullptr, false);
    if (!rec.is_object() || !rec.contains("label")) continue;  // the data check reports malformed lines
    ++scanned;
    const nlohmann::json& label = rec["label"];
    const std::string at = absl::StrCat(path, ":", lineno);
    if (label.is_string()) {
      const std::string name = label.get<std::string>();
      if (absl::AsciiStrToLower(name) == "unknown") {
        ++unknown;
        continue;
      }
      if (names.empty()) {
        return {kName, CheckStatus::kFail,
                absl::StrFormat("label '%s' (%s) is a name, but there is no --class_list to look it up in", name, at)};
      }
      if (!index.count(name)) {
        return {kName, CheckStatus::kFail,
                absl::StrFormat("label '%s' (%s) is not in %s: the trainer would leave such records out",
                                name, at, ClassesPhrase(names.size(), true))};
      }
    } else if (label.is_number_integer()) {
      const int64_t v = label.get<int64_t>();
      if (!names.empty() && (v < 0 || v >= static_cast<int64_t>(names.size()))) {
        return {kName, CheckStatus::kFail,
                absl::StrFormat("label %d (%s) is outside %s", v, at, ClassesPhrase(names.size(), true))};
      }
    }
  }
  return {kName, CheckStatus::kOk,
          absl::StrFormat("%d records of %s agree with %s%s", scanned, path, ClassesPhrase(names.size(), true),
                          unknown ? absl::StrCat(" (", unknown, " labelled 'unknown', left out)") : "")};
}

CheckRow ScanWds(const data::DatasetSpec& spec, int64_t limit) {
  absl::StatusOr<std::unique_ptr<data::WdsSource>> source = data::WdsSource::Open(spec);
  if (!source.ok()) return {kName, CheckStatus::kFail, Redacted(source.status())};
  std::atomic<bool> cancel{false};
  std::string bad_key, bad_label;
  int64_t seen = 0;
  (*source)->set_bad_label_observer([&](const std::string& key, const std::string& label) {
    if (bad_key.empty()) {
      bad_key = key;
      bad_label = label;
    }
    cancel = true;
  });
  std::map<std::string, int64_t> skipped;
  (*source)->ReadShards((*source)->shards(), [&](data::FetchResult) { return ++seen < limit; }, &skipped, cancel);
  const int k = (*source)->num_classes();
  const bool from_list = !spec.class_list_path.empty();
  if (!bad_key.empty()) {
    return {kName, CheckStatus::kFail,
            absl::StrFormat("label '%s' of sample %s is not one of %s: the trainer would leave such samples out",
                            bad_label, http::RedactUrl(bad_key), ClassesPhrase(k, from_list))};
  }
  if (seen == 0) {
    std::string why;
    for (const auto& [reason, count] : skipped) absl::StrAppend(&why, why.empty() ? "" : ", ", count, " ", reason);
    return {kName, CheckStatus::kFail, absl::StrCat("no sample could be read", why.empty() ? "" : ": " + why)};
  }
  return {kName, CheckStatus::kOk, absl::StrFormat("%d samples agree with %s", seen, ClassesPhrase(k, from_list))};
}

CheckRow ScanRandomAccess(const data::DatasetSpec& spec, const std::vector<std::string>& names, int64_t limit) {
  absl::StatusOr<std::unique_ptr<data::Source>> opened = data::OpenSource(spec);
  if (!opened.ok()) return {kName, CheckStatus::kFail, Redacted(opened.status())};
  data::Source& source = **opened;
  const bool from_list = !names.empty();
  const std::vector<std::string> own = source.class_names();
  if (from_list && !own.empty() && own != names) {
    size_t i = 0;
    while (i < own.size() && i < names.size() && own[i] == names[i]) ++i;
    return {kName, CheckStatus::kFail,
            absl::StrFormat("the data names %d classes and --class_list %d; they first differ at class %d "
                            "('%s' in the data, '%s' in the list)",
                            own.size(), names.size(), i, i < own.size() ? own[i] : "",
                            i < names.size() ? names[i] : "")};
  }
  const int64_t k = from_list ? static_cast<int64_t>(names.size()) : source.num_classes();
  const int64_t size = source.size(), n = std::min(limit, size);
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < n; ++i) indices.push_back(i * size / std::max<int64_t>(n, 1));
  int64_t failed = 0;
  for (size_t begin = 0; begin < indices.size(); begin += 256) {
    const size_t end = std::min(indices.size(), begin + 256);
    std::vector<data::FetchResult> got = source.Fetch(absl::MakeConstSpan(indices).subspan(begin, end - begin));
    for (size_t j = 0; j < got.size(); ++j) {
      if (!got[j].record.ok()) {
        ++failed;
        continue;
      }
      const int64_t label = got[j].record->label;
      if (got[j].record->soft_label.empty() && (label < 0 || label >= k)) {
        const std::string key = source.SampleKey(indices[begin + j]);
        return {kName, CheckStatus::kFail,
                absl::StrFormat("label %d of sample %d%s is outside %s", label, indices[begin + j],
                                key.empty() ? "" : absl::StrCat(" (", http::RedactUrl(key), ")"),
                                ClassesPhrase(k, from_list))};
      }
    }
  }
  return {kName, CheckStatus::kOk,
          absl::StrFormat("%d of %d samples (evenly spaced) agree with %s%s", n - failed, size,
                          ClassesPhrase(k, from_list),
                          failed ? absl::StrCat("; ", failed, " could not be read") : "")};
}

}  // namespace

CheckRow CheckClasses(Context& c) {
  const TrainerOptions& o = c.options;
  if (!c.train) return {kName, CheckStatus::kSkip, "the training data does not open (data check)"};
  std::vector<std::string> names;
  if (!o.class_list.empty()) {
    absl::StatusOr<std::vector<std::string>> read = data::ReadClassList(o.class_list);
    if (!read.ok()) return {kName, CheckStatus::kFail, absl::StrCat("--class_list: ", Redacted(read.status()))};
    names = *std::move(read);
  }
  data::DatasetSpec spec = MakeDatasetSpec(o, true);
  spec.subset = 0;
  const int64_t limit = std::max<int64_t>(1, c.preflight.scan_samples);
  if (o.data == "jsonl") {
    if (data::IsHttpUrl(spec.path)) return {kName, CheckStatus::kSkip, "a remote jsonl file is not scanned"};
    return ScanJsonl(spec.path, names, limit);
  }
  if (o.data == "wds") {
    if (spec.class_list_path.empty() && c.train) spec.num_classes = c.train->num_classes();
    return ScanWds(spec, limit);
  }
  return ScanRandomAccess(spec, names, limit);
}

}  // namespace cf::train::preflight
