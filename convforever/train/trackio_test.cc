// Checks our Trackio store with the SQL Trackio's own reader runs (trackio/sqlite_storage.py:
// get_run_records, _resolve_run_identity, _fetch_metric_logs_with_cursor,
// _fetch_system_logs_with_cursor, get_run_config, get_tab_availability_flags,
// get_max_steps_for_runs, get_log_count, get_last_step), copied verbatim below.
#include "convforever/train/trackio.h"

#include <sqlite3.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace cf::train {
namespace {

std::string TempDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(root ? root : "/tmp") + "/trackio_XXXXXX";
  return mkdtemp(tmpl.data());
}

using Row = std::vector<std::string>;  // NULL reads as "<null>"

// Runs `sql` with text parameters on a fresh read-only connection, as a separate reader would.
std::vector<Row> Query(const std::string& db_path, const std::string& sql,
                       const std::vector<std::string>& params = {}) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db) << " in " << sql;
  for (size_t i = 0; i < params.size(); ++i) {
    sqlite3_bind_text(stmt, static_cast<int>(i) + 1, params[i].c_str(), -1, SQLITE_TRANSIENT);
  }
  std::vector<Row> rows;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    Row row;
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      const unsigned char* text = sqlite3_column_text(stmt, c);
      row.push_back(text ? reinterpret_cast<const char*>(text) : "<null>");
    }
    rows.push_back(row);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rows;
}

class TrackioTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir(); }

  std::unique_ptr<TrackioSink> OpenRun(const std::string& name, const std::string& group = "") {
    TrackioOptions options;
    options.project = "my.project!";
    options.run_name = name;
    options.group = group;
    options.dir = dir_;
    auto sink = TrackioSink::Open(options);
    EXPECT_TRUE(sink.ok()) << sink.status();
    return sink.ok() ? std::move(*sink) : nullptr;
  }

  std::string dir_;
};

TEST_F(TrackioTest, SchemaHasEveryTrackioTableAndIndex) {
  auto sink = OpenRun("run-a");
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->db_path(), dir_ + "/myproject.db");
  const std::string db = sink->db_path();
  std::set<std::string> tables, indexes;
  for (const Row& r : Query(db, "SELECT type, name FROM sqlite_master")) {
    if (r[0] == "table") tables.insert(r[1]);
    if (r[0] == "index" && !absl::StartsWith(r[1], "sqlite_autoindex")) indexes.insert(r[1]);
  }
  for (const char* t :
       {"metrics", "configs", "system_metrics", "traces", "project_metadata", "pending_uploads",
        "alerts", "artifacts", "artifact_versions", "artifact_aliases", "run_artifact_links"}) {
    EXPECT_TRUE(tables.count(t)) << t;
  }
  EXPECT_EQ(indexes.size(), 19u);  // as many as init_db creates
  for (const char* i :
       {"idx_metrics_run_step", "idx_metrics_run_timestamp", "idx_metrics_log_id",
        "idx_metrics_pending", "idx_configs_run_name", "idx_system_metrics_run_timestamp",
        "idx_system_metrics_log_id", "idx_system_metrics_pending", "idx_alerts_alert_id",
        "idx_pending_uploads_kind", "idx_run_artifact_links_unique"}) {
    EXPECT_TRUE(indexes.count(i)) << i;
  }
  // Trackio picks its run_id code path from PRAGMA table_info (_supports_run_ids).
  std::vector<std::string> columns;
  for (const Row& r : Query(db, "PRAGMA table_info(metrics)")) columns.push_back(r[1]);
  EXPECT_EQ(columns, (std::vector<std::string>{"id", "run_id", "timestamp", "run_name", "step",
                                               "metrics", "log_id", "space_id"}));
  EXPECT_EQ(Query(db, "PRAGMA journal_mode")[0][0], "wal");
  // Opening again (a second run, or a resume) is idempotent.
  auto again = OpenRun("run-b");
  ASSERT_TRUE(again);
  EXPECT_TRUE(std::ifstream(dir_ + "/myproject.lock").good());
}

