#include "convforever/report/plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "convforever/report/format.h"

namespace cf::report {
namespace {

// Legend column to the right of the plot area; margins for tick labels and titles.
constexpr double kLegendWidth = 270;
constexpr double kLeftMargin = 78, kTopMargin = 40, kBottomMargin = 58;

double ToAxis(double v, Scale scale) { return scale == Scale::kLog10 ? std::log10(v) : v; }

bool Usable(double v, Scale scale) { return std::isfinite(v) && (scale == Scale::kLinear || v > 0); }

// Pads [lo, hi] (axis units) by 5% a side, or to a unit-wide range around a single value.
void Pad(double* lo, double* hi, Scale scale) {
  const double span = *hi - *lo;
  if (span <= 0) {
    const double half = scale == Scale::kLog10 ? 0.5 : std::max(std::fabs(*lo) * 0.1, 1e-9 + (*lo == 0 ? 1 : 0));
    *lo -= half;
    *hi += half;
    return;
  }
  *lo -= 0.05 * span;
  *hi += 0.05 * span;
}

}  // namespace

Rgb PaletteColor(int index) {
  // Distinguishable on white, also for the common color-vision deficiencies.
  static const Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                 {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                 {188, 189, 34},  {23, 190, 207}};
  const int n = sizeof(kPalette) / sizeof(kPalette[0]);
  return kPalette[((index % n) + n) % n];
}

int SeriesColorIndex(const Plot& plot, size_t series_index) {
  const int color = plot.series[series_index].color;
  return color >= 0 ? color : static_cast<int>(series_index);
}

std::vector<Point> Downsample(const std::vector<Point>& points, size_t max_points) {
  if (points.size() <= max_points || max_points < 4) return points;
  // Buckets of consecutive points; each contributes its min and max (in x order).
  const size_t buckets = (max_points - 2) / 2;
  std::vector<Point> out;
  out.reserve(max_points);
  out.push_back(points.front());
  const size_t inner = points.size() - 2;
  for (size_t b = 0; b < buckets; ++b) {
    const size_t begin = 1 + b * inner / buckets, end = 1 + (b + 1) * inner / buckets;
    if (begin >= end) continue;
    size_t lo = begin, hi = begin;
    for (size_t i = begin; i < end; ++i) {
      if (points[i].y < points[lo].y) lo = i;
      if (points[i].y > points[hi].y) hi = i;
    }
    out.push_back(points[std::min(lo, hi)]);
    if (lo != hi) out.push_back(points[std::max(lo, hi)]);
  }
  out.push_back(points.back());
  return out;
}

namespace {

// 10^k as the double nearest to it (std::pow(10, -3) need not be exactly 1e-3).
double PowTen(int k) {
  double p = 1;
  for (int i = 0; i < std::abs(k); ++i) p *= 10;  // exact up to 10^22
  return k >= 0 ? p : 1 / p;
}

// m * 10^e, correctly rounded for the small integers m used for ticks.
double Scaled(double m, int e) { return e >= 0 ? m * PowTen(e) : m / PowTen(-e); }

}  // namespace

std::vector<double> LinearTicks(double lo, double hi, int max_ticks) {
  std::vector<double> ticks;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi) || max_ticks < 2) return ticks;
  const double raw = (hi - lo) / (max_ticks - 1);
  int e = static_cast<int>(std::floor(std::log10(raw)));
  double m = 10;
  for (double candidate : {1.0, 2.0, 5.0}) {
    if (Scaled(candidate, e) >= raw * (1 - 1e-9)) {  // (1.55 - 1.2) / 7 is 0.05 plus an ulp
      m = candidate;
      break;
    }
  }
  if (m == 10) m = 1, ++e;
  const double step = Scaled(m, e);
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) {
    ticks.push_back(k == 0 ? 0.0 : Scaled(k * m, e));
  }
  return ticks;
}

std::vector<double> Log10Ticks(double lo, double hi, int max_ticks) {
  std::vector<double> ticks;
  if (!(hi > lo) || !(lo > 0) || !std::isfinite(hi)) return ticks;
  const int first = static_cast<int>(std::ceil(std::log10(lo) - 1e-9));
  const int last = static_cast<int>(std::floor(std::log10(hi) + 1e-9));
  const int decades = last - first + 1;
  if (decades >= 2) {
    const int every = std::max(1, (decades + max_ticks - 1) / max_ticks);
    for (int k = first; k <= last; k += every) ticks.push_back(PowTen(k));
    return ticks;
  }
  // Less than two decades: 1-2-5 multiples, else plain linear ticks.
  for (int k = first - 1; k <= last; ++k) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double t = Scaled(m, k);
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push_back(t);
    }
  }
  if (ticks.size() >= 3) return ticks;
  return LinearTicks(lo, hi, std::min(max_ticks, 5));
}

