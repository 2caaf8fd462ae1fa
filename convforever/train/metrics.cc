#include "convforever/train/metrics.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "convforever/http/headers.h"

namespace cf::train {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Long runs of token-ish characters after a well-known credential prefix.
bool LooksLikeCredential(const std::string& value) {
  for (const char* prefix : {"hf_", "sk-", "sk_", "ghp_", "github_pat_"}) {
    if (!absl::StartsWith(value, prefix)) continue;
    const std::string rest = value.substr(std::strlen(prefix));
    if (rest.size() < 16) return false;
    for (char c : rest) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
    return true;
  }
  return false;
}

absl::Status CheckScalarName(const std::string& name, const std::string& path) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": empty scalar name"));
  if (name == "kind" || name == "step" || name == "wall_time") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": scalar name \"", name, "\" is reserved in metrics.jsonl"));
  }
  return absl::OkStatus();
}

}  // namespace

double WallTimeSeconds() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count() / 1e6;
}

nlohmann::json JsonNumberOrString(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return value;
}

bool IsSecretKey(const std::string& key) {
  const std::string lower = absl::AsciiStrToLower(key);
  for (const char* word : {"token", "key", "secret", "password"}) {
    if (absl::StrContains(lower, word)) return true;
  }
  return false;
}

nlohmann::json StripSecrets(const nlohmann::json& config) {
  if (config.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = config.begin(); it != config.end(); ++it) {
      if (IsSecretKey(it.key())) continue;
      if (it.value().is_string() && LooksLikeCredential(it.value().get<std::string>())) continue;
      out[it.key()] = StripSecrets(it.value());
    }
    return out;
  }
  if (config.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : config) {
      if (item.is_string() && LooksLikeCredential(item.get<std::string>())) continue;
      out.push_back(StripSecrets(item));
    }
    return out;
  }
  // A URL's userinfo and signed query string (a presigned --data_dir, user:pass@ in a URL) go
  // wherever the config goes: trainer_state.json, metrics, TensorBoard, Trackio, the model card.
  if (config.is_string()) return cf::http::RedactUrlsInText(config.get<std::string>());
  return config;
}

// ---- MultiSink ---------------------------------------------------------------------------------

void MultiSink::Add(std::unique_ptr<MetricSink> sink) {
  sinks_.push_back(sink.get());
  owned_.push_back(std::move(sink));
}

void MultiSink::AddUnowned(MetricSink* sink) { sinks_.push_back(sink); }

// Calls every sink, so one broken output does not silence the others; the first error wins.
#define CF_FAN_OUT(call)                                       \
  absl::Status first;                                          \
  for (MetricSink* sink : sinks_) {                            \
    absl::Status status = sink->call;                          \
    if (first.ok() && !status.ok()) first = std::move(status); \
  }                                                            \
  return first

absl::Status MultiSink::Log(int64_t step, const Scalars& scalars) {
  CF_FAN_OUT(Log(step, scalars));
}
absl::Status MultiSink::LogConfig(const nlohmann::json& config) { CF_FAN_OUT(LogConfig(config)); }
absl::Status MultiSink::LogSystem(const Scalars& scalars) { CF_FAN_OUT(LogSystem(scalars)); }
absl::Status MultiSink::DiscardAfter(int64_t step) { CF_FAN_OUT(DiscardAfter(step)); }
absl::Status MultiSink::Flush() { CF_FAN_OUT(Flush()); }
absl::Status MultiSink::Close() { CF_FAN_OUT(Close()); }

#undef CF_FAN_OUT

// ---- RecordFile --------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<RecordFile>> RecordFile::Open(const std::string& path,
                                                             const char* mode) {
  std::FILE* file = std::fopen(path.c_str(), mode);
  if (file == nullptr) return ErrnoError("cannot open", path);
  return std::unique_ptr<RecordFile>(new RecordFile(path, file));
}

RecordFile::~RecordFile() { Close().IgnoreError(); }