TEST_F(TrackioTest, TrackioReaderQueriesSeeOurRows) {
  auto a = OpenRun("run-a", "sweep-1");
  auto b = OpenRun("run-b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->LogConfig({{"lr", 0.004}, {"hf_token", "hf_x"}, {"depth", 18}}).ok());
  ASSERT_TRUE(a->Log(0, {{"train/loss", 2.5}, {"lr", 0.001}}).ok());
  ASSERT_TRUE(a->Log(1, {{"train/loss", std::nan("")}, {"step", 3}}).ok());
  ASSERT_TRUE(b->Log(5, {{"val/top1", -1.0}}).ok());
  ASSERT_TRUE(a->LogSystem({{"cpu/utilization", 50.0}, {"memory/used", 1.5}}).ok());
  const std::string db = a->db_path();

  // get_run_records (run_id schema, no artifact links).
  auto runs = Query(db,
                    "SELECT run_id, run_name, MIN(created_at) AS created_at FROM ("
                    "SELECT run_id, run_name, timestamp AS created_at FROM metrics) "
                    "GROUP BY run_id, run_name ORDER BY created_at ASC");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0][0], a->run_id());
  EXPECT_EQ(runs[0][1], "run-a");
  EXPECT_EQ(runs[1][1], "run-b");

  // _resolve_run_identity by name.
  auto identity = Query(db,
                        "SELECT run_id FROM metrics WHERE run_name = ? GROUP BY run_id "
                        "ORDER BY MIN(timestamp) DESC LIMIT 1",
                        {"run-a"});
  ASSERT_EQ(identity.size(), 1u);
  EXPECT_EQ(identity[0][0], a->run_id());

  // _fetch_metric_logs_with_cursor.
  auto logs = Query(db,
                    "SELECT timestamp, step, metrics FROM metrics WHERE run_id = ? "
                    "ORDER BY timestamp, id",
                    {a->run_id()});
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0][1], "0");
  EXPECT_EQ(logs[0][2], "{\"train/loss\":2.5,\"lr\":0.001}");
  EXPECT_EQ(logs[1][2], "{\"train/loss\":\"NaN\",\"__step\":3.0}");  // reserved key renamed
  EXPECT_TRUE(absl::EndsWith(logs[0][0], "+00:00")) << logs[0][0];

  // _fetch_system_logs_with_cursor.
  auto system = Query(db,
                      "SELECT timestamp, metrics FROM system_metrics WHERE run_id = ? "
                      "ORDER BY timestamp, id",
                      {a->run_id()});
  ASSERT_EQ(system.size(), 1u);
  EXPECT_EQ(system[0][1], "{\"cpu/utilization\":50.0,\"memory/used\":1.5}");

  // get_run_config.
  auto config = Query(db, "SELECT config FROM configs WHERE run_id = ?", {a->run_id()});
  ASSERT_EQ(config.size(), 1u);
  const auto parsed = nlohmann::json::parse(config[0][0]);
  EXPECT_EQ(parsed["lr"], 0.004);
  EXPECT_EQ(parsed["depth"], 18);
  EXPECT_FALSE(parsed.contains("hf_token"));
  EXPECT_TRUE(parsed["_Username"].is_null());
  EXPECT_EQ(parsed["_Group"], "sweep-1");
  EXPECT_TRUE(absl::EndsWith(parsed["_Created"].get<std::string>(), "+00:00"));
  EXPECT_EQ(config[0][0].find(' '), std::string::npos);  // compact

  // get_tab_availability_flags: the metrics and system tabs light up.
  EXPECT_EQ(
      Query(db,
            "SELECT 1 FROM metrics WHERE CAST(metrics AS TEXT) GLOB '*:[0-9]*' "
            "OR CAST(metrics AS TEXT) GLOB '*:-[0-9]*' OR CAST(metrics AS TEXT) GLOB ? LIMIT 1",
            {"*\"_type\":\"trackio.histogram\"*"})
          .size(),
      1u);
  EXPECT_EQ(Query(db, "SELECT 1 FROM system_metrics LIMIT 1").size(), 1u);

  // get_max_steps_for_runs, get_log_count, get_last_step.
  auto max_steps = Query(db,
                         "SELECT run_name, run_id, MAX(step) as max_step FROM metrics "
                         "GROUP BY run_id, run_name");
  ASSERT_EQ(max_steps.size(), 2u);
  for (const Row& r : max_steps) EXPECT_EQ(r[2], r[0] == "run-a" ? "1" : "5");
  EXPECT_EQ(Query(db, "SELECT COUNT(*) FROM metrics WHERE run_id = ?", {a->run_id()})[0][0], "2");
  EXPECT_EQ(Query(db, "SELECT MAX(step) FROM metrics WHERE run_id = ?", {b->run_id()})[0][0], "5");

  // Each row carries a distinct uuid4 log_id.
  auto ids = Query(db, "SELECT DISTINCT log_id FROM metrics WHERE log_id IS NOT NULL");
  EXPECT_EQ(ids.size(), 3u);
}

