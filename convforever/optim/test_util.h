// Test helpers: read the golden JSON fixtures under convforever/optim/testdata/ (made by
// tools/golden/optim_golden.py) and turn their flat float lists into tensors.
#ifndef CONVFOREVER_OPTIM_TEST_UTIL_H_
#define CONVFOREVER_OPTIM_TEST_UTIL_H_

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace cf::optim::testing {

// Path of a file under convforever/optim/testdata/ in the test's runfiles.
std::string TestdataPath(const std::string& name);
// Parses that file; aborts the test binary (CHECK-style) when it is missing or malformed.
nlohmann::json ReadFixture(const std::string& name);
// A float32 tensor of `shape` from a JSON array of numbers.
at::Tensor ToTensor(const nlohmann::json& values, const std::vector<int64_t>& shape);
// Largest |a - b| / max(|b|, floor) over the elements.
double MaxRelDiff(const at::Tensor& a, const at::Tensor& b, double floor = 1e-3);

}  // namespace cf::optim::testing

#endif  // CONVFOREVER_OPTIM_TEST_UTIL_H_
