#include "convforever/report/page.h"

#include "absl/strings/str_cat.h"
#include "convforever/report/html_escape.h"

namespace cf::report {
namespace {

constexpr char kStyle[] = R"css(
body { font-family: sans-serif; margin: 24px; color: #222; background: #fafafa; max-width: 1400px; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
h3 { font-size: 16px; margin-top: 20px; }
p.meta, li.meta { color: #666; font-size: 13px; }
p.warn, ul.warn li { color: #9a4b00; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px 0; background: #fff; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
td { white-space: nowrap; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
div.scroll { overflow-x: auto; }
svg.plot { display: block; margin: 10px 0; background: #fff; border: 1px solid #ddd; }
svg.plot text { font-family: sans-serif; font-size: 12px; fill: #222; }
svg.plot text.title { font-size: 15px; font-weight: bold; }
svg.plot text.axis-label { font-size: 13px; }
svg.plot text.note, svg.plot text.marker-label { fill: #555; }
svg.plot text.empty { font-size: 15px; fill: #888; }
svg.plot rect.bg { fill: #fff; }
svg.plot rect.frame { fill: none; stroke: #888; }
svg.plot line.grid { stroke: #e6e6e6; }
svg.plot line.marker { stroke: #666; stroke-dasharray: 4 3; }
)css";

}  // namespace

HtmlPage::HtmlPage(const std::string& title) : title_(title) {}

void HtmlPage::Heading(int level, const std::string& text, const std::string& id) {
  const std::string tag = absl::StrCat("h", level < 1 ? 1 : level > 4 ? 4 : level);
  absl::StrAppend(&body_, "<", tag, id.empty() ? "" : absl::StrCat(" id=\"", HtmlEscape(id), "\""), ">",
                  HtmlEscape(text), "</", tag, ">\n");
}

void HtmlPage::Paragraph(const std::string& text, const std::string& css_class) {
  absl::StrAppend(&body_, "<p", css_class.empty() ? "" : absl::StrCat(" class=\"", HtmlEscape(css_class), "\""), ">",
                  HtmlEscape(text), "</p>\n");
}

void HtmlPage::List(const std::vector<std::string>& items, const std::string& css_class) {
  absl::StrAppend(&body_, "<ul", css_class.empty() ? "" : absl::StrCat(" class=\"", HtmlEscape(css_class), "\""), ">\n");
  for (const std::string& item : items) absl::StrAppend(&body_, "<li>", HtmlEscape(item), "</li>\n");
  absl::StrAppend(&body_, "</ul>\n");
}

void HtmlPage::Table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                     const std::vector<bool>& numeric) {
  absl::StrAppend(&body_, "<div class=\"scroll\"><table>\n<tr>");
  for (const std::string& h : header) absl::StrAppend(&body_, "<th>", HtmlEscape(h), "</th>");
  absl::StrAppend(&body_, "</tr>\n");
  for (const auto& row : rows) {
    absl::StrAppend(&body_, "<tr>");
    for (size_t i = 0; i < row.size(); ++i) {
      const bool num = i < numeric.size() && numeric[i];
      absl::StrAppend(&body_, num ? "<td class=\"num\">" : "<td>", HtmlEscape(row[i]), "</td>");
    }
    absl::StrAppend(&body_, "</tr>\n");
  }
  absl::StrAppend(&body_, "</table></div>\n");
}

void HtmlPage::RawSvg(const std::string& svg) { absl::StrAppend(&body_, svg); }

void HtmlPage::BeginSection(const std::string& css_class) {
  absl::StrAppend(&body_, "<section class=\"", HtmlEscape(css_class), "\">\n");
}

void HtmlPage::EndSection() { absl::StrAppend(&body_, "</section>\n"); }

std::string HtmlPage::Finish() const {
  return absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
      // Nothing may be loaded or run: styles are inline, images are inline SVG.
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>", HtmlEscape(title_),
      "</title>\n<style>", kStyle, "</style>\n</head>\n<body>\n", body_, "</body>\n</html>\n");
}

}  // namespace cf::report
