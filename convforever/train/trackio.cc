#include "convforever/train/trackio.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/base/status_macros.h"

namespace cf::train {
namespace {

// Trackio's init_db(), statement for statement (trackio/sqlite_storage.py), so that a database we
// create is exactly one Trackio would have created.
constexpr const char* kSchema[] = {
    R"(CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    run_name TEXT NOT NULL,
    step INTEGER NOT NULL,
    metrics TEXT NOT NULL
))",
    R"(CREATE TABLE IF NOT EXISTS configs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    run_name TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE(run_id)
))",
    R"(CREATE TABLE IF NOT EXISTS system_metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    run_name TEXT NOT NULL,
    metrics TEXT NOT NULL
))",
    R"(CREATE TABLE IF NOT EXISTS traces (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    run_name TEXT NOT NULL,
    step INTEGER NOT NULL,
    key TEXT NOT NULL,
    trace_index INTEGER,
    messages TEXT NOT NULL,
    metadata TEXT NOT NULL,
    search_text TEXT NOT NULL,
    log_id TEXT,
    space_id TEXT
))",
    R"(CREATE TABLE IF NOT EXISTS project_metadata (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
))",
    R"(CREATE TABLE IF NOT EXISTS pending_uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id TEXT NOT NULL,
    run_id TEXT,
    run_name TEXT,
    step INTEGER,
    file_path TEXT NOT NULL,
    relative_path TEXT,
    created_at TEXT NOT NULL
))",
    R"(CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    run_name TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT,
    level TEXT NOT NULL DEFAULT 'warn',
    step INTEGER,
    alert_id TEXT
))",
    R"(CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL
))",
    R"(CREATE TABLE IF NOT EXISTS artifact_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id),
    version INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    manifest TEXT NOT NULL,
    metadata TEXT,
    size_bytes INTEGER NOT NULL,
    producer_run_id TEXT,
    producer_run_name TEXT,
    created_at TEXT NOT NULL,
    UNIQUE(artifact_id, version),
    UNIQUE(artifact_id, manifest_digest)
))",
    R"(CREATE TABLE IF NOT EXISTS artifact_aliases (
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id),
    alias TEXT NOT NULL,
    artifact_version_id INTEGER NOT NULL REFERENCES artifact_versions(id),
    PRIMARY KEY (artifact_id, alias)
))",
    R"(CREATE TABLE IF NOT EXISTS run_artifact_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT,
    run_name TEXT,
    artifact_version_id INTEGER NOT NULL REFERENCES artifact_versions(id),
    direction TEXT NOT NULL CHECK(direction IN ('input', 'output')),
    created_at TEXT NOT NULL
))",
    "CREATE INDEX IF NOT EXISTS idx_run_artifact_links_run ON run_artifact_links(run_id, run_name)",
    "CREATE INDEX IF NOT EXISTS idx_run_artifact_links_name "
    "ON run_artifact_links(run_name, run_id)",
    "CREATE INDEX IF NOT EXISTS idx_run_artifact_links_version "
    "ON run_artifact_links(artifact_version_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_run_artifact_links_unique "
    "ON run_artifact_links(run_id, artifact_version_id, direction)",
    "?ALTER TABLE pending_uploads ADD COLUMN kind TEXT NOT NULL DEFAULT 'media'",
    "?ALTER TABLE pending_uploads ADD COLUMN digest TEXT",
    "CREATE INDEX IF NOT EXISTS idx_pending_uploads_kind ON pending_uploads(kind)",
    "CREATE INDEX IF NOT EXISTS idx_metrics_run_step ON metrics(run_id, step)",
    "CREATE INDEX IF NOT EXISTS idx_metrics_run_timestamp ON metrics(run_id, timestamp)",
    "CREATE INDEX IF NOT EXISTS idx_configs_run_name ON configs(run_name)",
    "CREATE INDEX IF NOT EXISTS idx_system_metrics_run_timestamp "
    "ON system_metrics(run_id, timestamp)",
    "CREATE INDEX IF NOT EXISTS idx_traces_run_step ON traces(run_id, step)",
    "CREATE INDEX IF NOT EXISTS idx_traces_run_timestamp ON traces(run_id, timestamp)",
    "CREATE INDEX IF NOT EXISTS idx_traces_search ON traces(search_text)",
    "CREATE INDEX IF NOT EXISTS idx_alerts_run ON alerts(run_id)",
    "CREATE INDEX IF NOT EXISTS idx_alerts_timestamp ON alerts(timestamp)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_alerts_alert_id ON alerts(alert_id) "
    "WHERE alert_id IS NOT NULL",
    // Additive migrations: a leading '?' marks statements that fail harmlessly when already done.
    "?ALTER TABLE metrics ADD COLUMN log_id TEXT",
    "?ALTER TABLE metrics ADD COLUMN space_id TEXT",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_metrics_log_id ON metrics(log_id) "
    "WHERE log_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS idx_metrics_pending ON metrics(space_id) "
    "WHERE space_id IS NOT NULL",
    "?ALTER TABLE system_metrics ADD COLUMN log_id TEXT",
    "?ALTER TABLE system_metrics ADD COLUMN space_id TEXT",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_system_metrics_log_id ON system_metrics(log_id) "
    "WHERE log_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS idx_system_metrics_pending ON system_metrics(space_id) "
    "WHERE space_id IS NOT NULL",
};

