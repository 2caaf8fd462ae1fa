// WebDataset tar shards (https://github.com/webdataset/webdataset conventions), read as a stream.
//
// A dataset is a list of tar shards given by a brace pattern (`shard-{000000..000127}.tar`,
// `{a,b}.tar`; numeric ranges keep their zero padding), a directory (all *.tar in it, sorted), or
// one file or http(s) URL (Hugging Face `resolve` URLs included). Members are grouped into samples
// by key: the member path up to the first '.' of its file name; the rest is the extension. The
// image comes from .jpg/.jpeg/.png/.webp, the label from .cls (integer text), .txt (class name or
// integer) or .json ({"label": name-or-int} or {"cls": int}). Members with an absolute path, a
// `..` component, or a size beyond `max_member_bytes` are rejected and counted
// ("unsafe_member"), as are samples without an image or a valid label ("incomplete_sample",
// "bad_label"); a shard that cannot be opened or read midway is counted ("shard_failed") and the
// stream goes on with the next. Local shards are streamed from disk by libarchive; remote shards
// are streamed as they download (wds_http_stream.h: a bounded buffer, constant memory, resumed
// with Range requests when the connection drops).
//
// Samples are keyed "<shard file name>:<key>" (the shard's name without its directory or URL
// prefix and query, so a local and an HTTP copy of a shard give the same keys); the spec's
// holdout part (holdout.h) is applied to that key, so a stream yields only its part.
// Thread-safe: ReadShards and CountSamples may run on several threads at once.
#ifndef CONVFOREVER_DATA_WDS_H_
#define CONVFOREVER_DATA_WDS_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convforever/data/shard_pattern.h"  // ExpandBraces
#include "convforever/data/source.h"

struct archive;  // libarchive's opaque reader

namespace cf::data {

class WdsSource {
 public:
  static absl::StatusOr<std::unique_ptr<WdsSource>> Open(const DatasetSpec& spec);

  const std::vector<std::string>& shards() const { return shards_; }
  const DatasetSpec& spec() const { return spec_; }
  int num_classes() const { return num_classes_; }

  // Streams the samples of `shards` in order to `emit` (records carry encoded image bytes), until
  // `emit` returns false or `cancel` becomes true. Skips are added to *skipped by reason.
  void ReadShards(const std::vector<std::string>& shards, const std::function<bool(FetchResult)>& emit,
                  std::map<std::string, int64_t>* skipped, const std::atomic<bool>& cancel) const;

  // The number of samples ReadShards delivers from `shard` (holdout part applied), counted without
  // reading images: tar headers, and the small label members (.cls/.txt/.json) so that samples
  // with a bad label are left out as the stream leaves them out. Image data is skipped (by
  // seeking, for local shards); remote shards are streamed once. A sample whose image later
  // fails to decode counts (the stream delivers it; the Loader drops it at decode). Error names
  // the shard when it cannot be opened or ends early.
  absl::StatusOr<int64_t> CountSamples(const std::string& shard, const std::atomic<bool>& cancel) const;

  // Called with the sample's key ("<shard file name>:<key>") and its label as written (a class
  // name, a number, or the .json member) for every sample left out as "bad_label": a name not in
  // the class list, a number outside [0, num_classes). For checks that name the first offender
  // (the trainer's preflight). Set before reading; called on the reading thread.
  void set_bad_label_observer(std::function<void(const std::string& key, const std::string& label)> f) {
    bad_label_observer_ = std::move(f);
  }

  // The most bytes a remote shard's download buffer has held so far (all shards, all threads),
  // and its capacity (DatasetSpec::wds_stream_buffer_bytes).
  int64_t stream_high_water() const { return stream_high_water_.load(); }
  int64_t stream_buffer_bytes() const { return spec_.wds_stream_buffer_bytes; }

  // What ReadShards does with one shard once its bytes are in memory (a remote shard after its
  // download): groups the tar members of `bytes` into samples, emitted as above with keys
  // "<shard>:<key>". Returns false when `emit` or `cancel` stopped it.
  bool ReadShardBytes(absl::string_view bytes, const std::string& shard,
                      const std::function<bool(FetchResult)>& emit, std::map<std::string, int64_t>* skipped,
                      const std::atomic<bool>& cancel) const;

 private:
  WdsSource() = default;
  struct Pending;
  bool ReadOne(const std::string& shard, const std::function<bool(FetchResult)>& emit,
               std::map<std::string, int64_t>* skipped, const std::atomic<bool>& cancel,
               bool headers_only) const;
  // The members of the opened archive `a`, grouped into samples. With `headers_only`, image data
  // is not read: samples are emitted with a placeholder image.
  bool ReadMembers(archive* a, const std::string& shard, const std::function<bool(FetchResult)>& emit,
                   std::map<std::string, int64_t>* skipped, const std::atomic<bool>& cancel,
                   bool headers_only) const;
  bool Flush(Pending& p, const std::function<bool(FetchResult)>& emit, std::map<std::string, int64_t>* skipped) const;

  DatasetSpec spec_;
  std::vector<std::string> shards_;
  std::vector<std::string> classes_;
  std::map<std::string, int64_t> class_index_;
  int num_classes_ = 0;
  mutable std::atomic<int64_t> stream_high_water_{0};
  std::function<void(const std::string&, const std::string&)> bad_label_observer_;
};

// The file name of a shard path or URL: what follows the last '/', without a URL's query or
// fragment ("https://h/d/resolve/main/s-01.tar?download=true" -> "s-01.tar").
std::string ShardFileName(const std::string& shard);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_WDS_H_
