#include "convforever/data/caching_source.h"

#include "absl/strings/str_format.h"
#include "glog/logging.h"

namespace cf::data {

CachingSource::CachingSource(std::unique_ptr<Source> inner, int64_t cap_bytes)
    : inner_(std::move(inner)), cap_bytes_(cap_bytes) {}

std::vector<FetchResult> CachingSource::Fetch(absl::Span<const int64_t> indices) {
  std::vector<FetchResult> out(indices.size());
  std::vector<int64_t> missing;
  std::vector<size_t> slots;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t k = 0; k < indices.size(); ++k) {
      auto it = cache_.find(indices[k]);
      if (it != cache_.end()) {
        out[k] = {it->second, ""};
      } else {
        missing.push_back(indices[k]);
        slots.push_back(k);
      }
    }
  }
  if (missing.empty()) return out;
  std::vector<FetchResult> got = inner_->Fetch(missing);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t j = 0; j < got.size(); ++j) {
    if (got[j].record.ok() && !got[j].record->encoded.empty() && !full_ && cache_.count(missing[j]) == 0) {
      const int64_t bytes = static_cast<int64_t>(got[j].record->encoded.size());
      if (bytes_ + bytes <= cap_bytes_) {
        cache_.emplace(missing[j], *got[j].record);
        bytes_ += bytes;
      } else {
        full_ = true;
        LOG(INFO) << absl::StrFormat(
            "sample cache: full at %d samples (%.1f MiB of its %.1f MiB cap); the other samples are "
            "fetched again at every pass",
            cache_.size(), bytes_ / 1048576.0, cap_bytes_ / 1048576.0);
      }
    }
    out[slots[j]] = std::move(got[j]);
  }
  return out;
}

int64_t CachingSource::cached_samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(cache_.size());
}

int64_t CachingSource::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

bool CachingSource::full() const {
  std::lock_guard<std::mutex> lock(mu_);
  return full_;
}

}  // namespace cf::data
