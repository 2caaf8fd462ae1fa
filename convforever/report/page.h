// Builds the report's single HTML file: inline CSS, inline SVG, no script and no external
// reference of any kind (a Content-Security-Policy meta tag forbids loading anything, so even a
// mistake would not fetch). Every text argument is escaped here; only RawSvg takes markup, from
// svg_render.h. Not thread-safe.
#ifndef CONVFOREVER_REPORT_PAGE_H_
#define CONVFOREVER_REPORT_PAGE_H_

#include <string>
#include <vector>

namespace cf::report {

class HtmlPage {
 public:
  explicit HtmlPage(const std::string& title);

  void Heading(int level, const std::string& text, const std::string& id = "");
  void Paragraph(const std::string& text, const std::string& css_class = "");
  void List(const std::vector<std::string>& items, const std::string& css_class = "");
  // A table; `numeric` marks right-aligned columns (may be shorter than header).
  void Table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
             const std::vector<bool>& numeric = {});
  // Markup from RenderSvg, which escapes its own text.
  void RawSvg(const std::string& svg);
  // Appends `other`'s body (built separately) to this page's.
  void Append(const HtmlPage& other) { body_ += other.body_; }
  void BeginSection(const std::string& css_class);
  void EndSection();

  // The complete document.
  std::string Finish() const;

 private:
  std::string title_;
  std::string body_;
};

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_PAGE_H_
