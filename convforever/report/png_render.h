// Renders a Plot as a PNG with OpenCV's drawing (cv::line / cv::circle / cv::putText; encoded by
// libpng, so nothing here needs OpenCV's imgcodecs and its dependencies): the same layout, ticks, series, markers and legend as the SVG (svg_render.h).
// OpenCV's Hershey fonts have ASCII only: other characters are drawn as '?'.
// Pure except WritePng; thread-compatible.
#ifndef CONVFOREVER_REPORT_PNG_RENDER_H_
#define CONVFOREVER_REPORT_PNG_RENDER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/report/plot.h"
#include "opencv2/core.hpp"

namespace cf::report {

// An 8-bit BGR image of size.height x size.width.
cv::Mat RenderPlotImage(const Plot& plot, PlotSize size = {});

// PNG bytes of an 8-bit BGR image.
absl::StatusOr<std::string> EncodePng(const cv::Mat& bgr);

// Renders and writes `path` (a .png) atomically; an error names `path` when it cannot be written.
absl::Status WritePlotPng(const Plot& plot, const std::string& path, PlotSize size = {});

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_PNG_RENDER_H_
