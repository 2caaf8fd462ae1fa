// Escaping text for HTML and SVG content and attribute values (& < > " '). Every string the
// report takes from a file (run names, config values, CSV fields) goes through it. Pure.
#ifndef CONVFOREVER_REPORT_HTML_ESCAPE_H_
#define CONVFOREVER_REPORT_HTML_ESCAPE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace cf::report {

std::string HtmlEscape(absl::string_view text);

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_HTML_ESCAPE_H_
