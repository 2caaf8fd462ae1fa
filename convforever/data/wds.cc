#include "convforever/data/wds.h"

#include <archive.h>
#include <archive_entry.h>

#include <cerrno>
#include <algorithm>
#include <filesystem>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/holdout.h"
#include "convforever/data/http_fetch.h"
#include "convforever/data/wds_http_stream.h"
#include "convforever/http/headers.h"

namespace cf::data {
namespace {

namespace fs = std::filesystem;

bool IsImageExt(const std::string& ext) {
  return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "webp";
}

// Rejects what a tar extractor must never trust: absolute paths and parent references.
bool UnsafePath(const std::string& name) {
  if (name.empty() || name[0] == '/' || name.find('\\') != std::string::npos) return true;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part == "..") return true;
  }
  return false;
}

// Tar members are read in pieces of this size (see ReadMembers).
constexpr int64_t kMemberReadChunk = 64 << 10;

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<WdsSource>> WdsSource::Open(const DatasetSpec& spec) {
  std::unique_ptr<WdsSource> s(new WdsSource());
  s->spec_ = spec;
  if (!IsHttpUrl(spec.path) && fs::is_directory(spec.path)) {
    for (const auto& e : fs::directory_iterator(spec.path)) {
      if (e.is_regular_file() && e.path().extension() == ".tar") s->shards_.push_back(e.path().string());
    }
    std::sort(s->shards_.begin(), s->shards_.end());
  } else {
    ASSIGN_OR_RETURN(s->shards_, ExpandBraces(spec.path));
  }
  if (s->shards_.empty()) return absl::NotFoundError("no .tar shards in " + spec.path);
  for (const auto& shard : s->shards_) {
    if (!IsHttpUrl(shard) && !fs::is_regular_file(shard)) return absl::NotFoundError("WebDataset shard " + shard + " does not exist");
  }
  if (!spec.class_list_path.empty()) {
    ASSIGN_OR_RETURN(s->classes_, ReadClassList(spec.class_list_path));
    for (size_t i = 0; i < s->classes_.size(); ++i) s->class_index_[s->classes_[i]] = i;
  }
  s->num_classes_ = s->classes_.empty() ? spec.num_classes : static_cast<int>(s->classes_.size());
  if (s->num_classes_ <= 0) return absl::InvalidArgumentError("wds dataset " + spec.path + " needs a class list or num_classes > 0");
  return s;
}

struct WdsSource::Pending {
  std::string key, shard;
  std::string image;
  int64_t label = -1;
  bool bad_label = false;
  std::string bad_label_text;  // the label as written, for the bad-label observer
  bool active = false;
};

bool WdsSource::Flush(Pending& p, const std::function<bool(FetchResult)>& emit,
                      std::map<std::string, int64_t>* skipped) const {
  if (!p.active) return true;
  p.active = false;
  if (p.bad_label) {
    ++(*skipped)["bad_label"];
    if (bad_label_observer_) bad_label_observer_(ShardFileName(p.shard) + ":" + p.key, p.bad_label_text);
    return true;
  }
  if (p.image.empty() || p.label < 0) { ++(*skipped)["incomplete_sample"]; return true; }
  Record r;
  r.key = ShardFileName(p.shard) + ":" + p.key;
  if (!InHoldoutPart(r.key, spec_.holdout_fraction, spec_.holdout_part)) return true;
  r.encoded = std::move(p.image);
  r.label = p.label;
  return emit({std::move(r), ""});
}

// A shard may be compressed (.tar.gz, .tar.zst, ...) with any filter libarchive runs in-process.
// Not archive_read_support_filter_all: that also registers lrzip, lzop and grzip, for which a
// libarchive built without their libraries (Debian's) forks an external program on the shard's
// bytes, and a shard is untrusted input.
std::unique_ptr<archive, ArchiveDeleter> NewTarReader() {
  std::unique_ptr<archive, ArchiveDeleter> a(archive_read_new());
  for (int (*add)(archive*) : {archive_read_support_filter_gzip, archive_read_support_filter_bzip2,
                               archive_read_support_filter_xz, archive_read_support_filter_lzma,
                               archive_read_support_filter_zstd, archive_read_support_filter_lz4,
                               archive_read_support_filter_compress}) {
    add(a.get());
  }
  archive_read_support_format_tar(a.get());
  return a;
}

