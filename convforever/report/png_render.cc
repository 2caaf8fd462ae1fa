#include "convforever/report/png_render.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "convforever/base/atomic_file.h"
#include "png.h"
#include "opencv2/imgproc.hpp"

namespace cf::report {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kSmall = 0.42, kTitle = 0.6;
const cv::Scalar kBlack(0, 0, 0), kGrey(110, 110, 110), kGrid(228, 228, 228), kWhite(255, 255, 255);

cv::Scalar Bgr(int index) {
  const Rgb c = PaletteColor(index);
  return cv::Scalar(c.b, c.g, c.r);
}

std::string Ascii(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = text[i];
    if (c < 0x80) {
      out.push_back(c >= 0x20 ? static_cast<char>(c) : ' ');
    } else if ((c & 0xC0) != 0x80) {
      out.push_back('?');  // one '?' per non-ASCII character, not per byte
    }
  }
  return out;
}

cv::Point Px(double x, double y) { return cv::Point(static_cast<int>(std::lround(x)), static_cast<int>(std::lround(y))); }

// Draws `text` with its anchor: align -1 left, 0 centre, 1 right; `y` is the baseline.
void PutText(cv::Mat& image, const std::string& text, double x, double y, int align, double scale = kSmall,
             const cv::Scalar& color = kBlack, int thickness = 1) {
  const std::string ascii = Ascii(text);
  int baseline = 0;
  const cv::Size size = cv::getTextSize(ascii, kFont, scale, thickness, &baseline);
  const double left = align < 0 ? x : align == 0 ? x - size.width / 2.0 : x - size.width;
  cv::putText(image, ascii, Px(left, y), kFont, scale, color, thickness, cv::LINE_AA);
}

// `text` cut (with "...") until it is at most `max_width` pixels wide in the small font.
std::string FitWidth(const std::string& text, double max_width) {
  std::string ascii = Ascii(text);
  int baseline = 0;
  if (cv::getTextSize(ascii, kFont, kSmall, 1, &baseline).width <= max_width) return ascii;
  while (!ascii.empty() && cv::getTextSize(ascii + "...", kFont, kSmall, 1, &baseline).width > max_width) {
    ascii.pop_back();
  }
  return ascii + "...";
}

void DashedLine(cv::Mat& image, cv::Point2d a, cv::Point2d b, const cv::Scalar& color, int thickness,
                double* phase) {
  const double dash = 7, gap = 5, length = std::hypot(b.x - a.x, b.y - a.y);
  if (length == 0) return;
  const cv::Point2d dir = (b - a) / length;
  double t = 0;
  while (t < length) {
    const double period_pos = std::fmod(*phase + t, dash + gap);
    const double remaining = period_pos < dash ? dash - period_pos : dash + gap - period_pos;
    const double next = std::min(length, t + remaining);
    if (period_pos < dash) {
      const cv::Point2d p = a + dir * t, q = a + dir * next;
      cv::line(image, Px(p.x, p.y), Px(q.x, q.y), color, thickness, cv::LINE_AA);
    }
    t = next;
  }
  *phase += length;
}

void DrawAxes(cv::Mat& image, const Plot& plot, const PlotLayout& layout) {
  const double l = layout.left(), r = layout.right(), t = layout.top(), b = layout.bottom();
  for (double tick : layout.x_ticks()) {
    const double x = layout.PixelX(tick);
    cv::line(image, Px(x, t), Px(x, b), kGrid, 1);
    PutText(image, TickLabel(tick, plot.x.scale), x, b + 18, 0);
  }
  for (double tick : layout.y_ticks()) {
    const double y = layout.PixelY(tick);
    cv::line(image, Px(l, y), Px(r, y), kGrid, 1);
    PutText(image, TickLabel(tick, plot.y.scale), l - 6, y + 4, 1);
  }
}

void DrawSeries(cv::Mat& image, const Plot& plot, const PlotLayout& layout) {
  // Everything outside the plot area is clipped, as in the SVG.
  const cv::Rect area(Px(layout.left(), layout.top()), Px(layout.right() + 1, layout.bottom() + 1));
  cv::Mat canvas = image(area);
  const cv::Point2d offset(-area.x, -area.y);
  for (size_t s = 0; s < plot.series.size(); ++s) {
    const Series& series = plot.series[s];
    const std::vector<Point> points = layout.DisplayPoints(s);
    const cv::Scalar color = Bgr(SeriesColorIndex(plot, s));
    const bool line = series.style != SeriesStyle::kMarkers;
    const bool markers = series.style == SeriesStyle::kMarkers || series.style == SeriesStyle::kLineAndMarkers ||
                         points.size() == 1;
    double phase = 0;
    for (size_t i = 0; line && i + 1 < points.size(); ++i) {
      const cv::Point2d a = cv::Point2d(layout.PixelX(points[i].x), layout.PixelY(points[i].y)) + offset;
      const cv::Point2d b = cv::Point2d(layout.PixelX(points[i + 1].x), layout.PixelY(points[i + 1].y)) + offset;
      if (series.style == SeriesStyle::kDashedLine) {
        DashedLine(canvas, a, b, color, 2, &phase);
      } else {
        cv::line(canvas, Px(a.x, a.y), Px(b.x, b.y), color, 2, cv::LINE_AA);
      }
    }
    for (size_t i = 0; markers && i < points.size(); ++i) {
      const cv::Point2d p = cv::Point2d(layout.PixelX(points[i].x), layout.PixelY(points[i].y)) + offset;
      cv::circle(canvas, Px(p.x, p.y), 4, color, cv::FILLED, cv::LINE_AA);
    }
  }
  for (const VerticalLine& v : plot.vertical_lines) {
    if (!layout.XInRange(v.x)) continue;
    const double x = layout.PixelX(v.x) + offset.x;
    double phase = 0;
    DashedLine(canvas, {x, 0}, {x, static_cast<double>(canvas.rows)}, kGrey, 1, &phase);
    PutText(canvas, v.label, x + 4, 14, -1, kSmall, kGrey);
  }
}