std::string Ellipsize(const std::string& text, size_t max_chars) {
  auto is_start = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; };  // not a UTF-8 continuation
  const size_t total = std::count_if(text.begin(), text.end(), is_start);
  if (total <= max_chars) return text;
  const size_t keep = max_chars > 3 ? max_chars - 3 : 0;
  size_t chars = 0, end = 0;
  for (; end < text.size(); ++end) {
    if (is_start(text[end]) && chars++ == keep) break;
  }
  return text.substr(0, end) + "...";
}

std::string TickLabel(double value, Scale scale) {
  const double magnitude = std::fabs(value);
  const double smallest = scale == Scale::kLog10 ? 1e-2 : 1e-4;
  if (value != 0 && (magnitude >= 1e5 || magnitude < smallest)) return FormatSci(value, 3);
  return FormatSig(value, scale == Scale::kLog10 ? 3 : 6);
}

PlotLayout::PlotLayout(const Plot& plot, PlotSize size) : plot_(plot) {
  left_ = kLeftMargin;
  right_ = std::max(left_ + 50, size.width - kLegendWidth);
  top_ = kTopMargin;
  bottom_ = std::max(top_ + 50, size.height - kBottomMargin);
  double xl = std::numeric_limits<double>::infinity(), xh = -xl, yl = xl, yh = -xl;
  for (const Series& s : plot.series) {
    for (const Point& p : s.points) {
      if (!Drawable(p)) continue;
      const double x = ToAxis(p.x, plot.x.scale), y = ToAxis(p.y, plot.y.scale);
      xl = std::min(xl, x), xh = std::max(xh, x), yl = std::min(yl, y), yh = std::max(yh, y);
    }
  }
  if (!(xl <= xh)) return;  // nothing drawable
  empty_ = false;
  for (const VerticalLine& line : plot.vertical_lines) {
    if (!Usable(line.x, plot.x.scale)) continue;
    const double x = ToAxis(line.x, plot.x.scale);
    xl = std::min(xl, x), xh = std::max(xh, x);
  }
  if (std::isfinite(plot.y_max) && Usable(plot.y_max, plot.y.scale) && ToAxis(plot.y_max, plot.y.scale) > yl) {
    yh = std::min(yh, ToAxis(plot.y_max, plot.y.scale));
  }
  Pad(&xl, &xh, plot.x.scale);
  Pad(&yl, &yh, plot.y.scale);
  x_lo_ = xl, x_hi_ = xh, y_lo_ = yl, y_hi_ = yh;
  auto ticks = [](double lo, double hi, Scale scale, int max) {
    return scale == Scale::kLog10 ? Log10Ticks(std::pow(10.0, lo), std::pow(10.0, hi), max)
                                  : LinearTicks(lo, hi, max);
  };
  x_ticks_ = ticks(x_lo_, x_hi_, plot.x.scale, std::max(3, static_cast<int>((right_ - left_) / 70)));
  y_ticks_ = ticks(y_lo_, y_hi_, plot.y.scale, std::max(3, static_cast<int>((bottom_ - top_) / 45)));
}

bool PlotLayout::Drawable(const Point& p) const {
  return Usable(p.x, plot_.x.scale) && Usable(p.y, plot_.y.scale);
}

bool PlotLayout::XInRange(double x) const {
  if (!Usable(x, plot_.x.scale)) return false;
  const double a = ToAxis(x, plot_.x.scale);
  return a >= x_lo_ && a <= x_hi_;
}

double PlotLayout::PixelX(double x) const {
  return left_ + (ToAxis(x, plot_.x.scale) - x_lo_) / (x_hi_ - x_lo_) * (right_ - left_);
}

double PlotLayout::PixelY(double y) const {
  return bottom_ - (ToAxis(y, plot_.y.scale) - y_lo_) / (y_hi_ - y_lo_) * (bottom_ - top_);
}

std::vector<Point> PlotLayout::DisplayPoints(size_t series_index) const {
  std::vector<Point> drawable;
  for (const Point& p : plot_.series[series_index].points) {
    if (Drawable(p)) drawable.push_back(p);
  }
  return Downsample(drawable);
}

}  // namespace cf::report
