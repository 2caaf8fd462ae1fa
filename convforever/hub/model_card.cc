#include "convforever/hub/model_card.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "convforever/http/headers.h"

namespace cf::hub {
namespace {

// Double-quoted YAML scalar: safe for any text (colons, '#', leading dashes, unicode).
std::string YamlString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\x%02x", static_cast<unsigned char>(c));
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string YamlList(const std::string& key, const std::vector<std::string>& items) {
  if (items.empty()) return "";
  std::string out = key + ":\n";
  for (const std::string& item : items) absl::StrAppend(&out, "- ", YamlString(item), "\n");
  return out;
}

// A Markdown table cell: no row breaks, no column breaks.
std::string Cell(const std::string& s) {
  return absl::StrReplaceAll(s, {{"|", "\\|"}, {"\n", " "}, {"\r", " "}});
}

// Markdown image alt text: brackets and line breaks would end it early.
std::string AltText(const std::string& s) {
  return absl::StrReplaceAll(s, {{"[", "("}, {"]", ")"}, {"\n", " "}, {"\r", " "}});
}

}  // namespace

bool IsSecretFlagName(const std::string& name) {
  const std::string n = absl::AsciiStrToLower(name);
  for (const char* word : {"token", "secret", "password", "api_key", "apikey", "key"}) {
    if (absl::StrContains(n, word)) return true;
  }
  return false;
}

std::string ModelCard(const ModelCardOptions& o) {
  std::string card = "---\n";
  absl::StrAppend(&card, "library_name: ", YamlString(o.library_name), "\n");
  if (!o.license.empty()) absl::StrAppend(&card, "license: ", YamlString(o.license), "\n");
  if (!o.pipeline_tag.empty()) {
    absl::StrAppend(&card, "pipeline_tag: ", YamlString(o.pipeline_tag), "\n");
  }
  std::vector<std::string> tags = o.tags;
  if (std::find(tags.begin(), tags.end(), o.library_name) == tags.end()) {
    tags.push_back(o.library_name);
  }
  card += YamlList("tags", tags);
  std::vector<std::string> datasets;
  for (const std::string& d : o.datasets) datasets.push_back(http::RedactUrlsInText(d));
  card += YamlList("datasets", datasets);
  std::vector<std::string> metric_names;
  for (const auto& [name, value] : o.metrics) metric_names.push_back(name);
  card += YamlList("metrics", metric_names);
  card += "---\n\n";

  absl::StrAppend(&card, "# ", o.repo_id.empty() ? "ConvForever model" : o.repo_id, "\n\n");
  if (!o.description.empty()) absl::StrAppend(&card, http::RedactUrlsInText(o.description), "\n\n");
  absl::StrAppend(&card, "Trained with ConvForever");
  if (!o.model_name.empty()) absl::StrAppend(&card, " (architecture `", o.model_name, "`)");
  card += ".";
  if (o.step >= 0) absl::StrAppend(&card, " Snapshot at step ", o.step);
  if (o.epoch >= 0) absl::StrAppend(&card, o.step >= 0 ? ", epoch " : " Snapshot at epoch ", o.epoch);
  if (o.step >= 0 || o.epoch >= 0) card += ".";
  card += "\n\n";

  if (!o.metrics.empty()) {
    card += "## Metrics\n\n| metric | value |\n| --- | --- |\n";
    for (const auto& [name, value] : o.metrics) {
      absl::StrAppend(&card, "| ", Cell(name), " | ", absl::StrFormat("%.6g", value), " |\n");
    }
    card += "\n";
  }
  if (!o.images.empty()) {
    card += "## Training curves\n\n";
    for (const auto& [caption, path] : o.images) {
      absl::StrAppend(&card, "![", AltText(caption), "](", path, ")\n\n");
    }
  }
  if (!o.flags.empty()) {
    card += "## Training flags\n\n| flag | value |\n| --- | --- |\n";
    for (const auto& [name, value] : o.flags) {
      const std::string shown = IsSecretFlagName(name) ? "<redacted>" : http::RedactUrlsInText(value);
      absl::StrAppend(&card, "| `", Cell(name), "` | `", Cell(shown), "` |\n");
    }
    card += "\n";
  }
  card += "## Usage\n\n```python\n";
  if (o.library_name == "transformers") {
    absl::StrAppend(&card, "from transformers import AutoModelForImageClassification\n",
                    "model = AutoModelForImageClassification.from_pretrained(\"", o.repo_id,
                    "\")\n");
  } else {
    absl::StrAppend(&card, "import timm\nmodel = timm.create_model(\"hf-hub:", o.repo_id,
                    "\", pretrained=True)\n");
  }
  card += "```\n";
  return card;
}

}  // namespace cf::hub
