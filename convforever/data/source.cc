#include "convforever/data/source.h"

#include <zlib.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "convforever/data/sources_internal.h"

namespace cf::data {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("read error in ", path));
  return ss.str();
}

absl::StatusOr<std::string> ReadMaybeGzipFile(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  gzbuffer(f, 1 << 20);
  std::string out;
  char buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, n);
  int err = Z_OK;
  const char* msg = gzerror(f, &err);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
    std::string m = msg ? msg : "unknown";
    gzclose(f);
    return absl::DataLossError(absl::StrCat("corrupt or truncated gzip file ", path, " after ",
                                            out.size(), " decompressed bytes (zlib: ", m, ")"));
  }
  gzclose(f);
  return out;
}

absl::StatusOr<std::vector<std::string>> ReadClassList(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return absl::NotFoundError(absl::StrCat("class list: ", text.status().message()));
  return ParseClassList(*text, path);
}

absl::StatusOr<std::vector<std::string>> ParseClassList(absl::string_view text, const std::string& source) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  int lineno = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++lineno;
    std::string name(absl::StripAsciiWhitespace(line));
    if (name.empty() || name[0] == '#') continue;
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", lineno, ": duplicate class '", name, "'"));
    }
    names.push_back(name);
  }
  if (names.empty()) return absl::InvalidArgumentError(absl::StrCat("class list ", source, " is empty"));
  return names;
}

absl::StatusOr<std::unique_ptr<Source>> OpenSource(const DatasetSpec& spec) {
  if (spec.kind == "idx" || spec.kind == "fashion_mnist") return OpenIdxSource(spec);
  if (spec.kind == "cifar10" || spec.kind == "cifar100") return OpenCifarSource(spec);
  if (spec.kind == "synthetic") return OpenSyntheticSource(spec);
  if (spec.kind == "folder") return OpenFolderSource(spec);
  if (spec.kind == "imagenet") return OpenImageNetSource(spec);
  if (spec.kind == "jsonl") return OpenJsonlSource(spec);
  if (spec.kind == "parquet") return OpenParquetSource(spec);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown dataset kind '", spec.kind,
      "' (expected idx, fashion_mnist, cifar10, cifar100, folder, imagenet, jsonl, parquet or synthetic)"));
}

}  // namespace cf::data
