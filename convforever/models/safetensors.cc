#include "convforever/models/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"

namespace cf::models {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the reference implementation's limit

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  int64_t size;
};

const std::vector<DtypeInfo>& Dtypes() {
  static const auto* d = new std::vector<DtypeInfo>{
      {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},
      {"BF16", at::kBFloat16, 2}, {"I64", at::kLong, 8}, {"I32", at::kInt, 4},
      {"I16", at::kShort, 2}, {"I8", at::kChar, 1}, {"U8", at::kByte, 1}, {"BOOL", at::kBool, 1}};
  return *d;
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

absl::Status Bad(const std::string& source, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("safetensors ", source, ": ", what));
}

absl::StatusOr<Entry> ParseEntry(const std::string& source, const std::string& name,
                                 const nlohmann::json& v) {
  const std::string where = absl::StrCat("tensor '", name, "': ");
  if (!v.is_object()) return Bad(source, where + "entry is not an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets") {
      return Bad(source, where + "unexpected field '" + it.key() + "'");
    }
  }
  Entry e;
  e.name = name;
  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) return Bad(source, where + "missing string 'dtype'");
  e.dtype = nullptr;
  for (const DtypeInfo& d : Dtypes()) {
    if (dt->get_ref<const std::string&>() == d.name) e.dtype = &d;
  }
  if (!e.dtype) return Bad(source, where + "unsupported dtype '" + dt->get<std::string>() + "'");
  auto shape = v.find("shape");
  if (shape == v.end() || !shape->is_array()) return Bad(source, where + "missing array 'shape'");
  uint64_t numel = 1;
  for (const auto& s : *shape) {
    if (!s.is_number_unsigned()) return Bad(source, where + "shape entries must be non-negative integers");
    const uint64_t d = s.get<uint64_t>();
    if (d > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, d, &numel)) {
      return Bad(source, where + "shape overflows");
    }
    e.shape.push_back(static_cast<int64_t>(d));
  }
  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned()) {
    return Bad(source, where + "'data_offsets' must be [begin, end] non-negative integers");
  }
  e.begin = (*off)[0].get<uint64_t>();
  e.end = (*off)[1].get<uint64_t>();
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, uint64_t(e.dtype->size), &bytes)) return Bad(source, where + "size overflows");
  if (e.end < e.begin || e.end - e.begin != bytes) {
    return Bad(source, absl::StrCat(where, "data_offsets [", e.begin, ", ", e.end, "] hold ",
                                    e.end >= e.begin ? e.end - e.begin : 0, " bytes but dtype ",
                                    e.dtype->name, " and the shape need ", bytes));
  }
  return e;
}

// Parses the JSON header and checks every entry against a data buffer of `buffer_size` bytes.
absl::StatusOr<std::vector<Entry>> ParseHeader(const std::string& source, absl::string_view header,
                                               uint64_t buffer_size,
                                               std::map<std::string, std::string>* metadata) {
  if (header.empty() || header[0] != '{') return Bad(source, "header does not start with '{'");
  std::set<std::string> top_keys;
  bool duplicate = false;
  std::string duplicate_name;
  auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1) {
      std::string key = parsed.get<std::string>();
      if (!top_keys.insert(key).second && !duplicate) {
        duplicate = true;
        duplicate_name = key;
      }
    }
    return true;
  };
  nlohmann::json j = nlohmann::json::parse(header.begin(), header.end(), callback,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(source, "header is not valid JSON");
  if (!j.is_object()) return Bad(source, "header is not a JSON object");
  if (duplicate) return Bad(source, "duplicate tensor name '" + duplicate_name + "'");
  std::vector<Entry> entries;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return Bad(source, "__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) return Bad(source, "__metadata__ value of '" + m.key() + "' is not a string");
        (*metadata)[m.key()] = m->get<std::string>();
      }
      continue;
    }
    ASSIGN_OR_RETURN(Entry e, ParseEntry(source, it.key(), *it));
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const Entry& e : entries) {
    if (e.begin != expected) {
      return Bad(source, absl::StrCat("tensor '", e.name, "' starts at ", e.begin, " but the previous tensor ends at ", expected,
                                      e.begin < expected ? " (overlap)" : " (hole)"));
    }
    expected = e.end;
  }
  if (expected != buffer_size) {
    return Bad(source, absl::StrCat("tensors cover ", expected, " bytes but the data buffer holds ", buffer_size,
                                    expected > buffer_size ? " (truncated file?)" : " (trailing bytes)"));
  }
  return entries;
}