// A remote shard's bytes for libarchive, pulled from its download stream.
struct RemoteShard {
  HttpShardStream* stream;
  std::vector<char> chunk = std::vector<char>(256 << 10);
};

la_ssize_t ReadRemote(archive* a, void* p, const void** out) {
  auto* r = static_cast<RemoteShard*>(p);
  const int64_t got = r->stream->Read(r->chunk.data(), r->chunk.size());
  if (got < 0) {
    archive_set_error(a, EIO, "%s", std::string(r->stream->status().message()).c_str());
    return -1;
  }
  *out = r->chunk.data();
  return got;
}

bool WdsSource::ReadOne(const std::string& shard, const std::function<bool(FetchResult)>& emit,
                        std::map<std::string, int64_t>* skipped, const std::atomic<bool>& cancel,
                        bool headers_only) const {
  std::unique_ptr<HttpShardStream> stream;
  RemoteShard remote{nullptr};
  auto a = NewTarReader();
  int rc;
  if (IsHttpUrl(shard)) {
    HttpShardStreamOptions so;
    so.buffer_bytes = spec_.wds_stream_buffer_bytes;
    so.stall_timeout = absl::Seconds(spec_.wds_stall_timeout_s);
    so.connect_timeout = absl::Milliseconds(spec_.http.connect_timeout_ms);
    so.retry.max_attempts = spec_.http.retries + 1;
    so.retry.base_delay = absl::Milliseconds(spec_.http.backoff_ms);
    so.user_agent = spec_.http.user_agent;
    stream = std::make_unique<HttpShardStream>(shard, so, &cancel);
    remote.stream = stream.get();
    rc = archive_read_open(a.get(), &remote, nullptr, &ReadRemote, nullptr);
  } else {
    rc = archive_read_open_filename(a.get(), shard.c_str(), 1 << 20);
  }
  bool go_on = true;
  if (rc != ARCHIVE_OK) {
    if (!cancel) {
      LOG(WARNING) << "skipping shard " << http::RedactUrl(shard) << ": " << archive_error_string(a.get());
      ++(*skipped)["shard_failed"];
    }
    go_on = !cancel;
  } else {
    go_on = ReadMembers(a.get(), shard, emit, skipped, cancel, headers_only);
  }
  if (stream) {
    int64_t seen = stream_high_water_.load();
    while (stream->high_water() > seen && !stream_high_water_.compare_exchange_weak(seen, stream->high_water())) {
    }
  }
  return go_on;
}

bool WdsSource::ReadShardBytes(absl::string_view bytes, const std::string& shard,
                               const std::function<bool(FetchResult)>& emit,
                               std::map<std::string, int64_t>* skipped, const std::atomic<bool>& cancel) const {
  auto a = NewTarReader();
  if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
    LOG(WARNING) << "skipping shard " << http::RedactUrl(shard) << ": " << archive_error_string(a.get());
    ++(*skipped)["shard_failed"];
    return true;
  }
  return ReadMembers(a.get(), shard, emit, skipped, cancel, /*headers_only=*/false);
}

