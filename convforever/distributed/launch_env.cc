#include "convforever/distributed/launch_env.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "convforever/base/status_macros.h"

namespace cf::distributed {
namespace {

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// Reads an integer variable; `fallback` when unset; an error naming the variable when malformed.
absl::StatusOr<int> IntVar(const EnvLookup& env, const std::string& name, int fallback) {
  std::optional<std::string> text = env(name);
  if (!text.has_value()) return fallback;
  int value = 0;
  if (!absl::SimpleAtoi(*text, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("environment variable ", name, "='", *text, "' is not an integer"));
  }
  return value;
}

bool Has(const EnvLookup& env, const std::string& name) { return env(name).has_value(); }

// SLURM_NTASKS_PER_NODE is "4" or "4(x2),2" (per node counts); the first count is ours when
// SLURM_LOCALID fits, else fall back to NTASKS / NNODES.
absl::StatusOr<int> SlurmLocalWorldSize(const EnvLookup& env, int world_size) {
  if (std::optional<std::string> per_node = env("SLURM_NTASKS_PER_NODE")) {
    std::string first = per_node->substr(0, per_node->find_first_of(",("));
    int value = 0;
    if (!absl::SimpleAtoi(first, &value) || value < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment variable SLURM_NTASKS_PER_NODE='", *per_node, "' is not a task count"));
    }
    return value;
  }
  ASSIGN_OR_RETURN(int nodes, IntVar(env, "SLURM_NNODES", 1));
  if (nodes < 1) return absl::InvalidArgumentError("SLURM_NNODES must be >= 1");
  return (world_size + nodes - 1) / nodes;
}

absl::Status ReadFromEnvironment(const EnvLookup& env, LaunchEnv* out) {
  if (Has(env, "RANK") || Has(env, "WORLD_SIZE")) {
    bool deepspeed = Has(env, "LOCAL_SIZE") || Has(env, "CROSS_RANK");
    bool torchrun = Has(env, "TORCHELASTIC_RUN_ID") || Has(env, "LOCAL_WORLD_SIZE");
    out->source = (deepspeed && !torchrun) ? "deepspeed" : "torchrun";
    ASSIGN_OR_RETURN(out->rank, IntVar(env, "RANK", 0));
    ASSIGN_OR_RETURN(out->world_size, IntVar(env, "WORLD_SIZE", 1));
    ASSIGN_OR_RETURN(out->local_rank, IntVar(env, "LOCAL_RANK", out->rank));
    const char* local_size_var = out->source == "deepspeed" ? "LOCAL_SIZE" : "LOCAL_WORLD_SIZE";
    ASSIGN_OR_RETURN(out->local_world_size, IntVar(env, local_size_var, out->world_size));
    ASSIGN_OR_RETURN(out->restart_count, IntVar(env, "TORCHELASTIC_RESTART_COUNT", 0));
    std::optional<std::string> agent = env("TORCHELASTIC_USE_AGENT_STORE");
    out->use_agent_store = agent.has_value() && (*agent == "True" || *agent == "true" || *agent == "1");
  } else if (Has(env, "SLURM_PROCID")) {
    out->source = "slurm";
    ASSIGN_OR_RETURN(out->rank, IntVar(env, "SLURM_PROCID", 0));
    ASSIGN_OR_RETURN(out->world_size, IntVar(env, "SLURM_NTASKS", 1));
    ASSIGN_OR_RETURN(out->local_rank, IntVar(env, "SLURM_LOCALID", 0));
    ASSIGN_OR_RETURN(out->local_world_size, SlurmLocalWorldSize(env, out->world_size));
    if (!Has(env, "MASTER_ADDR")) {
      std::optional<std::string> nodelist = env("SLURM_NODELIST");
      if (!nodelist.has_value()) nodelist = env("SLURM_JOB_NODELIST");
      if (nodelist.has_value()) {
        absl::StatusOr<std::vector<std::string>> hosts = ExpandSlurmNodeList(*nodelist);
        if (!hosts.ok()) {
          return absl::InvalidArgumentError(absl::StrCat("environment variable SLURM_NODELIST: ",
                                                         hosts.status().message()));
        }
        out->master_addr = hosts->front();
      }
    }
  } else if (Has(env, "OMPI_COMM_WORLD_RANK")) {
    out->source = "openmpi";
    ASSIGN_OR_RETURN(out->rank, IntVar(env, "OMPI_COMM_WORLD_RANK", 0));
    ASSIGN_OR_RETURN(out->world_size, IntVar(env, "OMPI_COMM_WORLD_SIZE", 1));
    ASSIGN_OR_RETURN(out->local_rank, IntVar(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0));
    ASSIGN_OR_RETURN(out->local_world_size,
                     IntVar(env, "OMPI_COMM_WORLD_LOCAL_SIZE", out->world_size));
  }
  if (std::optional<std::string> addr = env("MASTER_ADDR")) {
    if (addr->empty()) return absl::InvalidArgumentError("environment variable MASTER_ADDR is empty");
    out->master_addr = *addr;
  }
  ASSIGN_OR_RETURN(out->master_port, IntVar(env, "MASTER_PORT", out->master_port));
  return absl::OkStatus();
}

absl::Status Validate(const LaunchEnv& e) {
  std::string where = absl::StrCat(" (launch environment from ", e.source, ")");
  if (e.world_size < 1) return absl::InvalidArgumentError(absl::StrCat("world size ", e.world_size, " < 1", where));
  if (e.rank < 0 || e.rank >= e.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", e.rank, " is outside [0, world size ", e.world_size, ")", where));
  }
  if (e.local_world_size < 1 || e.local_rank < 0 || e.local_rank >= e.local_world_size) {
    return absl::InvalidArgumentError(absl::StrCat("local rank ", e.local_rank,
                                                   " is outside [0, local world size ",
                                                   e.local_world_size, ")", where));
  }
  if (e.master_port < 1 || e.master_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("master port ", e.master_port, " is not in 1..65535", where));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ExpandSlurmNodeList(const std::string& nodelist) {
  std::vector<std::string> hosts;
  size_t i = 0;
  const std::string& s = nodelist;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && s[i] != ',' && s[i] != '[') ++i;
    std::string prefix = s.substr(start, i - start);
    if (i < s.size() && s[i] == '[') {
      size_t close = s.find(']', i);
      if (close == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("node list '", s, "': unclosed '[' at ", i));
      }
      std::string ranges = s.substr(i + 1, close - i - 1);
      for (absl::string_view range : absl::StrSplit(ranges, ',')) {
        std::vector<std::string> ends = absl::StrSplit(range, '-');
        int lo = 0, hi = 0;
        if (ends.size() > 2 || !absl::SimpleAtoi(ends[0], &lo) ||
            !absl::SimpleAtoi(ends.back(), &hi) || hi < lo || lo < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("node list '", s, "': bad range '", range, "'"));
        }
        size_t width = ends[0].size();
        for (int n = lo; n <= hi; ++n) {
          std::string digits = std::to_string(n);
          if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
          hosts.push_back(prefix + digits);
        }
      }
      i = close + 1;
      if (i < s.size() && s[i] != ',') {
        return absl::InvalidArgumentError(
            absl::StrCat("node list '", s, "': unexpected '", s.substr(i, 1), "' after ']'"));
      }
    } else if (!prefix.empty()) {
      hosts.push_back(prefix);
    }
    if (i < s.size() && s[i] == ',') ++i;
  }
  if (hosts.empty()) return absl::InvalidArgumentError(absl::StrCat("node list '", s, "' names no host"));
  return hosts;
}

