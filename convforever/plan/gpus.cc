#include "convforever/plan/gpus.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace cf::plan {
namespace {

constexpr const char* kColumns[] = {"name",        "bf16_tflops", "fp16_tflops", "fp32_tflops",
                                    "tf32_tflops", "memory_gb",   "usd_per_hour"};
constexpr int kNumColumns = 7;

bool ValidName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_')) return false;
  }
  return true;
}

absl::Status RowError(const std::string& source, int line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ":", line, ": ", what));
}

}  // namespace

absl::StatusOr<std::vector<GpuSpec>> ParseGpuTable(absl::string_view text,
                                                   const std::string& source) {
  std::vector<GpuSpec> out;
  bool have_header = false;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cells;
    for (absl::string_view cell : absl::StrSplit(line, ',')) {
      cells.emplace_back(absl::StripAsciiWhitespace(cell));
    }
    if (!have_header) {
      const std::string want = absl::StrJoin(kColumns, ",");
      if (absl::StrJoin(cells, ",") != want) {
        return RowError(source, line_no, absl::StrCat("header must be '", want, "', got '", line, "'"));
      }
      have_header = true;
      continue;
    }
    if (cells.size() != kNumColumns) {
      return RowError(source, line_no, absl::StrCat("expected ", kNumColumns, " columns, got ",
                                                    cells.size(), " in '", line, "'"));
    }
    GpuSpec g;
    g.name = cells[0];
    if (!ValidName(g.name)) {
      return RowError(source, line_no, absl::StrCat("column name: '", g.name,
                                                    "' is not a lower-case name [a-z0-9_]"));
    }
    for (const GpuSpec& seen : out) {
      if (seen.name == g.name) return RowError(source, line_no, absl::StrCat("duplicate GPU '", g.name, "'"));
    }
    double* fields[] = {&g.bf16_tflops, &g.fp16_tflops, &g.fp32_tflops, &g.tf32_tflops,
                        &g.memory_gb,   &g.usd_per_hour};
    for (int i = 1; i < kNumColumns; ++i) {
      double v = 0;
      if (!absl::SimpleAtod(cells[i], &v) || !std::isfinite(v) || v < 0) {
        return RowError(source, line_no, absl::StrCat("column ", kColumns[i], ": '", cells[i],
                                                      "' is not a number >= 0"));
      }
      *fields[i - 1] = v;
    }
    if (g.memory_gb <= 0) return RowError(source, line_no, "column memory_gb: must be > 0");
    if (g.fp32_tflops <= 0) return RowError(source, line_no, "column fp32_tflops: must be > 0");
    out.push_back(g);
  }
  if (!have_header) return absl::InvalidArgumentError(absl::StrCat(source, ": no header line"));
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no GPU rows"));
  return out;
}

absl::StatusOr<std::vector<GpuSpec>> ReadGpuTable(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read the GPU table ", path,
                                            " (run from the repository root or pass --gpu_table)"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseGpuTable(buffer.str(), path);
}

absl::StatusOr<GpuSpec> FindGpu(const std::vector<GpuSpec>& table, const std::string& name,
                                const std::string& source) {
  const std::string want = absl::AsciiStrToLower(name);
  std::vector<std::string> names;
  for (const GpuSpec& g : table) {
    if (g.name == want) return g;
    names.push_back(g.name);
  }
  return absl::NotFoundError(absl::StrCat("--gpu=", name, ": not in ", source, " (have: ",
                                          absl::StrJoin(names, ", "), ", or local)"));
}

absl::StatusOr<double> PeakFlops(const GpuSpec& gpu, const std::string& precision) {
  double tflops = 0;
  if (precision == "bf16") {
    tflops = gpu.bf16_tflops;
  } else if (precision == "fp16") {
    tflops = gpu.fp16_tflops;
  } else if (precision == "fp32") {
    tflops = gpu.fp32_tflops;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("precision must be fp32, bf16 or fp16, got '", precision, "'"));
  }
  if (tflops <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(gpu.name, " has no ", precision,
                                                   " tensor cores (0 in the GPU table): choose "
                                                   "another --precision"));
  }
  return tflops * 1e12;
}

}  // namespace cf::plan
