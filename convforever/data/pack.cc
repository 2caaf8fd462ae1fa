#include "convforever/data/pack.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/decode.h"
#include "convforever/data/parquet_writer.h"

namespace cf::data {
namespace {

namespace fs = std::filesystem;

// 2000-01-01T00:00:00Z: a fixed member time, so packing the same data twice gives the same bytes.
constexpr int64_t kTarMtime = 946684800;

// One output shard being filled.
class ShardWriter {
 public:
  virtual ~ShardWriter() = default;
  virtual absl::Status Add(const std::string& name, const std::string& ext, const std::string& image, int64_t label) = 0;
  // Completes the file (renamed into place); returns its size in bytes.
  virtual absl::StatusOr<int64_t> Close() = 0;
};

class TarShardWriter : public ShardWriter {
 public:
  absl::Status Open(const std::string& path) { return file_.Open(path); }
  absl::Status Add(const std::string& name, const std::string& ext, const std::string& image, int64_t label) override {
    // "<name>.cls" sorts before "<name>.jpg/.png/.webp": members go out in name order.
    RETURN_IF_ERROR(Member(name + ".cls", absl::StrCat(label)));
    return Member(name + "." + ext, image);
  }
  absl::StatusOr<int64_t> Close() override {
    RETURN_IF_ERROR(file_.Append(std::string(1024, '\0')));  // the end-of-archive marker
    size_ += 1024;
    RETURN_IF_ERROR(file_.Commit());
    return size_;
  }

 private:
  absl::Status Member(const std::string& name, const std::string& data) {
    RETURN_IF_ERROR(file_.Append(UstarHeader(name, static_cast<int64_t>(data.size()))));
    RETURN_IF_ERROR(file_.Append(data));
    const size_t pad = (512 - data.size() % 512) % 512;
    RETURN_IF_ERROR(file_.Append(std::string(pad, '\0')));
    size_ += 512 + static_cast<int64_t>(data.size() + pad);
    return absl::OkStatus();
  }
  base::AtomicFileWriter file_;
  int64_t size_ = 0;
};

class ParquetShardWriter : public ShardWriter {
 public:
  absl::Status Open(const std::string& path, const std::vector<std::string>& classes, int64_t row_group_rows) {
    ASSIGN_OR_RETURN(writer_, ParquetImageWriter::Open(path, classes, row_group_rows));
    return absl::OkStatus();
  }
  absl::Status Add(const std::string& name, const std::string& ext, const std::string& image, int64_t label) override {
    return writer_->Add(image, name + "." + ext, label);
  }
  absl::StatusOr<int64_t> Close() override {
    RETURN_IF_ERROR(writer_->Close());
    return writer_->bytes_written();
  }

 private:
  std::unique_ptr<ParquetImageWriter> writer_;
};

// The source indices to pack (see the file comment).
absl::StatusOr<std::vector<int64_t>> SelectIndices(const Source& source, const PackOptions& o) {
  std::vector<int64_t> picked;
  for (int64_t i = 0; i < source.size(); ++i) {
    if (o.holdout_part != HoldoutPart::kAll) {
      const std::string key = source.SampleKey(i);
      if (key.empty()) {
        return absl::InvalidArgumentError(
            "this data kind has no sample keys, so it has no held-out split: pack it whole (no --eval_fraction)");
      }
      if (!InHoldoutPart(key, o.holdout_fraction, o.holdout_part)) continue;
    }
    picked.push_back(i);
  }
  const int64_t n = static_cast<int64_t>(picked.size());
  if (o.subset > 0 && o.subset < n) {
    std::vector<int64_t> strided;
    for (int64_t k = 0; k < o.subset; ++k) strided.push_back(picked[k * n / o.subset]);
    picked = std::move(strided);
  }
  return picked;
}

const char* Extension(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg: return "jpg";
    case ImageFormat::kPng: return "png";
    case ImageFormat::kWebp: return "webp";
    default: return nullptr;
  }
}

}  // namespace

std::string UstarHeader(const std::string& name, int64_t size) {
  std::string h(512, '\0');
  auto put = [&](size_t at, size_t width, const std::string& v) { std::memcpy(&h[at], v.data(), std::min(width, v.size())); };
  // Numeric fields: zero-padded octal, NUL-terminated, filling the field.
  auto octal = [&](size_t at, size_t width, int64_t v) { put(at, width, absl::StrFormat("%0*o", static_cast<int>(width - 1), v)); };
  put(0, 100, name);
  octal(100, 8, 0644);  // mode
  octal(108, 8, 0);     // uid
  octal(116, 8, 0);     // gid
  octal(124, 12, size);
  octal(136, 12, kTarMtime);
  h[156] = '0';  // regular file
  put(257, 6, std::string("ustar\0", 6));
  put(263, 2, "00");
  put(265, 32, "root");
  put(297, 32, "root");
  std::memset(&h[148], ' ', 8);  // the checksum counts its own field as spaces
  int64_t sum = 0;
  for (unsigned char c : h) sum += c;
  put(148, 8, absl::StrFormat("%06o", sum) + std::string("\0 ", 2));
  return h;
}