void DrawLegend(cv::Mat& image, const Plot& plot, const PlotLayout& layout) {
  const double x = layout.right() + 14;
  double y = layout.top() + 10;
  for (size_t s = 0; s < plot.series.size(); ++s) {
    if (y + 18 > layout.bottom() && s + 1 < plot.series.size()) {  // the legend column is full
      PutText(image, absl::StrCat("+", plot.series.size() - s, " more"), x, y + 4, -1, kSmall, kGrey);
      y += 18;
      break;
    }
    const Series& series = plot.series[s];
    const cv::Scalar color = Bgr(SeriesColorIndex(plot, s));
    if (series.style == SeriesStyle::kMarkers) {
      cv::circle(image, Px(x + 11, y), 4, color, cv::FILLED, cv::LINE_AA);
    } else if (series.style == SeriesStyle::kDashedLine) {
      double phase = 0;
      DashedLine(image, {x, y}, {x + 22, y}, color, 2, &phase);
    } else {
      cv::line(image, Px(x, y), Px(x + 22, y), color, 2, cv::LINE_AA);
    }
    PutText(image, FitWidth(series.name, image.cols - (x + 28) - 4), x + 28, y + 4, -1);
    y += 18;
  }
  for (const std::string& note : plot.notes) {
    PutText(image, FitWidth(note, image.cols - x - 4), x, y + 4, -1, kSmall, kGrey);
    y += 18;
  }
}

void DrawYLabel(cv::Mat& image, const std::string& label, const PlotLayout& layout) {
  const std::string ascii = Ascii(label);
  if (ascii.empty()) return;
  int baseline = 0;
  const cv::Size size = cv::getTextSize(ascii, kFont, kSmall, 1, &baseline);
  cv::Mat strip(size.height + baseline + 4, size.width + 4, CV_8UC3, kWhite);
  cv::putText(strip, ascii, cv::Point(2, size.height + 2), kFont, kSmall, kBlack, 1, cv::LINE_AA);
  cv::Mat rotated;
  cv::rotate(strip, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
  const int cy = static_cast<int>((layout.top() + layout.bottom()) / 2);
  const int x0 = 4, y0 = std::max(0, cy - rotated.rows / 2);
  const int rows = std::min(rotated.rows, image.rows - y0), cols = std::min(rotated.cols, image.cols - x0);
  if (rows > 0 && cols > 0) rotated(cv::Rect(0, 0, cols, rows)).copyTo(image(cv::Rect(x0, y0, cols, rows)));
}

}  // namespace

cv::Mat RenderPlotImage(const Plot& plot, PlotSize size) {
  cv::Mat image(size.height, size.width, CV_8UC3, kWhite);
  const PlotLayout layout(plot, size);
  PutText(image, plot.title, layout.left(), 26, -1, kTitle, kBlack, 1);
  if (layout.empty()) {
    PutText(image, plot.empty_message, (layout.left() + layout.right()) / 2, (layout.top() + layout.bottom()) / 2, 0,
            kTitle, kGrey);
  } else {
    DrawAxes(image, plot, layout);
    DrawSeries(image, plot, layout);
    DrawLegend(image, plot, layout);
  }
  cv::rectangle(image, Px(layout.left(), layout.top()), Px(layout.right(), layout.bottom()), kGrey, 1);
  PutText(image, plot.x.label, (layout.left() + layout.right()) / 2, size.height - 14, 0);
  DrawYLabel(image, plot.y.label, layout);
  return image;
}

absl::StatusOr<std::string> EncodePng(const cv::Mat& bgr) {
  if (bgr.type() != CV_8UC3 || !bgr.isContinuous()) {
    return absl::InvalidArgumentError("EncodePng wants a continuous 8-bit BGR image");
  }
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(bgr.cols);
  image.height = static_cast<png_uint_32>(bgr.rows);
  image.format = PNG_FORMAT_BGR;
  const png_int_32 stride = static_cast<png_int_32>(bgr.step[0]);
  png_alloc_size_t bytes = 0;
  if (!png_image_write_to_memory(&image, nullptr, &bytes, 0, bgr.data, stride, nullptr)) {
    return absl::InternalError(absl::StrCat("libpng: ", image.message));
  }
  std::string out(bytes, '\0');
  if (!png_image_write_to_memory(&image, out.data(), &bytes, 0, bgr.data, stride, nullptr)) {
    return absl::InternalError(absl::StrCat("libpng: ", image.message));
  }
  out.resize(bytes);
  return out;
}

absl::Status WritePlotPng(const Plot& plot, const std::string& path, PlotSize size) {
  absl::StatusOr<std::string> png = EncodePng(RenderPlotImage(plot, size));
  if (!png.ok()) return absl::InternalError(absl::StrCat("cannot write ", path, ": ", png.status().message()));
  absl::Status written = base::WriteFileAtomically(path, *png);
  if (!written.ok()) {
    return absl::Status(written.code(), absl::StrCat("cannot write ", path, ": ", written.message()));
  }
  return absl::OkStatus();
}

}  // namespace cf::report
