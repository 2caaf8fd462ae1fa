#include "convforever/report/html_escape.h"

namespace cf::report {

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '\0': out += "&#xFFFD;"; break;  // NUL is a parse error in HTML
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace cf::report