absl::StatusOr<uint64_t> HeaderLength(const std::string& source, const unsigned char* prefix,
                                      uint64_t file_size) {
  if (file_size < 8) return Bad(source, absl::StrCat("file of ", file_size, " bytes is too short for the 8-byte header length"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (n > kMaxHeader) return Bad(source, absl::StrCat("header length ", n, " exceeds the 100 MB limit"));
  if (n > file_size - 8) return Bad(source, absl::StrCat("header length ", n, " runs past the end of the file (", file_size, " bytes)"));
  return n;
}

at::Tensor EmptyFor(const Entry& e) {
  return at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type));
}

}  // namespace

absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes, const std::string& source) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  ASSIGN_OR_RETURN(uint64_t n, HeaderLength(source, data, bytes.size()));
  SafetensorsFile out;
  const uint64_t buffer_size = bytes.size() - 8 - n;
  ASSIGN_OR_RETURN(std::vector<Entry> entries, ParseHeader(source, bytes.substr(8, n), buffer_size, &out.metadata));
  const unsigned char* buffer = data + 8 + n;
  for (const Entry& e : entries) {
    at::Tensor t = EmptyFor(e);
    if (e.end > e.begin) std::memcpy(t.data_ptr(), buffer + e.begin, e.end - e.begin);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

absl::StatusOr<SafetensorsFile> ReadSafetensorsFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat("safetensors ", path, ": cannot open"));
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  unsigned char prefix[8] = {0};
  if (file_size >= 8) in.read(reinterpret_cast<char*>(prefix), 8);
  ASSIGN_OR_RETURN(uint64_t n, HeaderLength(path, prefix, file_size));
  std::string header(n, '\0');
  if (!in.read(header.data(), n)) return absl::DataLossError(absl::StrCat("safetensors ", path, ": short read of the header"));
  SafetensorsFile out;
  ASSIGN_OR_RETURN(std::vector<Entry> entries, ParseHeader(path, header, file_size - 8 - n, &out.metadata));
  // Each tensor is read straight into its own memory: no second copy of a large checkpoint.
  for (const Entry& e : entries) {
    at::Tensor t = EmptyFor(e);
    in.seekg(static_cast<std::streamoff>(8 + n + e.begin));
    if (e.end > e.begin && !in.read(static_cast<char*>(t.data_ptr()), e.end - e.begin)) {
      return absl::DataLossError(absl::StrCat("safetensors ", path, ": short read of tensor '", e.name, "'"));
    }
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

absl::StatusOr<NamedTensors> ReadSafetensors(const std::string& path) {
  ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensorsFile(path));
  return std::move(f.tensors);
}

namespace {

absl::StatusOr<std::string> BuildHeader(const NamedTensors& tensors,
                                        const std::map<std::string, std::string>& metadata,
                                        std::vector<at::Tensor>* cpu) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__") return absl::InvalidArgumentError(absl::StrCat("safetensors: invalid tensor name '", name, "'"));
    if (!names.insert(name).second) return absl::InvalidArgumentError(absl::StrCat("safetensors: duplicate tensor name '", name, "'"));
    if (!tensor.defined()) return absl::InvalidArgumentError(absl::StrCat("safetensors: tensor '", name, "' is undefined"));
    const DtypeInfo* dtype = nullptr;
    for (const DtypeInfo& d : Dtypes()) {
      if (d.type == tensor.scalar_type()) dtype = &d;
    }
    if (!dtype) return absl::InvalidArgumentError(absl::StrCat("safetensors: tensor '", name, "' has unsupported dtype ", c10::toString(tensor.scalar_type())));
    at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    const uint64_t bytes = uint64_t(t.numel()) * dtype->size;
    header[name] = {{"dtype", dtype->name}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    cpu->push_back(t);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json;
}

}  // namespace

absl::StatusOr<std::string> SerializeSafetensors(const NamedTensors& tensors,
                                                 const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> cpu;
  ASSIGN_OR_RETURN(std::string out, BuildHeader(tensors, metadata, &cpu));
  for (const at::Tensor& t : cpu) out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

absl::Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> cpu;
  ASSIGN_OR_RETURN(std::string header, BuildHeader(tensors, metadata, &cpu));
  base::AtomicFileWriter writer;
  RETURN_IF_ERROR(writer.Open(path));
  RETURN_IF_ERROR(writer.Append(header));
  for (const at::Tensor& t : cpu) {
    RETURN_IF_ERROR(writer.Append(absl::string_view(static_cast<const char*>(t.data_ptr()), t.nbytes())));
  }
  return writer.Commit();
}

}  // namespace cf::models
