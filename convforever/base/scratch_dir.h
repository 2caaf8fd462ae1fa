// A temporary directory for the lifetime of one object: created under the system's temp dir
// (`<prefix>-XXXXXX`, mkdtemp) and removed with everything in it when the object goes. For runs
// that must write somewhere but keep nothing (the trainer's estimate and preflight probes). An
// empty path() means it could not be created. Not copyable.
#ifndef CONVFOREVER_BASE_SCRATCH_DIR_H_
#define CONVFOREVER_BASE_SCRATCH_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace cf::base {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix) {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace cf::base

#endif  // CONVFOREVER_BASE_SCRATCH_DIR_H_
