#include "convforever/caption/prompt.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convforever/base/json_limits.h"
#include "nlohmann/json.hpp"

namespace cf::caption {

using nlohmann::json;

std::string BuildRequestBody(const PromptOptions& options, const std::vector<std::string>& categories,
                             absl::string_view caption) {
  std::string instruction = absl::StrCat(
      "Classify the image described by the caption below into the single most appropriate "
      "category from this list:\n",
      absl::StrJoin(categories, ", "), "\n\n");
  if (options.json_schema) {
    absl::StrAppend(&instruction, "Answer with JSON: {\"category\": \"<one category from the list>\"}.");
  } else {
    absl::StrAppend(&instruction, "Answer with the category name only, nothing else.");
  }
  json body = {
      {"model", options.model},
      {"messages",
       json::array({{{"role", "system"}, {"content", "You are a precise image caption classifier."}},
                    {{"role", "user"},
                     {"content", absl::StrCat(instruction, "\n\nCaption: ", caption)}}})},
      {"temperature", options.temperature},
      {"max_tokens", options.max_tokens},
  };
  if (options.json_schema) {
    body["response_format"] = {
        {"type", "json_schema"},
        {"json_schema",
         {{"name", "category"},
          {"strict", true},
          {"schema",
           {{"type", "object"},
            {"properties", {{"category", {{"type", "string"}, {"enum", categories}}}}},
            {"required", json::array({"category"})},
            {"additionalProperties", false}}}}}};
  }
  // Invalid UTF-8 in a caption is replaced rather than failing the whole record.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

absl::Status ErrorObjectStatus(const json& error) {
  std::string code_text;
  int64_t code = 0;
  if (error.is_object()) {
    for (const char* key : {"code", "type", "status"}) {
      if (!error.contains(key)) continue;
      const json& v = error[key];
      // As int64: a code of 2^32 + 401 must not narrow to 401 and stop the run.
      if (v.is_number_integer()) code = v.get<int64_t>();
      code_text = v.is_string() ? v.get<std::string>() : v.dump();
      break;
    }
  }
  std::string message = error.is_object() && error.contains("message") && error["message"].is_string()
                            ? error["message"].get<std::string>()
                            : error.dump();
  const std::string text = absl::StrCat("API error ", code_text.empty() ? "?" : code_text, ": ",
                                        message.substr(0, 300));
  if (code == 401) return absl::UnauthenticatedError(text);
  if (code == 402) return absl::FailedPreconditionError(text);
  if (code == 403) return absl::PermissionDeniedError(text);
  return absl::UnavailableError(text);
}

}  // namespace

absl::StatusOr<Completion> ParseCompletion(absl::string_view body) {
  // The error object is dumped into the message, which recurses once per nesting level.
  if (absl::Status s = CheckJsonLimits(body, {}, "completion response"); !s.ok()) return s;
  json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON in completion response: ", body.substr(0, 120)));
  }
  if (doc.contains("error") && !doc["error"].is_null()) return ErrorObjectStatus(doc["error"]);
  const json* choices = doc.contains("choices") ? &doc["choices"] : nullptr;
  if (choices == nullptr || !choices->is_array() || choices->empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no choices in completion response: ", body.substr(0, 120)));
  }
  const json& first = (*choices)[0];
  if (first.contains("error") && !first["error"].is_null()) return ErrorObjectStatus(first["error"]);
  Completion out;
  if (first.contains("message") && first["message"].is_object()) {
    const json& content = first["message"].value("content", json());
    if (content.is_string()) out.content = content.get<std::string>();
  } else if (first.contains("text") && first["text"].is_string()) {
    out.content = first["text"].get<std::string>();  // legacy completions shape
  }
  if (doc.contains("usage") && doc["usage"].is_object()) {
    const json& u = doc["usage"];
    // Counts outside [0, kMaxTokenCount] are a provider's bug, not usage: they count as 0, so
    // the sum below and the run's totals cannot overflow.
    auto get = [&](const char* k) -> int64_t {
      if (!u.contains(k) || !u[k].is_number_integer()) return 0;
      if (u[k].is_number_unsigned()) {
        const uint64_t v = u[k].get<uint64_t>();
        return v <= static_cast<uint64_t>(kMaxTokenCount) ? static_cast<int64_t>(v) : 0;
      }
      const int64_t v = u[k].get<int64_t>();
      return v >= 0 && v <= kMaxTokenCount ? v : 0;
    };
    out.prompt_tokens = get("prompt_tokens");
    out.completion_tokens = get("completion_tokens");
    out.total_tokens = get("total_tokens");
    if (out.total_tokens == 0) out.total_tokens = out.prompt_tokens + out.completion_tokens;
  }
  return out;
}

namespace {

bool IsWordChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

int MatchJson(absl::string_view answer, const std::vector<std::string>& categories) {
  if (!CheckJsonLimits(answer).ok()) return -1;
  json doc = json::parse(answer.begin(), answer.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.size() != 1 || !doc.contains("category") ||
      !doc["category"].is_string()) {
    return -1;
  }
  const std::string name = doc["category"].get<std::string>();
  for (size_t i = 0; i < categories.size(); ++i) {
    if (categories[i] == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

int MatchCategory(absl::string_view answer, const std::vector<std::string>& categories, bool json_mode) {
  if (json_mode) return MatchJson(absl::StripAsciiWhitespace(answer), categories);
  const std::string text = absl::AsciiStrToLower(answer);
  int best = -1;
  size_t best_pos = std::string::npos;
  for (size_t i = 0; i < categories.size(); ++i) {
    const std::string name = absl::AsciiStrToLower(categories[i]);
    for (size_t pos = text.find(name); pos != std::string::npos && pos <= best_pos;
         pos = text.find(name, pos + 1)) {
      const size_t end = pos + name.size();
      const bool word = (pos == 0 || !IsWordChar(text[pos - 1])) && (end == text.size() || !IsWordChar(text[end]));
      if (!word) continue;
      if (pos < best_pos || categories[i].size() > categories[best].size()) {
        best = static_cast<int>(i);
        best_pos = pos;
      }
      break;
    }
  }
  return best;
}

}  // namespace cf::caption
