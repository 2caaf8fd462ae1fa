// A persistent caption -> label cache in SQLite, so a repeated caption costs no request and a
// rerun of the same job makes none for captions labeled before.
//
// Entries live under a namespace string (model, prompt version, category list, answer mode), so
// changing any of them never serves a stale label. Only real category labels are cached (never
// `unknown` or errors: those deserve another try). Writes are batched into transactions of
// `batch` puts (Flush() commits early); a killed process loses at most the open batch, which only
// costs requests. WAL journal, synchronous=NORMAL. Not thread-safe: one thread owns it.
#ifndef CONVFOREVER_CAPTION_LABEL_CACHE_H_
#define CONVFOREVER_CAPTION_LABEL_CACHE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace cf::caption {

class LabelCache {
 public:
  static absl::StatusOr<std::unique_ptr<LabelCache>> Open(const std::string& path, std::string name_space,
                                                          int batch = 256);
  ~LabelCache();
  LabelCache(const LabelCache&) = delete;
  LabelCache& operator=(const LabelCache&) = delete;

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view caption);
  absl::Status Put(absl::string_view caption, absl::string_view label);
  absl::Status Flush();

 private:
  LabelCache() = default;
  absl::Status Exec(const char* sql);
  absl::Status Error(const std::string& what) const;

  std::string path_;
  std::string ns_;
  int batch_ = 256;
  int pending_ = 0;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* get_ = nullptr;
  sqlite3_stmt* put_ = nullptr;
};

// The namespace key for a configuration (a hash of its parts, readable prefix).
std::string CacheNamespace(absl::string_view model, int prompt_version, bool json_mode,
                           const std::vector<std::string>& categories);

}  // namespace cf::caption

#endif  // CONVFOREVER_CAPTION_LABEL_CACHE_H_