absl::StatusOr<LaunchEnv> ReadLaunchEnv(const LaunchOverrides& flags) {
  return ReadLaunchEnv(flags, ProcessEnv);
}

absl::StatusOr<LaunchEnv> ReadLaunchEnv(const LaunchOverrides& flags, const EnvLookup& env) {
  LaunchEnv out;
  RETURN_IF_ERROR(ReadFromEnvironment(env, &out));
  bool any_flag = flags.rank || flags.world_size || flags.local_rank || flags.local_world_size ||
                  flags.master_port || flags.master_addr;
  if (any_flag && out.source == "single") out.source = "flags";
  if (flags.rank) out.rank = *flags.rank;
  if (flags.world_size) out.world_size = *flags.world_size;
  if (flags.local_rank) out.local_rank = *flags.local_rank;
  if (flags.local_world_size) out.local_world_size = *flags.local_world_size;
  if (flags.master_port) out.master_port = *flags.master_port;
  if (flags.master_addr) out.master_addr = *flags.master_addr;
  if (out.source == "flags" && !flags.local_world_size && !flags.local_rank) {
    out.local_world_size = out.world_size;
    out.local_rank = out.rank;
  }
  RETURN_IF_ERROR(Validate(out));
  return out;
}

}  // namespace cf::distributed
