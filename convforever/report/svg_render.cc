#include "convforever/report/svg_render.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "convforever/report/html_escape.h"

namespace cf::report {
namespace {

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

std::string Color(int index) {
  const Rgb c = PaletteColor(index);
  char buf[16];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

std::string Text(double x, double y, const std::string& text, const std::string& attrs = "") {
  return absl::StrCat("<text x=\"", Num(x), "\" y=\"", Num(y), "\"", attrs.empty() ? "" : " ", attrs, ">",
                      HtmlEscape(text), "</text>\n");
}

void Axes(const Plot& plot, const PlotLayout& layout, std::string* out) {
  const double l = layout.left(), r = layout.right(), t = layout.top(), b = layout.bottom();
  for (double tick : layout.x_ticks()) {
    const double x = layout.PixelX(tick);
    absl::StrAppend(out, "<line class=\"grid\" x1=\"", Num(x), "\" y1=\"", Num(t), "\" x2=\"", Num(x), "\" y2=\"",
                    Num(b), "\"/>\n");
    absl::StrAppend(out, Text(x, b + 18, TickLabel(tick, plot.x.scale), "text-anchor=\"middle\""));
  }
  for (double tick : layout.y_ticks()) {
    const double y = layout.PixelY(tick);
    absl::StrAppend(out, "<line class=\"grid\" x1=\"", Num(l), "\" y1=\"", Num(y), "\" x2=\"", Num(r), "\" y2=\"",
                    Num(y), "\"/>\n");
    absl::StrAppend(out, Text(l - 6, y + 4, TickLabel(tick, plot.y.scale), "text-anchor=\"end\""));
  }
  absl::StrAppend(out, "<rect class=\"frame\" x=\"", Num(l), "\" y=\"", Num(t), "\" width=\"", Num(r - l),
                  "\" height=\"", Num(b - t), "\"/>\n");
}

void SeriesPaths(const Plot& plot, const PlotLayout& layout, std::string* out) {
  absl::StrAppend(out, "<g clip-path=\"url(#clip-", plot.id, ")\">\n");
  for (size_t s = 0; s < plot.series.size(); ++s) {
    const Series& series = plot.series[s];
    const std::vector<Point> points = layout.DisplayPoints(s);
    if (points.empty()) continue;
    const std::string color = Color(SeriesColorIndex(plot, s));
    const bool line = series.style != SeriesStyle::kMarkers;
    const bool markers = series.style == SeriesStyle::kMarkers || series.style == SeriesStyle::kLineAndMarkers ||
                         points.size() == 1;
    if (line && points.size() > 1) {
      absl::StrAppend(out, "<polyline fill=\"none\" stroke=\"", color, "\" stroke-width=\"1.6\"",
                      series.style == SeriesStyle::kDashedLine ? " stroke-dasharray=\"6 4\"" : "", " points=\"");
      for (const Point& p : points) absl::StrAppend(out, Num(layout.PixelX(p.x)), ",", Num(layout.PixelY(p.y)), " ");
      absl::StrAppend(out, "\"/>\n");
    }
    if (markers) {
      for (const Point& p : points) {
        absl::StrAppend(out, "<circle cx=\"", Num(layout.PixelX(p.x)), "\" cy=\"", Num(layout.PixelY(p.y)),
                        "\" r=\"3.5\" fill=\"", color, "\"/>\n");
      }
    }
  }
  for (const VerticalLine& v : plot.vertical_lines) {
    if (!layout.XInRange(v.x)) continue;
    const double x = layout.PixelX(v.x);
    absl::StrAppend(out, "<line class=\"marker\" x1=\"", Num(x), "\" y1=\"", Num(layout.top()), "\" x2=\"", Num(x),
                    "\" y2=\"", Num(layout.bottom()), "\"/>\n");
    absl::StrAppend(out, Text(x + 4, layout.top() + 14, v.label, "class=\"marker-label\""));
  }
  absl::StrAppend(out, "</g>\n");
}

void Legend(const Plot& plot, const PlotLayout& layout, std::string* out) {
  double x = layout.right() + 14, y = layout.top() + 10;
  for (size_t s = 0; s < plot.series.size(); ++s) {
    if (y + 18 > layout.bottom() && s + 1 < plot.series.size()) {  // the legend column is full
      absl::StrAppend(out, Text(x, y + 4, absl::StrCat("+", plot.series.size() - s, " more"), "class=\"note\""));
      y += 18;
      break;
    }
    const Series& series = plot.series[s];
    const std::string color = Color(SeriesColorIndex(plot, s));
    if (series.style == SeriesStyle::kMarkers) {
      absl::StrAppend(out, "<circle cx=\"", Num(x + 11), "\" cy=\"", Num(y), "\" r=\"3.5\" fill=\"", color, "\"/>\n");
    } else {
      absl::StrAppend(out, "<line x1=\"", Num(x), "\" y1=\"", Num(y), "\" x2=\"", Num(x + 22), "\" y2=\"", Num(y),
                      "\" stroke=\"", color, "\" stroke-width=\"2\"",
                      series.style == SeriesStyle::kDashedLine ? " stroke-dasharray=\"6 4\"" : "", "/>\n");
    }
    absl::StrAppend(out, Text(x + 28, y + 4, Ellipsize(series.name, kLegendChars)));
    y += 18;
  }
  for (const std::string& note : plot.notes) {
    absl::StrAppend(out, Text(x, y + 4, Ellipsize(note, kLegendChars + 4), "class=\"note\""));
    y += 18;
  }
}

}  // namespace

std::string RenderSvg(const Plot& plot, PlotSize size) {
  const PlotLayout layout(plot, size);
  std::string out = absl::StrCat("<svg id=\"plot-", plot.id, "\" class=\"plot\" width=\"", size.width,
                                 "\" height=\"", size.height, "\" viewBox=\"0 0 ", size.width, " ", size.height,
                                 "\" role=\"img\">\n<title>", HtmlEscape(plot.title), "</title>\n");
  absl::StrAppend(&out, "<defs><clipPath id=\"clip-", plot.id, "\"><rect x=\"", Num(layout.left()), "\" y=\"",
                  Num(layout.top()), "\" width=\"", Num(layout.right() - layout.left()), "\" height=\"",
                  Num(layout.bottom() - layout.top()), "\"/></clipPath></defs>\n");
  absl::StrAppend(&out, "<rect class=\"bg\" x=\"0\" y=\"0\" width=\"", size.width, "\" height=\"", size.height,
                  "\"/>\n");
  absl::StrAppend(&out, Text(layout.left(), 24, plot.title, "class=\"title\""));
  if (layout.empty()) {
    absl::StrAppend(&out, "<rect class=\"frame\" x=\"", Num(layout.left()), "\" y=\"", Num(layout.top()),
                    "\" width=\"", Num(layout.right() - layout.left()), "\" height=\"",
                    Num(layout.bottom() - layout.top()), "\"/>\n");
    absl::StrAppend(&out, Text((layout.left() + layout.right()) / 2, (layout.top() + layout.bottom()) / 2,
                               plot.empty_message, "class=\"empty\" text-anchor=\"middle\""));
  } else {
    Axes(plot, layout, &out);
    SeriesPaths(plot, layout, &out);
    Legend(plot, layout, &out);
  }
  absl::StrAppend(&out, Text((layout.left() + layout.right()) / 2, size.height - 14, plot.x.label,
                             "class=\"axis-label\" text-anchor=\"middle\""));
  const double cy = (layout.top() + layout.bottom()) / 2;
  absl::StrAppend(&out, Text(16, cy, plot.y.label,
                             absl::StrCat("class=\"axis-label\" text-anchor=\"middle\" transform=\"rotate(-90 16 ",
                                          Num(cy), ")\"")));
  absl::StrAppend(&out, "</svg>\n");
  return out;
}

}  // namespace cf::report