bool WdsSource::ReadMembers(archive* a, const std::string& shard, const std::function<bool(FetchResult)>& emit,
                            std::map<std::string, int64_t>* skipped, const std::atomic<bool>& cancel,
                            bool headers_only) const {
  Pending p;
  archive_entry* e = nullptr;
  int rc = ARCHIVE_OK;
  while (!cancel && (rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    const int64_t size = archive_entry_size(e);
    if (UnsafePath(name) || size < 0 || size > spec_.wds_max_member_bytes) {
      LOG(WARNING) << "rejecting tar member '" << name << "' (" << size << " bytes"
                   << (size > spec_.wds_max_member_bytes ? absl::StrCat(", over wds_max_member_bytes ",
                                                                        spec_.wds_max_member_bytes)
                                                         : "")
                   << ") in " << http::RedactUrl(shard);
      ++(*skipped)["unsafe_member"];
      continue;
    }
    const size_t slash = name.rfind('/');
    const size_t dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
    if (dot == std::string::npos) continue;
    const std::string key = name.substr(0, dot), ext = absl::AsciiStrToLower(name.substr(dot + 1));
    if (!p.active || key != p.key) {
      if (!Flush(p, emit, skipped)) return false;
      p = Pending();
      p.active = true;
      p.key = key;
      p.shard = shard;
    }
    const bool wanted = IsImageExt(ext) || ext == "cls" || ext == "txt" || ext == "json";
    if (!wanted) continue;
    if (headers_only && IsImageExt(ext)) {  // libarchive skips the data on the next header
      p.image = "-";
      continue;
    }
    // The header's size is only a claim: the buffer grows with the bytes actually read, so a
    // member announcing more than the shard holds costs no more memory than the shard.
    std::string data;
    data.reserve(std::min<int64_t>(size, kMemberReadChunk));
    char chunk[kMemberReadChunk];
    la_ssize_t got = 0;
    while (static_cast<int64_t>(data.size()) < size &&
           (got = archive_read_data(a, chunk, std::min<int64_t>(sizeof(chunk), size - data.size()))) > 0) {
      data.append(chunk, got);
    }
    if (static_cast<int64_t>(data.size()) != size) {
      LOG(WARNING) << "truncated member " << name << " in " << http::RedactUrl(shard) << ": " << data.size()
                   << " of " << size << " bytes";
      ++(*skipped)["shard_failed"];
      return true;
    }
    if (IsImageExt(ext)) {
      p.image = std::move(data);
      continue;
    }
    std::string text(absl::StripAsciiWhitespace(data));
    nlohmann::json label_json = text;
    if (ext == "json") {
      auto j = nlohmann::json::parse(text, nullptr, false);
      label_json = j.is_object() && j.contains("label") ? j["label"] : j.is_object() && j.contains("cls") ? j["cls"] : nlohmann::json();
    }
    int64_t v = -1;
    if (label_json.is_number_integer()) {
      v = label_json.get<int64_t>();
    } else if (label_json.is_string()) {
      const std::string s = label_json.get<std::string>();
      if (auto it = class_index_.find(s); it != class_index_.end()) v = it->second;
      else if (!absl::SimpleAtoi(s, &v)) v = -1;
    }
    if (v < 0 || v >= num_classes_) {
      p.bad_label = true;
      p.bad_label_text = label_json.is_string() ? label_json.get<std::string>() : text;
    } else {
      p.label = v;
    }
  }
  if (rc != ARCHIVE_EOF && rc != ARCHIVE_OK && !cancel) {
    LOG(WARNING) << "shard " << http::RedactUrl(shard) << " ends early: " << archive_error_string(a);
    ++(*skipped)["shard_failed"];
  }
  return cancel ? false : Flush(p, emit, skipped);
}

void WdsSource::ReadShards(const std::vector<std::string>& shards, const std::function<bool(FetchResult)>& emit,
                           std::map<std::string, int64_t>* skipped, const std::atomic<bool>& cancel) const {
  for (const auto& shard : shards) {
    if (cancel || !ReadOne(shard, emit, skipped, cancel, /*headers_only=*/false)) return;
  }
}

absl::StatusOr<int64_t> WdsSource::CountSamples(const std::string& shard, const std::atomic<bool>& cancel) const {
  int64_t n = 0;
  std::map<std::string, int64_t> skipped;
  ReadOne(shard, [&](FetchResult) { ++n; return true; }, &skipped, cancel, /*headers_only=*/true);
  if (cancel) return absl::CancelledError("counting WebDataset samples: cancelled");
  if (skipped.count("shard_failed") > 0) {
    return absl::DataLossError(absl::StrCat("cannot count the samples of WebDataset shard ", http::RedactUrl(shard),
                                            ": it could not be read to its end (see the warning above)"));
  }
  return n;
}

std::string ShardFileName(const std::string& shard) {
  std::string s = shard;
  if (IsHttpUrl(s)) s = s.substr(0, s.find_first_of("?#"));
  const size_t slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

}  // namespace cf::data
