// Renders a Plot as an inline SVG element for the HTML page: `<svg id="plot-<id>" ...>` with a
// <title>, grid, ticks, series (downsampled), vertical markers, legend and notes. All text is
// escaped. No external references, no script. Pure; thread-safe.
#ifndef CONVFOREVER_REPORT_SVG_RENDER_H_
#define CONVFOREVER_REPORT_SVG_RENDER_H_

#include <string>

#include "convforever/report/plot.h"

namespace cf::report {

std::string RenderSvg(const Plot& plot, PlotSize size = {});

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_SVG_RENDER_H_