// Keys Trackio's Run.log renames to "__<key>" (utils.RESERVED_KEYS).
bool IsReservedMetricKey(const std::string& key) {
  for (const char* reserved : {"project", "run", "timestamp", "step", "time", "metrics"}) {
    if (key == reserved) return true;
  }
  return key.rfind("__", 0) == 0;
}

// serialize_values(): non-finite floats become strings at any depth.
nlohmann::json SerializeValues(const nlohmann::json& value) {
  if (value.is_number_float()) return JsonNumberOrString(value.get<double>());
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = value.begin(); it != value.end(); ++it) out[it.key()] = SerializeValues(*it);
    return out;
  }
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : value) out.push_back(SerializeValues(item));
    return out;
  }
  return value;
}

absl::Status SqliteError(sqlite3* db, absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(path, ": ", what, ": ", sqlite3_errmsg(db)));
}

absl::Status Exec(sqlite3* db, const char* sql, const std::string& path) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    absl::Status status =
        absl::InternalError(absl::StrCat(path, ": ", error ? error : "error", " in: ", sql));
    sqlite3_free(error);
    return status;
  }
  return absl::OkStatus();
}

// Holds an exclusive flock for its lifetime (Trackio's ProcessLock on <project>.lock).
class FlockGuard {
 public:
  explicit FlockGuard(int fd) : fd_(fd) {
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~FlockGuard() { ::flock(fd_, LOCK_UN); }

 private:
  int fd_;
};

using trackio_internal::SqlParam;

// Binds and steps one statement.
absl::Status RunStatement(sqlite3* db, const char* sql, const std::vector<SqlParam>& params,
                          const std::string& path) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    return SqliteError(db, "cannot prepare statement", path);
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const int index = static_cast<int>(i) + 1;
    if (const auto* text = std::get_if<std::string>(&params[i])) {
      sqlite3_bind_text(stmt, index, text->data(), static_cast<int>(text->size()),
                        SQLITE_TRANSIENT);
    } else if (const auto* number = std::get_if<int64_t>(&params[i])) {
      sqlite3_bind_int64(stmt, index, *number);
    } else {
      sqlite3_bind_null(stmt, index);
    }
  }
  const int rc = sqlite3_step(stmt);
  absl::Status status =
      rc == SQLITE_DONE ? absl::OkStatus() : SqliteError(db, "statement failed", path);
  sqlite3_finalize(stmt);
  return status;
}

}  // namespace

std::string ResolveTrackioDir() {
  if (const char* dir = std::getenv("TRACKIO_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (const char* hf_home = std::getenv("HF_HOME"); hf_home != nullptr && *hf_home != '\0') {
    return absl::StrCat(hf_home, "/trackio");
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "", "/.cache/huggingface/trackio");
}

std::string CanonicalProjectName(absl::string_view project) {
  std::string safe;
  for (char c : project) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') safe.push_back(c);
  }
  return safe.empty() ? "default" : safe;
}

std::string NewUuid4Hex() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          (static_cast<uint64_t>(std::random_device{}()) << 32)};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xF000ull) | 0x4000ull;              // version 4
  lo = (lo & ~(0xC0ull << 56)) | (0x80ull << 56);  // variant 10xx
  return absl::StrFormat("%016x%016x", hi, lo);
}

std::string IsoTimestampUtc(std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const int64_t micros = duration_cast<microseconds>(time.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(micros / 1000000 - (micros % 1000000 < 0));
  const int64_t fraction = ((micros % 1000000) + 1000000) % 1000000;
  std::tm tm;
  gmtime_r(&seconds, &tm);
  char base[32];
  std::strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
  // Python's isoformat() drops the fraction when it is zero.
  return fraction == 0 ? absl::StrCat(base, "+00:00")
                       : absl::StrFormat("%s.%06d+00:00", base, fraction);
}

std::string TrackioMetricsJson(const Scalars& scalars) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [name, value] : scalars) {
    out[IsReservedMetricKey(name) ? "__" + name : name] = JsonNumberOrString(value);
  }
  return out.dump();
}

