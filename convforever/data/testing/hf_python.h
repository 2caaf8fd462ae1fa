// The project venv's python running convforever/data/testing/hf_datasets_tool.py (the real
// `datasets` and `webdataset` packages), for tests that need the peer library on the other side.
// The venv is found through the real path of the tool, a source file Bazel's runfiles link to
// (tools/interop/run_py.sh does the same). Test-only.
#ifndef CONVFOREVER_DATA_TESTING_HF_PYTHON_H_
#define CONVFOREVER_DATA_TESTING_HF_PYTHON_H_

#include <string>
#include <vector>

namespace cf::data::testing {

// <workspace>/.venv/bin/python, or empty when there is no venv.
std::string VenvPython();

// Runs `hf_datasets_tool.py args...` with the venv's python; returns its exit status, its stdout
// in *out and its stderr in *err.
int RunHfTool(const std::vector<std::string>& args, std::string* out, std::string* err);

}  // namespace cf::data::testing

// Skips the test without the venv, or fails it under CI=true (where the venv must exist).
#define CF_REQUIRE_VENV_PYTHON()                                                                  \
  do {                                                                                            \
    if (::cf::data::testing::VenvPython().empty()) {                                              \
      const char* ci = std::getenv("CI");                                                         \
      ASSERT_FALSE(ci != nullptr && std::string(ci) == "true") << "no project venv (tools/cf setup)"; \
      GTEST_SKIP() << "no project venv at the workspace root (tools/cf setup); needs datasets";   \
    }                                                                                             \
  } while (0)

#endif  // CONVFOREVER_DATA_TESTING_HF_PYTHON_H_