absl::Status RecordFile::Append(absl::string_view record) {
  absl::MutexLock lock(&mu_);
  if (file_ == nullptr) return absl::FailedPreconditionError(absl::StrCat(path_, " is closed"));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() ||
      std::fflush(file_) != 0) {
    return ErrnoError("cannot write", path_);
  }
  return absl::OkStatus();
}

absl::Status RecordFile::Sync() {
  absl::MutexLock lock(&mu_);
  if (file_ == nullptr) return absl::FailedPreconditionError(absl::StrCat(path_, " is closed"));
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
    return ErrnoError("cannot flush", path_);
  }
  return absl::OkStatus();
}

absl::Status RecordFile::Close() {
  absl::MutexLock lock(&mu_);
  if (file_ == nullptr) return absl::OkStatus();
  std::FILE* file = file_;
  file_ = nullptr;
  bool ok = std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
  ok = std::fclose(file) == 0 && ok;
  return ok ? absl::OkStatus() : ErrnoError("cannot close", path_);
}

absl::Status RecordFile::Rewrite(const std::function<std::string(std::istream&)>& rewrite) {
  absl::MutexLock lock(&mu_);
  if (file_ == nullptr) return absl::FailedPreconditionError(absl::StrCat(path_, " is closed"));
  if (std::fflush(file_) != 0) return ErrnoError("cannot flush", path_);
  std::ifstream in(path_);
  if (!in) return ErrnoError("cannot read", path_);
  RETURN_IF_ERROR(base::WriteFileAtomically(path_, rewrite(in)));
  // The old descriptor points at the replaced file: reopen the new one for appending.
  std::fclose(file_);
  file_ = std::fopen(path_.c_str(), "ae");
  if (file_ == nullptr) return ErrnoError("cannot reopen", path_);
  return absl::OkStatus();
}

// ---- JsonlSink ---------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<JsonlSink>> JsonlSink::Open(const std::string& run_dir) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create run directory ", run_dir, ": ", ec.message()));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<RecordFile> file, RecordFile::Open(run_dir + "/metrics.jsonl", "ae"));
  return std::unique_ptr<JsonlSink>(new JsonlSink(std::move(file)));
}

absl::Status JsonlSink::Log(int64_t step, const Scalars& scalars) {
  nlohmann::ordered_json record;
  record["kind"] = "metrics";
  record["step"] = step;
  record["wall_time"] = WallTimeSeconds();
  for (const auto& [name, value] : scalars) {
    if (absl::Status s = CheckScalarName(name, path()); !s.ok()) return s;
    record[name] = JsonNumberOrString(value);
  }
  return file_->Append(record.dump() + "\n");
}

absl::Status JsonlSink::LogConfig(const nlohmann::json& config) {
  nlohmann::ordered_json record;
  record["kind"] = "config";
  record["wall_time"] = WallTimeSeconds();
  record["config"] = StripSecrets(config);
  return file_->Append(record.dump() + "\n");
}

absl::Status JsonlSink::LogSystem(const Scalars& scalars) {
  nlohmann::ordered_json record;
  record["kind"] = "system";
  record["wall_time"] = WallTimeSeconds();
  for (const auto& [name, value] : scalars) {
    if (absl::Status s = CheckScalarName(name, path()); !s.ok()) return s;
    record[name] = JsonNumberOrString(value);
  }
  return file_->Append(record.dump() + "\n");
}

absl::Status JsonlSink::DiscardAfter(int64_t step) {
  return file_->Rewrite([step](std::istream& in) {
    std::string kept;
    for (std::string line; std::getline(in, line);) {
      // A torn last line (the interrupted run died mid-write) is dropped; any other bad line is
      // kept as it is: this pass only removes what it understands.
      nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (record.is_discarded() && in.peek() == EOF) break;
      if (record.is_object() && record.value("kind", "") == "metrics" && record.contains("step") &&
          record["step"].is_number_integer() && record["step"].get<int64_t>() > step) {
        continue;
      }
      absl::StrAppend(&kept, line, "\n");
    }
    return kept;
  });
}

}  // namespace cf::train
