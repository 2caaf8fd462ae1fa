// Fits the saturating power law L(C) = a * C^-b + c to (C, L) points: held-out loss or error
// against parameters or training FLOPs in a sweep.
//
// Method: for each c on a grid in [0, min L) the model is linear in log space,
// log(L - c) = log a - b log C, solved by least squares; the c with the smallest squared residual
// in log space wins, and (log a, b, c) are then refined by Levenberg-Marquardt steps on the same
// residuals, c kept below min L. Needs >= 3 distinct C values, every C > 0 and every L > 0 (finite);
// otherwise FAILED_PRECONDITION / INVALID_ARGUMENT says why. Pure; thread-safe.
#ifndef CONVFOREVER_REPORT_POWER_LAW_FIT_H_
#define CONVFOREVER_REPORT_POWER_LAW_FIT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cf::report {

struct PowerLawFit {
  double a = 0, b = 0, c = 0;
  double rms_log_residual = 0;  // sqrt(mean (log(L - c) - log(a C^-b))^2)
  int points = 0;
  int refine_iterations = 0;

  double operator()(double C) const;
  // "L = 2.1e3 * C^-0.31 + 0.42"
  std::string Formula(const std::string& x_name = "C") const;
};

struct PowerLawFitOptions {
  int c_grid = 400;           // candidate values of c in [0, min L)
  int max_iterations = 100;   // Levenberg-Marquardt refinement
};

absl::StatusOr<PowerLawFit> FitPowerLaw(const std::vector<double>& C, const std::vector<double>& L,
                                        const PowerLawFitOptions& options = {});

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_POWER_LAW_FIT_H_