TEST_F(TrackioTest, ResumeWithRunIdContinuesTheRun) {
  std::string run_id;
  {
    auto sink = OpenRun("run-a");
    ASSERT_TRUE(sink && sink->Log(1, {{"loss", 1}}).ok());
    run_id = sink->run_id();
  }
  TrackioOptions options;
  options.project = "my.project!";
  options.run_name = "run-a";
  options.run_id = run_id;
  options.dir = dir_;
  auto resumed = TrackioSink::Open(options);
  ASSERT_TRUE(resumed.ok());
  ASSERT_TRUE((*resumed)->Log(2, {{"loss", 0.5}}).ok());
  ASSERT_TRUE((*resumed)->Log(3, {{"loss", 0.25}}).ok());
  auto runs = Query((*resumed)->db_path(), "SELECT DISTINCT run_id FROM metrics");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0][0], run_id);
  // Resumed again from a checkpoint at step 2: step 3 is about to be redone.
  ASSERT_TRUE((*resumed)->DiscardAfter(2).ok());
  auto steps = Query((*resumed)->db_path(),
                     "SELECT step FROM metrics WHERE run_id = ? ORDER BY step", {run_id});
  EXPECT_EQ(steps, (std::vector<Row>{{"1"}, {"2"}}));
}

TEST_F(TrackioTest, BadInputsAreClearErrors) {
  TrackioOptions options;
  options.dir = dir_;
  EXPECT_EQ(TrackioSink::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.run_name = "r";
  options.dir = "/proc/not/writable";
  auto bad_dir = TrackioSink::Open(options);
  ASSERT_FALSE(bad_dir.ok());
  EXPECT_NE(bad_dir.status().message().find("/proc/not/writable"), std::string::npos);

  auto sink = OpenRun("r");
  ASSERT_TRUE(sink);
  absl::Status reserved = sink->LogConfig({{"_Group", "mine"}});
  EXPECT_EQ(reserved.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(reserved.message().find("_Group"), std::string::npos);
  EXPECT_EQ(sink->LogConfig(nlohmann::json::array({1})).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_EQ(sink->Log(1, {}).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TrackioHelpers, ResolveDirFollowsTrackioPrecedence) {
  ::setenv("HOME", "/home/u", 1);
  ::unsetenv("TRACKIO_DIR");
  ::unsetenv("HF_HOME");
  EXPECT_EQ(ResolveTrackioDir(), "/home/u/.cache/huggingface/trackio");
  ::setenv("HF_HOME", "/hf", 1);
  EXPECT_EQ(ResolveTrackioDir(), "/hf/trackio");
  ::setenv("TRACKIO_DIR", "/t", 1);
  EXPECT_EQ(ResolveTrackioDir(), "/t");
  ::unsetenv("TRACKIO_DIR");
  ::unsetenv("HF_HOME");
}

TEST(TrackioHelpers, CanonicalProjectName) {
  EXPECT_EQ(CanonicalProjectName("my.model"), "mymodel");
  EXPECT_EQ(CanonicalProjectName("Conv-Forever_2"), "Conv-Forever_2");
  EXPECT_EQ(CanonicalProjectName("../../etc"), "etc");
  EXPECT_EQ(CanonicalProjectName("!!!"), "default");
}

TEST(TrackioHelpers, Uuid4Hex) {
  const std::string a = NewUuid4Hex(), b = NewUuid4Hex();
  EXPECT_NE(a, b);
  ASSERT_EQ(a.size(), 32u);
  EXPECT_EQ(a[12], '4');  // version
  EXPECT_NE(std::string("89ab").find(a[16]), std::string::npos);  // variant
  for (char c : a) EXPECT_TRUE(std::isxdigit(c) && !std::isupper(c)) << a;
}

TEST(TrackioHelpers, IsoTimestampMatchesPythonIsoformat) {
  using namespace std::chrono;
  const system_clock::time_point t{seconds(1787328725) + microseconds(123456)};
  EXPECT_EQ(IsoTimestampUtc(t), "2026-08-21T16:12:05.123456+00:00");
  EXPECT_EQ(IsoTimestampUtc(system_clock::time_point{seconds(1787328725)}),
            "2026-08-21T16:12:05+00:00");
  EXPECT_EQ(IsoTimestampUtc(t - microseconds(123450)), "2026-08-21T16:12:05.000006+00:00");
}

TEST(TrackioHelpers, MetricsJsonIsCompactWithStringNonFinite) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(TrackioMetricsJson({{"a", 1.0}, {"b", inf}, {"c", -inf}, {"time", 2.5}}),
            "{\"a\":1.0,\"b\":\"Infinity\",\"c\":\"-Infinity\",\"__time\":2.5}");
}

}  // namespace
}  // namespace cf::train
