#include "convforever/caption/label_cache.h"

#include <sqlite3.h>

#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cf::caption {

std::string CacheNamespace(absl::string_view model, int prompt_version, bool json_mode,
                           const std::vector<std::string>& categories) {
  // A stable FNV-1a over the parts (absl::Hash is salted per process, so unusable on disk).
  const std::string joined =
      absl::StrCat(model, "\x1f", prompt_version, "\x1f", json_mode, "\x1f", absl::StrJoin(categories, "\x1e"));
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : joined) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrCat(model, "|v", prompt_version, json_mode ? "|json|" : "|text|", absl::Hex(h));
}

absl::StatusOr<std::unique_ptr<LabelCache>> LabelCache::Open(const std::string& path, std::string name_space,
                                                             int batch) {
  std::unique_ptr<LabelCache> cache(new LabelCache());
  cache->path_ = path;
  cache->ns_ = std::move(name_space);
  cache->batch_ = std::max(1, batch);
  if (sqlite3_open_v2(path.c_str(), &cache->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    return cache->Error("open");
  }
  sqlite3_busy_timeout(cache->db_, 5000);
  if (absl::Status s = cache->Exec("PRAGMA journal_mode=WAL"); !s.ok()) return s;
  if (absl::Status s = cache->Exec("PRAGMA synchronous=NORMAL"); !s.ok()) return s;
  if (absl::Status s = cache->Exec(
          "CREATE TABLE IF NOT EXISTS labels (ns TEXT NOT NULL, caption TEXT NOT NULL, "
          "label TEXT NOT NULL, PRIMARY KEY (ns, caption)) WITHOUT ROWID");
      !s.ok()) {
    return s;
  }
  if (sqlite3_prepare_v2(cache->db_, "SELECT label FROM labels WHERE ns = ?1 AND caption = ?2", -1,
                         &cache->get_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(cache->db_, "INSERT OR REPLACE INTO labels (ns, caption, label) VALUES (?1, ?2, ?3)",
                         -1, &cache->put_, nullptr) != SQLITE_OK) {
    return cache->Error("prepare");
  }
  return cache;
}

LabelCache::~LabelCache() {
  (void)Flush();
  sqlite3_finalize(get_);
  sqlite3_finalize(put_);
  if (db_ != nullptr) sqlite3_close(db_);
}

absl::Status LabelCache::Error(const std::string& what) const {
  return absl::InternalError(absl::StrCat("label cache ", path_, ": ", what, ": ",
                                          db_ != nullptr ? sqlite3_errmsg(db_) : "cannot open"));
}

absl::Status LabelCache::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = absl::StrCat("label cache ", path_, ": ", sql, ": ", err != nullptr ? err : "?");
    sqlite3_free(err);
    return absl::InternalError(msg);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> LabelCache::Get(absl::string_view caption) {
  sqlite3_reset(get_);
  sqlite3_bind_text(get_, 1, ns_.data(), static_cast<int>(ns_.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(get_, 2, caption.data(), static_cast<int>(caption.size()), SQLITE_TRANSIENT);
  const int rc = sqlite3_step(get_);
  if (rc == SQLITE_ROW) {
    const char* text = reinterpret_cast<const char*>(sqlite3_column_text(get_, 0));
    return std::optional<std::string>(text != nullptr ? text : "");
  }
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return Error("lookup");
}

absl::Status LabelCache::Put(absl::string_view caption, absl::string_view label) {
  if (pending_ == 0) {
    if (absl::Status s = Exec("BEGIN"); !s.ok()) return s;
  }
  sqlite3_reset(put_);
  sqlite3_bind_text(put_, 1, ns_.data(), static_cast<int>(ns_.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(put_, 2, caption.data(), static_cast<int>(caption.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(put_, 3, label.data(), static_cast<int>(label.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(put_) != SQLITE_DONE) return Error("insert");
  if (++pending_ >= batch_) return Flush();
  return absl::OkStatus();
}

absl::Status LabelCache::Flush() {
  if (pending_ == 0 || db_ == nullptr) return absl::OkStatus();
  pending_ = 0;
  return Exec("COMMIT");
}

}  // namespace cf::caption
