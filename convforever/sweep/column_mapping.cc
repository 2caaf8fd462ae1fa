#include "convforever/sweep/column_mapping.h"

#include <cstdint>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cf::sweep {
namespace {

// Flags a row may not set: the sweep owns the run directory and resuming, and gflags' own
// flags would change how the rest of the command line is read.
const std::set<std::string>& ReservedFlags() {
  static const auto* reserved = new std::set<std::string>{
      "run_dir", "resume", "flagfile", "fromenv", "tryfromenv", "undefok", "help", "helpfull",
      "helpshort", "helpxml", "helpon", "helpmatch", "helppackage", "version"};
  return *reserved;
}

// String flags whose values are lower-case keywords in the trainer.
const std::set<std::string>& LowerCasedFlags() {
  static const auto* flags = new std::set<std::string>{"optimizer", "lr_scheduler_type", "precision"};
  return *flags;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& ColumnAliases() {
  static const auto* aliases = new std::vector<std::pair<std::string, std::string>>{
      {"approx_num_layers", "depth"},
      {"per_device_train_batch_size", "micro_batch_size"},
      {"gradient_accumulation_steps", "gradient_accumulation_steps"},
      {"enable_gradient_checkpointing", "enable_gradient_checkpointing"},
      {"learning_rate", "lr"},
      {"weight_decay", "weight_decay"},
      {"lr_scheduler_type", "lr_scheduler_type"},
      {"warmup_epochs", "warmup_epochs"},
      {"drop_path_rate", "drop_path_rate"},
      {"label_smoothing", "label_smoothing"},
      {"gradient_clipping", "gradient_clipping"},
      {"precision", "precision"},
      {"optimizer", "optimizer"},
  };
  return *aliases;
}

absl::StatusOr<std::vector<std::string>> MapColumns(const std::vector<std::string>& header,
                                                    const TrainerFlags& trainer_flags,
                                                    absl::string_view source) {
  std::vector<std::string> flag_for_column;
  std::vector<std::string> unknown;
  std::vector<std::string> reserved;
  std::set<std::string> set_by;  // each flag set by one column only
  for (const std::string& column : header) {
    std::string flag;
    for (const auto& [alias, target] : ColumnAliases()) {
      if (alias == column) flag = target;
    }
    if (flag.empty() && trainer_flags.count(column) > 0) flag = column;
    if (flag.empty()) {
      unknown.push_back("'" + column + "'");
    } else if (ReservedFlags().count(flag) > 0) {
      reserved.push_back("'" + column + "'");
    } else if (!set_by.insert(flag).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": two columns set the trainer flag --", flag, " (column '", column, "')"));
    }
    flag_for_column.push_back(flag);
  }
  if (!reserved.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": column(s) ", absl::StrJoin(reserved, ", "),
        " cannot be set per row (the sweep sets --run_dir and --resume; gflags' own flags are "
        "not training settings)"));
  }
  if (!unknown.empty()) {
    std::vector<std::string> aliases;
    for (const auto& [alias, target] : ColumnAliases()) {
      aliases.push_back(alias == target ? alias : absl::StrCat(alias, " (--", target, ")"));
    }
    std::vector<std::string> names;
    for (const auto& [name, type] : trainer_flags) {
      if (ReservedFlags().count(name) == 0) names.push_back(name);
    }
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": unknown column(s) ", absl::StrJoin(unknown, ", "),
        ". Known columns: the sweep table names ", absl::StrJoin(aliases, ", "),
        "; or any trainer flag name: ", absl::StrJoin(names, ", ")));
  }
  return flag_for_column;
}

absl::StatusOr<std::string> NormalizeValue(absl::string_view flag, absl::string_view type,
                                           absl::string_view value) {
  const std::string v(absl::StripAsciiWhitespace(value));
  if (type == "bool") {
    const std::string lower = absl::AsciiStrToLower(v);
    if (lower == "true" || lower == "1") return std::string("true");
    if (lower == "false" || lower == "0") return std::string("false");
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " is a boolean: expected True or False, got '", v, "'"));
  }
  if (type == "int32" || type == "int64" || type == "uint64" || type == "uint32") {
    int64_t i = 0;
    uint64_t u = 0;
    if (!absl::SimpleAtoi(v, &i) && !absl::SimpleAtoi(v, &u)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " is an integer: got '", v, "'"));
    }
    return v;
  }
  if (type == "double") {
    double d = 0;
    if (!absl::SimpleAtod(v, &d)) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " is a number: got '", v, "'"));
    }
    return v;
  }
  if (LowerCasedFlags().count(std::string(flag)) > 0) return absl::AsciiStrToLower(v);
  return v;
}

absl::StatusOr<std::vector<FlagValue>> RowFlags(const CsvTable& table, size_t row,
                                                const std::vector<std::string>& flag_for_column,
                                                const TrainerFlags& trainer_flags,
                                                absl::string_view source) {
  std::vector<FlagValue> flags;
  const std::vector<std::string>& fields = table.rows[row];
  for (size_t c = 0; c < fields.size(); ++c) {
    if (absl::StripAsciiWhitespace(fields[c]).empty()) continue;
    const std::string& flag = flag_for_column[c];
    const auto type = trainer_flags.find(flag);
    if (type == trainer_flags.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ":", table.row_lines[row], ": column '", table.header[c],
          "' sets --", flag, ", which this trainer binary does not have"));
    }
    absl::StatusOr<std::string> value = NormalizeValue(flag, type->second, fields[c]);
    if (!value.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", table.row_lines[row],
                                                     ": column '", table.header[c], "': ",
                                                     value.status().message()));
    }
    flags.push_back({flag, *std::move(value)});
  }
  return flags;
}

}  // namespace cf::sweep
