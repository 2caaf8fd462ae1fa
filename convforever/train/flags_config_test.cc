// ApplyDeepSpeedConfig's "auto" batch arithmetic (train = micro x accumulation x world size) takes
// the world size from the launch environment the trainer joins, whichever launcher set it: SLURM
// and Open MPI set no WORLD_SIZE, yet a job of 4 ranks must split a global batch of 64 four ways.
#include "convforever/train/flags_config.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cf::train {
namespace {

// Sets the variables for the test's lifetime, clearing every launcher's variables first.
class LaunchEnvironment {
 public:
  explicit LaunchEnvironment(const std::vector<std::pair<std::string, std::string>>& vars) {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "LOCAL_SIZE",
                             "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE",
                             "SLURM_NNODES", "SLURM_NODELIST", "SLURM_JOB_NODELIST",
                             "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                             "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"}) {
      unsetenv(name);
    }
    for (const auto& [name, value] : vars) {
      setenv(name.c_str(), value.c_str(), 1);
      set_.push_back(name);
    }
  }
  ~LaunchEnvironment() {
    for (const std::string& name : set_) unsetenv(name.c_str());
  }

 private:
  std::vector<std::string> set_;
};

// A global batch of 64 in micro-batches of 8; the accumulation follows: 64 / (8 x world size).
constexpr char kConfig[] = R"({"train_batch_size": 64, "train_micro_batch_size_per_gpu": 8})";

int64_t AccumulationUnder(const std::vector<std::pair<std::string, std::string>>& vars) {
  LaunchEnvironment env(vars);
  TrainerOptions o;
  absl::Status s = ApplyDeepSpeedConfig(kConfig, &o);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(o.micro_batch_size, 8);
  return o.gradient_accumulation_steps;
}

TEST(DeepSpeedAutoBatch, SlurmWorldSizeWithoutWorldSize) {
  EXPECT_EQ(AccumulationUnder({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "1"},
                               {"SLURM_NTASKS_PER_NODE", "4"}, {"SLURM_NODELIST", "gpu01"}}),
            2);  // 64 / (8 x 4)
}

TEST(DeepSpeedAutoBatch, OpenMpiWorldSizeWithoutWorldSize) {
  EXPECT_EQ(AccumulationUnder({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "8"},
                               {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "8"}}),
            1);  // 64 / (8 x 8)
}

TEST(DeepSpeedAutoBatch, TorchrunAndSingleProcess) {
  EXPECT_EQ(AccumulationUnder({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_WORLD_SIZE", "2"}}), 4);
  EXPECT_EQ(AccumulationUnder({}), 8);
}

// "auto" sizes come from the flags and are checked against the same world size: 8 x 2 x 4 ranks
// = 64 agrees under SLURM (a world of one would call it a contradiction).
TEST(DeepSpeedAutoBatch, AutoSizesAgreeWithTheSlurmWorld) {
  LaunchEnvironment env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"},
                         {"SLURM_NNODES", "1"}});
  TrainerOptions o;
  o.micro_batch_size = 8;
  o.gradient_accumulation_steps = 2;
  absl::Status s = ApplyDeepSpeedConfig(R"({"train_batch_size": 64, "train_micro_batch_size_per_gpu": "auto",
                                            "gradient_accumulation_steps": "auto"})", &o);
  EXPECT_TRUE(s.ok()) << s;
}

// A malformed launch variable is an error naming it, not a silent world of one.
TEST(DeepSpeedAutoBatch, MalformedVariableIsNamed) {
  LaunchEnvironment env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "four"}});
  TrainerOptions o;
  absl::Status s = ApplyDeepSpeedConfig(kConfig, &o);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("SLURM_NTASKS"), std::string::npos) << s;
}

}  // namespace
}  // namespace cf::train
