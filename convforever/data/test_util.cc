#include "convforever/data/test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace cf::data::testing {

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base ? base : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

void WriteGzipFile(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), bytes.size());
  gzclose(f);
}

std::string IdxBytes(const std::vector<int>& dims, const std::vector<uint8_t>& data) {
  std::string out = {0, 0, 8, static_cast<char>(dims.size())};
  for (int d : dims) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((d >> s) & 0xFF));
  }
  out.append(reinterpret_cast<const char*>(data.data()), data.size());
  return out;
}

Image PatternImage(int h, int w, int c, int seed) {
  Image img(h, w, c);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int ch = 0; ch < c; ++ch) img.at(y, x, ch) = static_cast<uint8_t>((seed * 37 + y * 7 + x * 3 + ch * 61) & 0xFF);
    }
  }
  return img;
}

std::string TarBytes(const std::vector<std::pair<std::string, std::string>>& members) {
  size_t cap = 1 << 20;
  for (const auto& m : members) cap += m.second.size() + 2048;
  std::string out(cap, '\0');
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open_memory(a, out.data(), out.size(), &used);
  for (const auto& [name, bytes] : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, bytes.size());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, bytes.data(), bytes.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

std::string TestdataPath(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  if (srcdir && ws) return std::string(srcdir) + "/" + ws + "/convforever/data/testdata/" + name;
  return "convforever/data/testdata/" + name;
}

}  // namespace cf::data::testing
