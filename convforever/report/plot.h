// The plot model that both renderers draw (svg_render.h for the page, png_render.h for files), and
// the layout they share: data ranges, ticks (1-2-5 steps on linear axes, decades on log10 axes)
// and the data -> pixel mapping, so the SVG and the PNG of one plot show the same thing.
//
// Points that cannot be drawn (non-finite, or <= 0 on a log axis) are dropped by the layout. A
// series is downsampled for display to at most kMaxDisplayPoints (min/max per bucket, so spikes
// stay visible). Pure values; thread-safe.
#ifndef CONVFOREVER_REPORT_PLOT_H_
#define CONVFOREVER_REPORT_PLOT_H_

#include <limits>
#include <string>
#include <vector>

namespace cf::report {

inline constexpr int kMaxDisplayPoints = 2000;

enum class Scale { kLinear, kLog10 };

struct Axis {
  std::string label;
  Scale scale = Scale::kLinear;
};

struct Point {
  double x = 0, y = 0;
};

enum class SeriesStyle { kLine, kDashedLine, kMarkers, kLineAndMarkers };

struct Series {
  std::string name;  // legend text
  std::vector<Point> points;
  SeriesStyle style = SeriesStyle::kLine;
  int color = -1;  // palette index; -1: the series' position in the plot
};

// A vertical marker line (e.g. the LR finder's suggested learning rate).
struct VerticalLine {
  double x = 0;
  std::string label;
};

struct Plot {
  std::string id;  // unique in a page: the SVG element id and the PNG file stem ([a-z0-9_])
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  std::vector<VerticalLine> vertical_lines;
  std::vector<std::string> notes;  // extra legend lines (fit parameters)
  std::string empty_message = "no data";  // shown when nothing can be drawn
  // When finite: the top of the y range, whatever the data (an LR finder's loss explodes at the
  // end); points above it are clipped.
  double y_max = std::numeric_limits<double>::quiet_NaN();
};

struct Rgb {
  unsigned char r, g, b;
};
// A fixed palette, cycled.
Rgb PaletteColor(int index);
int SeriesColorIndex(const Plot& plot, size_t series_index);

// At most `max_points` points of `points` (assumed sorted by x), first and last kept.
std::vector<Point> Downsample(const std::vector<Point>& points, size_t max_points = kMaxDisplayPoints);

// Tick positions in data units, within [lo, hi].
std::vector<double> LinearTicks(double lo, double hi, int max_ticks = 8);
std::vector<double> Log10Ticks(double lo, double hi, int max_ticks = 8);
std::string TickLabel(double value, Scale scale);

// `text` cut to `max_chars` characters (UTF-8 aware), with "..." when cut: legend entries.
std::string Ellipsize(const std::string& text, size_t max_chars);
inline constexpr size_t kLegendChars = 36;

struct PlotSize {
  int width = 960, height = 540;
};

// Pixel geometry of one plot at one size: everything a renderer needs besides text metrics.
class PlotLayout {
 public:
  PlotLayout(const Plot& plot, PlotSize size);

  bool empty() const { return empty_; }  // nothing drawable
  // Plot area, in pixels (y grows downwards).
  double left() const { return left_; }
  double right() const { return right_; }
  double top() const { return top_; }
  double bottom() const { return bottom_; }
  const std::vector<double>& x_ticks() const { return x_ticks_; }
  const std::vector<double>& y_ticks() const { return y_ticks_; }
  double PixelX(double x) const;
  double PixelY(double y) const;
  bool Drawable(const Point& p) const;
  // The series' drawable points, downsampled.
  std::vector<Point> DisplayPoints(size_t series_index) const;
  bool XInRange(double x) const;

 private:
  const Plot& plot_;
  bool empty_ = true;
  double left_, right_, top_, bottom_;
  double x_lo_ = 0, x_hi_ = 1, y_lo_ = 0, y_hi_ = 1;  // in axis units (log10 of data on log axes)
  std::vector<double> x_ticks_, y_ticks_;
};

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_PLOT_H_
