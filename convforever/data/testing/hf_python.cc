#include "convforever/data/testing/hf_python.h"

#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace cf::data::testing {
namespace {

constexpr char kTool[] = "convforever/data/testing/hf_datasets_tool.py";  // runfiles-relative

std::string RealTool() {
  char real[PATH_MAX];
  return ::realpath(kTool, real) == nullptr ? "" : std::string(real);
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

std::string VenvPython() {
  const std::string tool = RealTool();
  if (tool.empty()) return "";
  const std::string root = tool.substr(0, tool.size() - std::strlen(kTool));
  const std::string python = root + ".venv/bin/python";
  return ::access(python.c_str(), X_OK) == 0 ? python : "";
}

int RunHfTool(const std::vector<std::string>& args, std::string* out, std::string* err) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = tmp != nullptr ? tmp : "/tmp";
  const std::string err_path = dir + "/hf_tool_stderr.txt";
  // datasets caches under $HF_HOME: keep it inside the test's sandbox, and offline.
  std::string cmd = "HF_HOME=" + Quote(dir + "/hf_home") + " HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 " +
                    "PYTHONDONTWRITEBYTECODE=1 " + VenvPython() + " " + Quote(RealTool());
  for (const auto& a : args) cmd += " " + Quote(a);
  cmd += " 2>" + Quote(err_path);
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[1 << 16];
  size_t n;
  out->clear();
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out->append(buf, n);
  const int status = ::pclose(pipe);
  std::ifstream e(err_path);
  std::stringstream ss;
  ss << e.rdbuf();
  *err = ss.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace cf::data::testing