absl::StatusOr<std::unique_ptr<TrackioSink>> TrackioSink::Open(const TrackioOptions& options) {
  if (options.run_name.empty()) return absl::InvalidArgumentError("Trackio run_name is empty");
  const std::string dir = options.dir.empty() ? ResolveTrackioDir() : options.dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create Trackio dir ", dir, ": ", ec.message()));
  }
  const std::string project = CanonicalProjectName(options.project);
  const std::string run_id = options.run_id.empty() ? NewUuid4Hex() : options.run_id;
  std::unique_ptr<TrackioSink> sink(new TrackioSink(absl::StrCat(dir, "/", project, ".db"),
                                                    absl::StrCat(dir, "/", project, ".lock"),
                                                    run_id, options));
  sink->lock_fd_ = ::open(sink->lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (sink->lock_fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open ", sink->lock_path_, ": ", std::strerror(errno)));
  }
  FlockGuard lock(sink->lock_fd_);
  if (sqlite3_open_v2(sink->db_path_.c_str(), &sink->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    return SqliteError(sink->db_, "cannot open database", sink->db_path_);
  }
  sqlite3_busy_timeout(sink->db_, 30000);  // Trackio connects with timeout=30 s
  for (const char* pragma : {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
                             "PRAGMA temp_store = MEMORY", "PRAGMA cache_size = -20000"}) {
    RETURN_IF_ERROR(Exec(sink->db_, pragma, sink->db_path_));
  }
  RETURN_IF_ERROR(Exec(sink->db_, "BEGIN", sink->db_path_));
  for (const char* statement : kSchema) {
    const bool may_fail = statement[0] == '?';
    absl::Status s = Exec(sink->db_, may_fail ? statement + 1 : statement, sink->db_path_);
    if (!s.ok() && !may_fail) {
      Exec(sink->db_, "ROLLBACK", sink->db_path_).IgnoreError();
      return s;
    }
  }
  RETURN_IF_ERROR(Exec(sink->db_, "COMMIT", sink->db_path_));
  return sink;
}

TrackioSink::~TrackioSink() { Close().IgnoreError(); }

absl::Status TrackioSink::Insert(const char* sql, const std::vector<SqlParam>& params) {
  absl::MutexLock lock(&mu_);
  if (db_ == nullptr) return absl::FailedPreconditionError(absl::StrCat(db_path_, " is closed"));
  FlockGuard flock(lock_fd_);
  RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE", db_path_));
  absl::Status status = RunStatement(db_, sql, params, db_path_);
  RETURN_IF_ERROR(Exec(db_, status.ok() ? "COMMIT" : "ROLLBACK", db_path_));
  return status;
}

absl::Status TrackioSink::Log(int64_t step, const Scalars& scalars) {
  return Insert(
      "INSERT OR IGNORE INTO metrics "
      "(timestamp, run_id, run_name, step, metrics, log_id, space_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
      {IsoTimestampUtc(std::chrono::system_clock::now()), run_id_, run_name_, step,
       TrackioMetricsJson(scalars), NewUuid4Hex(), nullptr});
}

absl::Status TrackioSink::LogSystem(const Scalars& scalars) {
  return Insert(
      "INSERT OR IGNORE INTO system_metrics "
      "(timestamp, run_id, run_name, metrics, log_id, space_id) VALUES (?, ?, ?, ?, ?, ?)",
      {IsoTimestampUtc(std::chrono::system_clock::now()), run_id_, run_name_,
       TrackioMetricsJson(scalars), NewUuid4Hex(), nullptr});
}

absl::Status TrackioSink::DiscardAfter(int64_t step) {
  return Insert("DELETE FROM metrics WHERE run_id = ? AND step > ?", {run_id_, step});
}

absl::Status TrackioSink::LogConfig(const nlohmann::json& config) {
  if (!config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(db_path_, ": config must be a JSON object"));
  }
  for (auto it = config.begin(); it != config.end(); ++it) {
    if (!it.key().empty() && it.key()[0] == '_') {
      return absl::InvalidArgumentError(absl::StrCat(
          db_path_, ": config key '", it.key(), "' is reserved (Trackio owns keys starting '_')"));
    }
  }
  const std::string now = IsoTimestampUtc(std::chrono::system_clock::now());
  nlohmann::json row = SerializeValues(StripSecrets(config));
  row["_Username"] = options_.username ? nlohmann::json(*options_.username) : nlohmann::json();
  row["_Created"] = now;
  row["_Group"] = options_.group.empty() ? nlohmann::json() : nlohmann::json(options_.group);
  return Insert(
      "INSERT OR REPLACE INTO configs (run_id, run_name, config, created_at) VALUES (?, ?, ?, ?)",
      {run_id_, run_name_, row.dump(), now});
}

absl::Status TrackioSink::Flush() {
  absl::MutexLock lock(&mu_);
  if (db_ == nullptr) return absl::FailedPreconditionError(absl::StrCat(db_path_, " is closed"));
  FlockGuard flock(lock_fd_);
  return Exec(db_, "PRAGMA wal_checkpoint(PASSIVE)", db_path_);
}

absl::Status TrackioSink::Close() {
  absl::MutexLock lock(&mu_);
  absl::Status status;
  if (db_ != nullptr && sqlite3_close(db_) != SQLITE_OK) {
    status = SqliteError(db_, "cannot close", db_path_);
  }
  db_ = nullptr;
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
  return status;
}

}  // namespace cf::train
