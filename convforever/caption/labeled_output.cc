#include "convforever/caption/labeled_output.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "glog/logging.h"

namespace cf::caption {

using nlohmann::json;

std::string LabeledOutput::ShardName(int64_t start, int64_t end) {
  return absl::StrFormat("shard_%09d_%09d.jsonl", start, end);
}

namespace {

// End of the contiguous run of shards starting at 0 in `dir` (0 if none).
absl::StatusOr<int64_t> ExistingShardsEnd(const std::string& dir) {
  std::map<int64_t, int64_t> ranges;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    absl::string_view name(e->d_name);
    if (!absl::ConsumePrefix(&name, "shard_") || !absl::ConsumeSuffix(&name, ".jsonl")) continue;
    const size_t us = name.find('_');
    int64_t a = 0, b = 0;
    if (us == absl::string_view::npos || !absl::SimpleAtoi(name.substr(0, us), &a) ||
        !absl::SimpleAtoi(name.substr(us + 1), &b) || b <= a) {
      continue;
    }
    ranges[a] = std::max(ranges[a], b);
  }
  closedir(d);
  int64_t end = 0;
  for (const auto& [a, b] : ranges) {
    if (a != end) {
      LOG(WARNING) << dir << ": shard starting at " << a << " does not continue at " << end << "; ignored";
      break;
    }
    end = b;
  }
  return end;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LabeledOutput>> LabeledOutput::Open(const OutputOptions& options,
                                                                   ShardSink* sink) {
  if (options.path.empty()) return absl::InvalidArgumentError("no output path");
  std::unique_ptr<LabeledOutput> out(new LabeledOutput());
  out->options_ = options;
  out->options_.sync_every = std::max<int64_t>(1, options.sync_every);
  out->sink_ = sink;
  if (!options.shard_dir.empty()) {
    if (::mkdir(options.shard_dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("cannot create shard dir ", options.shard_dir, ": ", strerror(errno)));
    }
    base::RemoveStaleTempFiles(options.shard_dir);
    ASSIGN_OR_RETURN(out->shard_start_, ExistingShardsEnd(options.shard_dir));
  }
  RETURN_IF_ERROR(out->Scan());
  out->fd_ = ::open(options.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out->fd_ < 0) {
    return absl::InternalError(absl::StrCat("cannot open output ", options.path, ": ", strerror(errno)));
  }
  return out;
}

LabeledOutput::~LabeledOutput() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status LabeledOutput::Scan() {
  std::ifstream in(options_.path, std::ios::binary);
  if (!in) return absl::OkStatus();  // a new output
  const bool sharding = !options_.shard_dir.empty();
  const int64_t covered = shard_start_;
  std::string line;
  int64_t good_bytes = 0;
  while (std::getline(in, line)) {
    if (in.eof()) {  // no newline after it: torn by a kill mid-write
      torn_bytes_ = static_cast<int64_t>(line.size());
      break;
    }
    json doc = json::parse(line, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains(options_.id_field)) {
      return absl::DataLossError(absl::StrCat(options_.path, ":", records_ + 1,
                                              ": not an output record (JSON object with '",
                                              options_.id_field, "'); refusing to append to it"));
    }
    ids_.insert(doc[options_.id_field].dump());
    good_bytes += static_cast<int64_t>(line.size()) + 1;
    ++records_;
    if (sharding && records_ > covered) {
      shard_lines_.push_back(line);
      if (static_cast<int64_t>(shard_lines_.size()) >= options_.sync_every) RETURN_IF_ERROR(CloseShard());
    }
  }
  if (sharding && covered > records_) {
    return absl::FailedPreconditionError(absl::StrCat(options_.shard_dir, " has shards up to record ", covered,
                                                      " but ", options_.path, " has only ", records_));
  }
  in.close();
  if (torn_bytes_ > 0) {
    LOG(WARNING) << options_.path << ": dropping a torn last line (" << torn_bytes_ << " bytes)";
    if (::truncate(options_.path.c_str(), good_bytes) != 0) {
      return absl::InternalError(absl::StrCat("cannot truncate ", options_.path, ": ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

absl::Status LabeledOutput::Append(const nlohmann::ordered_json& record) {
  if (!record.contains(options_.id_field)) {
    return absl::InvalidArgumentError(absl::StrCat("output record without '", options_.id_field, "'"));
  }
  std::string line = record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  line.push_back('\n');
  // One write(2) per line: a kill leaves either the whole line or a torn tail Open() drops.
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("write ", options_.path, ": ", strerror(errno)));
    done += static_cast<size_t>(n);
  }
  ids_.insert(record[options_.id_field].dump());
  ++records_;
  if (!options_.shard_dir.empty()) {
    line.pop_back();
    shard_lines_.push_back(std::move(line));
    if (static_cast<int64_t>(shard_lines_.size()) >= options_.sync_every) RETURN_IF_ERROR(CloseShard());
  }
  return absl::OkStatus();
}

absl::Status LabeledOutput::CloseShard() {
  if (shard_lines_.empty()) return absl::OkStatus();
  if (fd_ >= 0) ::fsync(fd_);  // the shard never claims records the output could still lose
  const int64_t end = shard_start_ + static_cast<int64_t>(shard_lines_.size());
  const std::string path = absl::StrCat(options_.shard_dir, "/", ShardName(shard_start_, end));
  RETURN_IF_ERROR(base::WriteFileAtomically(path, absl::StrCat(absl::StrJoin(shard_lines_, "\n"), "\n")));
  ++shards_written_;
  if (sink_ != nullptr) {
    if (absl::Status s = sink_->Publish(path, shard_start_, end); !s.ok()) {
      LOG(WARNING) << "publishing " << path << " failed (kept on disk): " << s;
    }
  }
  shard_start_ = end;
  shard_lines_.clear();
  return absl::OkStatus();
}

absl::Status LabeledOutput::Finish() {
  if (!options_.shard_dir.empty()) RETURN_IF_ERROR(CloseShard());
  if (fd_ >= 0 && ::fsync(fd_) != 0) {
    return absl::InternalError(absl::StrCat("fsync ", options_.path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace cf::caption
