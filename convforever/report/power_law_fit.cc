#include "convforever/report/power_law_fit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "convforever/report/format.h"

namespace cf::report {
namespace {

struct LogLine {
  double log_a = 0, b = 0, sse = std::numeric_limits<double>::infinity();
};

// Least squares of y = log(L - c) on x = log C: y = log_a - b x.
LogLine FitLine(const std::vector<double>& x, const std::vector<double>& L, double c) {
  const size_t n = x.size();
  std::vector<double> y(n);
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    y[i] = std::log(L[i] - c);
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    sxy += (x[i] - mx) * (y[i] - my);
  }
  LogLine line;
  const double slope = sxy / sxx;
  line.b = -slope;
  line.log_a = my - slope * mx;
  line.sse = 0;
  for (size_t i = 0; i < n; ++i) {
    const double r = y[i] - (line.log_a - line.b * x[i]);
    line.sse += r * r;
  }
  return line;
}

double Sse(const std::vector<double>& x, const std::vector<double>& L, double log_a, double b, double c) {
  double sse = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!(L[i] - c > 0)) return std::numeric_limits<double>::infinity();
    const double r = std::log(L[i] - c) - (log_a - b * x[i]);
    sse += r * r;
  }
  return sse;
}

// Solves the 3x3 system A d = g by Gaussian elimination with partial pivoting; false if singular.
bool Solve3(double A[3][3], double g[3], double d[3]) {
  double M[3][4];
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) M[i][j] = A[i][j];
    M[i][3] = g[i];
  }
  for (int col = 0; col < 3; ++col) {
    int pivot = col;
    for (int r = col + 1; r < 3; ++r) {
      if (std::fabs(M[r][col]) > std::fabs(M[pivot][col])) pivot = r;
    }
    if (std::fabs(M[pivot][col]) < 1e-300) return false;
    for (int j = 0; j < 4; ++j) std::swap(M[col][j], M[pivot][j]);
    for (int r = 0; r < 3; ++r) {
      if (r == col) continue;
      const double f = M[r][col] / M[col][col];
      for (int j = col; j < 4; ++j) M[r][j] -= f * M[col][j];
    }
  }
  for (int i = 0; i < 3; ++i) d[i] = M[i][3] / M[i][i];
  return true;
}

}  // namespace

double PowerLawFit::operator()(double C) const { return a * std::pow(C, -b) + c; }

std::string PowerLawFit::Formula(const std::string& x_name) const {
  return absl::StrCat("L = ", FormatSig(a, 4), " * ", x_name, "^-", FormatSig(b, 4), " + ", FormatSig(c, 4));
}

absl::StatusOr<PowerLawFit> FitPowerLaw(const std::vector<double>& C, const std::vector<double>& L,
                                        const PowerLawFitOptions& options) {
  if (C.size() != L.size()) {
    return absl::InvalidArgumentError(absl::StrCat("power-law fit: ", C.size(), " x values but ", L.size(), " y values"));
  }
  for (size_t i = 0; i < C.size(); ++i) {
    if (!std::isfinite(C[i]) || C[i] <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("power-law fit: point ", i + 1, " has x = ", FormatSig(C[i]), "; every x must be finite and > 0"));
    }
    if (!std::isfinite(L[i]) || L[i] <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("power-law fit: point ", i + 1, " has y = ", FormatSig(L[i]), "; every y must be finite and > 0"));
    }
  }
  const std::set<double> distinct(C.begin(), C.end());
  if (distinct.size() < 3) {
    return absl::FailedPreconditionError(absl::StrCat("power-law fit needs at least 3 distinct x values; got ",
                                                      distinct.size(), " (", C.size(), " points)"));
  }
  const double min_l = *std::min_element(L.begin(), L.end());
  const double max_l = *std::max_element(L.begin(), L.end());
  if (max_l - min_l <= 1e-12 * max_l) {
    return absl::FailedPreconditionError(absl::StrCat("power-law fit: every y is ", FormatSig(min_l),
                                                      "; a constant has no power law (b is not identifiable)"));
  }
  std::vector<double> x(C.size());
  for (size_t i = 0; i < C.size(); ++i) x[i] = std::log(C[i]);

  // Grid search over c in [0, min L).
  LogLine best;
  double best_c = 0;
  const int grid = std::max(2, options.c_grid);
  for (int k = 0; k < grid; ++k) {
    const double c = min_l * k / grid;
    const LogLine line = FitLine(x, L, c);
    if (line.sse < best.sse) {
      best = line;
      best_c = c;
    }
  }
  // Levenberg-Marquardt on r_i = log(L_i - c) - log_a + b x_i over p = (log_a, b, c).
  double p[3] = {best.log_a, best.b, best_c};
  double sse = best.sse;
  double lambda = 1e-3;
  int iterations = 0;
  for (; iterations < options.max_iterations; ++iterations) {
    double JtJ[3][3] = {}, Jtr[3] = {};
    for (size_t i = 0; i < x.size(); ++i) {
      const double r = std::log(L[i] - p[2]) - p[0] + p[1] * x[i];
      const double J[3] = {-1.0, x[i], -1.0 / (L[i] - p[2])};
      for (int a = 0; a < 3; ++a) {
        Jtr[a] += J[a] * r;
        for (int b = 0; b < 3; ++b) JtJ[a][b] += J[a] * J[b];
      }
    }
    bool improved = false;
    for (int attempt = 0; attempt < 20 && !improved; ++attempt) {
      double A[3][3], g[3], d[3];
      for (int a = 0; a < 3; ++a) {
        for (int b = 0; b < 3; ++b) A[a][b] = JtJ[a][b];
        A[a][a] += lambda * std::max(JtJ[a][a], 1e-12);
        g[a] = -Jtr[a];
      }
      if (!Solve3(A, g, d)) {
        lambda *= 10;
        continue;
      }
      const double q[3] = {p[0] + d[0], p[1] + d[1], p[2] + d[2]};
      const double candidate = (q[2] >= 0 && q[2] < min_l) ? Sse(x, L, q[0], q[1], q[2])
                                                           : std::numeric_limits<double>::infinity();
      if (candidate < sse) {
        const double gain = sse - candidate;
        std::copy(q, q + 3, p);
        sse = candidate;
        lambda = std::max(lambda / 10, 1e-12);
        improved = true;
        if (gain <= 1e-15 * (1 + sse)) iterations = options.max_iterations;  // converged
      } else {
        lambda *= 10;
      }
    }
    if (!improved) break;
  }
  PowerLawFit fit;
  fit.a = std::exp(p[0]);
  fit.b = p[1];
  fit.c = p[2];
  fit.points = static_cast<int>(C.size());
  fit.rms_log_residual = std::sqrt(sse / C.size());
  fit.refine_iterations = std::min(iterations, options.max_iterations);
  return fit;
}

}  // namespace cf::report
