#include "convforever/base/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"

namespace cf::base {
namespace {

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

std::string MakeTempPath(const std::string& path) {
  static std::atomic<int> counter{0};
  return absl::StrCat(DirName(path), "/.", BaseName(path), ".tmp.", ::getpid(), ".",
                      counter.fetch_add(1));
}

}  // namespace

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("cannot fsync directory", dir);
  return absl::OkStatus();
}

AtomicFileWriter::~AtomicFileWriter() { Abort(); }

absl::Status AtomicFileWriter::Open(const std::string& path) {
  Abort();
  path_ = path;
  temp_path_ = MakeTempPath(path);
  file_ = std::fopen(temp_path_.c_str(), "wbe");
  if (file_ == nullptr) return ErrnoError("cannot create", temp_path_);
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Append(absl::string_view data) {
  if (file_ == nullptr) return absl::FailedPreconditionError("AtomicFileWriter is not open");
  if (!data.empty() && std::fwrite(data.data(), 1, data.size(), file_) != data.size()) {
    return ErrnoError("cannot write", temp_path_);
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Commit() {
  if (file_ == nullptr) return absl::FailedPreconditionError("AtomicFileWriter is not open");
  std::FILE* f = std::exchange(file_, nullptr);
  bool ok = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    absl::Status status = ErrnoError("cannot flush", temp_path_);
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
    return status;
  }
  if (before_rename_for_test) before_rename_for_test();
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    absl::Status status = ErrnoError(absl::StrCat("cannot rename ", temp_path_, " to"), path_);
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
    return status;
  }
  temp_path_.clear();
  return SyncDirectory(DirName(path_));
}

void AtomicFileWriter::Abort() {
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
  }
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  AtomicFileWriter writer;
  RETURN_IF_ERROR(writer.Open(path));
  RETURN_IF_ERROR(writer.Append(contents));
  return writer.Commit();
}

int RemoveStaleTempFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  int removed = 0;
  while (const dirent* entry = ::readdir(d)) {
    const absl::string_view name = entry->d_name;
    if (absl::StartsWith(name, ".") && absl::StrContains(name, ".tmp.")) {
      if (::unlink(absl::StrCat(dir, "/", name).c_str()) == 0) ++removed;
    }
  }
  ::closedir(d);
  return removed;
}

}  // namespace cf::base
