// All outputs of one run together, as the trainer uses them, including a resume.
#include "convforever/train/sinks.h"

#include <dirent.h>
#include <sqlite3.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cf::train {
namespace {

std::string TempDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(root ? root : "/tmp") + "/sinks_XXXXXX";
  return mkdtemp(tmpl.data());
}

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    closedir(d);
  }
  return names;
}

int64_t CountRows(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
  int64_t n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return n;
}

TEST(RunSinks, OpensEveryOutputAndResumes) {
  const std::string root = TempDir();
  const std::string run_dir = root + "/runs/fashion-1";
  RunSinksOptions options;
  options.run_dir = run_dir;
  options.trackio_options.dir = root + "/trackio";
  options.trackio_options.project = "cf-test";
  options.system_metrics_interval = absl::Milliseconds(2);
  std::string run_id;
  {
    auto sinks = RunSinks::Open(options);
    ASSERT_TRUE(sinks.ok()) << sinks.status();
    ASSERT_NE((*sinks)->trackio(), nullptr);
    EXPECT_EQ((*sinks)->trackio()->run_name(), "fashion-1");
    run_id = (*sinks)->trackio()->run_id();
    ASSERT_TRUE((*sinks)->sink()->LogConfig({{"recipe", "fashion_mnist"}}).ok());
    for (int step = 1; step <= 4; ++step) {
      ASSERT_TRUE((*sinks)->sink()->Log(step, {{"train/loss", 1.0 / step}}).ok());
    }
    ASSERT_TRUE((*sinks)->Close().ok());
  }
  // Resume from a checkpoint at step 2 under the same Trackio run.
  options.trackio_options.run_id = run_id;
  options.system_metrics_interval = absl::ZeroDuration();
  auto sinks = RunSinks::Open(options);
  ASSERT_TRUE(sinks.ok()) << sinks.status();
  ASSERT_TRUE((*sinks)->sink()->DiscardAfter(2).ok());
  ASSERT_TRUE((*sinks)->sink()->Log(3, {{"train/loss", 0.3}}).ok());
  ASSERT_TRUE((*sinks)->Close().ok());
  EXPECT_TRUE((*sinks)->Close().ok());

  int metric_lines = 0;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    metric_lines += nlohmann::json::parse(line)["kind"] == "metrics";
  }
  EXPECT_EQ(metric_lines, 3);  // steps 1, 2, 3
  EXPECT_EQ(List(run_dir + "/tensorboard").size(), 2u);  // one event file per session
  const std::string db = root + "/trackio/cf-test.db";
  EXPECT_EQ(CountRows(db, "SELECT COUNT(*) FROM metrics"), 3);
  EXPECT_EQ(CountRows(db, "SELECT COUNT(DISTINCT run_id) FROM metrics"), 1);
  EXPECT_EQ(CountRows(db, "SELECT COUNT(*) FROM configs"), 1);
}

TEST(RunSinks, DisabledOutputsAreNotCreated) {
  const std::string run_dir = TempDir() + "/run";
  RunSinksOptions options;
  options.run_dir = run_dir;
  options.tensorboard = false;
  options.trackio = false;
  options.system_metrics_interval = absl::ZeroDuration();
  auto sinks = RunSinks::Open(options);
  ASSERT_TRUE(sinks.ok()) << sinks.status();
  EXPECT_EQ((*sinks)->trackio(), nullptr);
  EXPECT_EQ(List(run_dir), std::vector<std::string>{"metrics.jsonl"});
}

TEST(RunSinks, FailureNamesThePath) {
  RunSinksOptions options;
  EXPECT_EQ(RunSinks::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.run_dir = TempDir();
  options.trackio_options.dir = "/proc/no/trackio";
  auto sinks = RunSinks::Open(options);
  ASSERT_FALSE(sinks.ok());
  EXPECT_NE(sinks.status().message().find("/proc/no/trackio"), std::string::npos);
}

}  // namespace
}  // namespace cf::train