absl::StatusOr<PackSummary> Pack(Source& source, const PackOptions& o) {
  if (o.format != "wds" && o.format != "parquet") {
    return absl::InvalidArgumentError(absl::StrCat("unknown pack format '", o.format, "' (expected wds or parquet)"));
  }
  if (o.shard_size <= 0) return absl::InvalidArgumentError("shard size must be positive");
  if (o.out_dir.empty()) return absl::InvalidArgumentError("pack needs an output directory");
  const std::string prefix = o.prefix.empty() ? o.split : o.prefix;
  const std::string shard_dir = o.format == "parquet" ? (fs::path(o.out_dir) / o.split).string() : o.out_dir;
  std::error_code ec;
  fs::create_directories(shard_dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create output directory ", shard_dir, ": ", ec.message()));

  std::vector<std::string> classes = source.class_names();
  if (classes.empty()) {
    for (int k = 0; k < source.num_classes(); ++k) classes.push_back(absl::StrCat(k));
  }
  ASSIGN_OR_RETURN(const std::vector<int64_t> indices, SelectIndices(source, o));
  if (indices.empty()) return absl::NotFoundError("no samples to pack (after the held-out split and subset)");

  PackSummary summary;
  std::unique_ptr<ShardWriter> shard;
  int64_t in_shard = 0;
  auto close_shard = [&]() -> absl::Status {
    if (shard == nullptr) return absl::OkStatus();
    ASSIGN_OR_RETURN(const int64_t bytes, shard->Close());
    summary.bytes += bytes;
    shard.reset();
    return absl::OkStatus();
  };
  auto open_shard = [&]() -> absl::Status {
    const int64_t n = summary.shards++;
    if (o.format == "wds") {
      const std::string path = (fs::path(shard_dir) / absl::StrFormat("%s-%06d.tar", prefix, n)).string();
      auto w = std::make_unique<TarShardWriter>();
      RETURN_IF_ERROR(w->Open(path));
      summary.files.push_back(path);
      shard = std::move(w);
    } else {
      const std::string path = (fs::path(shard_dir) / absl::StrFormat("%04d.parquet", n)).string();
      auto w = std::make_unique<ParquetShardWriter>();
      RETURN_IF_ERROR(w->Open(path, classes, o.parquet_row_group_rows));
      summary.files.push_back(path);
      shard = std::move(w);
    }
    in_shard = 0;
    return absl::OkStatus();
  };

  const int64_t batch = std::max<int64_t>(1, o.fetch_batch);
  const int name_width = std::max<int>(9, static_cast<int>(absl::StrCat(indices.size()).size()));
  for (size_t start = 0; start < indices.size(); start += batch) {
    const size_t end = std::min(indices.size(), start + static_cast<size_t>(batch));
    std::vector<FetchResult> got = source.Fetch(absl::MakeConstSpan(indices).subspan(start, end - start));
    for (FetchResult& r : got) {
      if (!r.record.ok()) {
        ++summary.skipped[r.skip_reason.empty() ? "fetch_failed" : r.skip_reason];
        continue;
      }
      Record& rec = *r.record;
      if (rec.label < 0) { ++summary.skipped["no_hard_label"]; continue; }
      std::string bytes;
      if (!rec.encoded.empty()) {
        bytes = std::move(rec.encoded);
      } else {
        ASSIGN_OR_RETURN(bytes, EncodePng(rec.image));
      }
      const char* ext = Extension(SniffFormat(bytes));
      if (ext == nullptr) { ++summary.skipped["unknown_image_format"]; continue; }
      if (shard == nullptr) RETURN_IF_ERROR(open_shard());
      const std::string name = absl::StrFormat("%0*d", name_width, summary.samples);
      RETURN_IF_ERROR(shard->Add(name, ext, bytes, rec.label));
      ++summary.samples;
      if (++in_shard == o.shard_size) RETURN_IF_ERROR(close_shard());
    }
  }
  RETURN_IF_ERROR(close_shard());
  if (o.format == "wds") {
    RETURN_IF_ERROR(base::WriteFileAtomically((fs::path(o.out_dir) / "classes.txt").string(),
                                              absl::StrJoin(classes, "\n") + "\n"));
  }
  return summary;
}

}  // namespace cf::data
