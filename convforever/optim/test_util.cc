#include "convforever/optim/test_util.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

namespace cf::optim::testing {

std::string TestdataPath(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  const std::string rel = "convforever/optim/testdata/" + name;
  if (srcdir != nullptr && workspace != nullptr) {
    return std::string(srcdir) + "/" + workspace + "/" + rel;
  }
  return rel;
}

nlohmann::json ReadFixture(const std::string& name) {
  std::ifstream in(TestdataPath(name));
  if (!in) {
    std::cerr << "missing fixture " << TestdataPath(name)
              << " (run .venv/bin/python tools/golden/optim_golden.py)\n";
    std::abort();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

at::Tensor ToTensor(const nlohmann::json& values, const std::vector<int64_t>& shape) {
  std::vector<double> v = values.get<std::vector<double>>();
  return at::tensor(v, at::kDouble).to(at::kFloat).reshape(shape);
}

double MaxRelDiff(const at::Tensor& a, const at::Tensor& b, double floor) {
  at::Tensor ad = a.to(at::kDouble), bd = b.to(at::kDouble);
  return ((ad - bd).abs() / bd.abs().clamp_min(floor)).max().item<double>();
}

}  // namespace cf::optim::testing
