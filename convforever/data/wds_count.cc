#include "convforever/data/wds_count.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/base/atomic_file.h"
#include "convforever/data/holdout.h"
#include "convforever/data/http_fetch.h"
#include "convforever/http/headers.h"

namespace cf::data {
namespace {

namespace fs = std::filesystem;

// FNV-1a over `text` from `basis`: a hash stable across runs and machines (std::hash is not).
uint64_t Fnv1a(const std::string& text, uint64_t basis) {
  uint64_t h = basis;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// What the count depends on, as text (hashed into the cache file's name; never written out).
absl::StatusOr<std::string> CacheKeyText(const WdsSource& source, const DatasetSpec& spec) {
  std::string key = absl::StrFormat("wds-count v1\npart=%s fraction=%.17g max_member=%d\n",
                                    HoldoutPartName(spec.holdout_part), spec.holdout_fraction,
                                    spec.wds_max_member_bytes);
  for (const std::string& shard : source.shards()) {
    absl::StrAppend(&key, shard);
    if (!IsHttpUrl(shard)) {
      std::error_code ec;
      const auto size = fs::file_size(shard, ec);
      const auto mtime = fs::last_write_time(shard, ec);
      if (ec) return absl::NotFoundError(absl::StrCat("WebDataset shard ", shard, ": ", ec.message()));
      absl::StrAppend(&key, "\t", size, "\t", mtime.time_since_epoch().count());
    }
    absl::StrAppend(&key, "\n");
  }
  return key;
}

struct Count {
  int64_t samples = 0;
  int64_t failed_shards = 0;
  absl::Status first_failure;
};

// Counts every shard, several at once. A shard that cannot be read counts 0 and is reported
// (the stream skips it too); only a stop request abandons the count.
absl::StatusOr<Count> CountAll(const WdsSource& source, const std::function<bool()>& should_stop) {
  const std::vector<std::string>& shards = source.shards();
  std::atomic<bool> cancel{false};
  std::atomic<size_t> next{0};
  std::mutex mu;
  Count count;
  auto work = [&] {
    for (size_t i; (i = next++) < shards.size() && !cancel;) {
      absl::StatusOr<int64_t> n = source.CountSamples(shards[i], cancel);
      std::lock_guard<std::mutex> lock(mu);
      if (n.ok()) {
        count.samples += *n;
      } else if (!cancel) {
        ++count.failed_shards;
        if (count.first_failure.ok()) count.first_failure = n.status();
      }
    }
  };
  const int threads = static_cast<int>(std::min<size_t>(shards.size(), 8));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  // The counting threads poll `cancel`; this one turns a stop request into it.
  std::atomic<bool> finished{false};
  std::thread watcher([&] {
    while (!finished) {
      if (should_stop && should_stop()) cancel = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  for (auto& t : pool) t.join();
  finished = true;
  watcher.join();
  if (cancel) return absl::CancelledError("counting WebDataset samples: stop requested");
  if (count.failed_shards == static_cast<int64_t>(shards.size())) {
    return absl::Status(count.first_failure.code(),
                        absl::StrCat("no WebDataset shard could be read to count its samples; the first: ",
                                     count.first_failure.message()));
  }
  return count;
}

}  // namespace

std::string WdsCountCacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string base = (xdg != nullptr && xdg[0] != '\0') ? xdg
                           : (home != nullptr && home[0] != '\0') ? std::string(home) + "/.cache"
                                                                  : std::string("/tmp");
  return base + "/convforever/wds_counts";
}

absl::StatusOr<WdsTrainSamples> ResolveWdsTrainSamples(const WdsSource& source,
                                                       const std::function<bool()>& should_stop,
                                                       const std::string& what) {
  const DatasetSpec& spec = source.spec();
  WdsTrainSamples out;
  if (spec.wds_train_samples > 0) {
    out.samples = spec.wds_train_samples;
    out.how = "given";
    LOG(INFO) << "wds: " << out.samples << " " << what << " samples (given)";
    return out;
  }
  absl::StatusOr<std::string> key = CacheKeyText(source, spec);
  if (!key.ok()) return key.status();
  const std::string name = absl::StrFormat("%016x%016x.json", Fnv1a(*key, 0xcbf29ce484222325ull),
                                           Fnv1a(*key, 0x84222325cbf29ce4ull));
  out.cache_file = WdsCountCacheDir() + "/" + name;
  std::error_code ec;
  if (fs::is_regular_file(out.cache_file, ec)) {
    std::ifstream in(out.cache_file);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("shards", -1) == static_cast<int64_t>(source.shards().size()) &&
        j.contains("samples") && j["samples"].is_number_integer() && j["samples"].get<int64_t>() >= 0) {
      out.samples = j["samples"].get<int64_t>();
      out.how = "from cache";
      LOG(INFO) << "wds: " << out.samples << " " << what << " samples (from cache " << out.cache_file << ")";
      return out;
    }
    LOG(WARNING) << "wds: ignoring unreadable sample count cache " << out.cache_file << "; counting again";
  }
  const auto start = std::chrono::steady_clock::now();
  LOG(INFO) << "wds: counting the samples of " << source.shards().size() << " shard(s) (once; cached after)";
  absl::StatusOr<Count> n = CountAll(source, should_stop);
  if (!n.ok()) return n.status();
  out.samples = n->samples;
  out.how = "counted";
  if (n->failed_shards > 0) {
    // The stream skips those shards too, but they may be back next time: count again then.
    LOG(WARNING) << "wds: " << n->failed_shards << " shard(s) could not be read and count 0 samples (the first: "
                 << n->first_failure.message() << "); the count is not cached";
    out.how = absl::StrCat("counted, ", n->failed_shards, " shard(s) unreadable");
    out.cache_file.clear();
    LOG(INFO) << "wds: " << out.samples << " " << what << " samples (" << out.how << ")";
    return out;
  }
  const nlohmann::json record = {{"samples", out.samples},
                                 {"shards", source.shards().size()},
                                 {"first_shard", http::RedactUrl(source.shards().front())},
                                 {"holdout_part", HoldoutPartName(spec.holdout_part)},
                                 {"holdout_fraction", spec.holdout_fraction}};
  fs::create_directories(WdsCountCacheDir(), ec);
  absl::Status written = base::WriteFileAtomically(out.cache_file, record.dump() + "\n");
  if (!written.ok()) LOG(WARNING) << "wds: sample count not cached: " << written;
  LOG(INFO) << "wds: " << out.samples << " " << what << " samples (counted in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s"
            << (written.ok() ? ", cached in " + out.cache_file : "") << ")";
  return out;
}

}  // namespace cf::data
