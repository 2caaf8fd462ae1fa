// Test fixtures in the real on-disk formats of //convforever/train and `tools/cf sweep`: run
// directories (metrics.jsonl with config, metrics and system records, summary.json, lr_finder.csv
// and .json) and sweep directories (results.csv + runs/). Test-only.
#ifndef CONVFOREVER_REPORT_TEST_FIXTURES_H_
#define CONVFOREVER_REPORT_TEST_FIXTURES_H_

#include <string>

namespace cf::report::testing {

struct FixtureRun {
  std::string name = "run";
  int steps = 200;
  int log_every = 10;
  int eval_every = 50;
  double lr = 1e-3;
  double final_loss = 0.5;  // loss curves decay towards this
  bool ema = true;
  bool summary = true;
  bool lr_finder = false;
  std::string model = "convnext_nano_fmnist";
  int depth = 0;
};

// A fresh directory under $TEST_TMPDIR (or /tmp).
std::string MakeTempDir(const std::string& prefix);

void WriteFile(const std::string& path, const std::string& contents);

// Writes `parent/<run.name>/` and returns its path.
std::string WriteRunDir(const std::string& parent, const FixtureRun& run);

// Writes a sweep of `rows` runs (one with status FAILED besides) under `parent/<name>/` and
// returns its path. The DONE rows' loss and error follow L = a * N^-b + c in parameters N.
std::string WriteSweepDir(const std::string& parent, const std::string& name, int rows);

}  // namespace cf::report::testing

#endif  // CONVFOREVER_REPORT_TEST_FIXTURES_H_
