// Where closed output shards go after they are durable on local disk.
//
// The classifier closes a shard (`shard_<start>_<end>.jsonl`, record positions [start, end) of
// the output, zero-padded to 9 digits so names sort) every --sync_every records and hands its
// path to a ShardSink. LocalShardSink keeps it local (the default); HubShardSink
// (hub_shard_sink.h, --hub_repo) commits it to a Hugging Face dataset repo. Publish is
// called from the classifier's main thread, in shard order, and must not wait on the network
// (HubShardSink queues the shard for its uploader thread); an error is logged and the run goes
// on (the shard stays on disk). A resumed run publishes only shards it creates, so a sink that
// must not miss one (the Hub uploader) compares the shard directory with what it has uploaded.
#ifndef CONVFOREVER_CAPTION_SHARD_SINK_H_
#define CONVFOREVER_CAPTION_SHARD_SINK_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace cf::caption {

class ShardSink {
 public:
  virtual ~ShardSink() = default;
  // `path` is a complete, fsync'ed shard file holding output records [start, end).
  virtual absl::Status Publish(const std::string& path, int64_t start, int64_t end) = 0;
  // Called once at the end of a run (flush async uploads, wait for them).
  virtual absl::Status Close() { return absl::OkStatus(); }
};

class LocalShardSink : public ShardSink {
 public:
  absl::Status Publish(const std::string& path, int64_t start, int64_t end) override {
    ++published_;
    return absl::OkStatus();
  }
  int64_t published() const { return published_; }

 private:
  int64_t published_ = 0;
};

}  // namespace cf::caption

#endif  // CONVFOREVER_CAPTION_SHARD_SINK_H_
