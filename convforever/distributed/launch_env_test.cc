#include "convforever/distributed/launch_env.h"

#include <map>

#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ReadLaunchEnv, NothingSetIsOneRank) {
  auto env = ReadLaunchEnv({}, Env({}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->source, "single");
  EXPECT_EQ(env->rank, 0);
  EXPECT_EQ(env->world_size, 1);
}

TEST(ReadLaunchEnv, Torchrun) {
  auto env = ReadLaunchEnv({}, Env({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"},
                                    {"LOCAL_WORLD_SIZE", "2"}, {"GROUP_RANK", "1"},
                                    {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "1234"},
                                    {"TORCHELASTIC_RUN_ID", "x"},
                                    {"TORCHELASTIC_RESTART_COUNT", "2"},
                                    {"TORCHELASTIC_USE_AGENT_STORE", "True"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->source, "torchrun");
  EXPECT_EQ(env->rank, 3);
  EXPECT_EQ(env->world_size, 8);
  EXPECT_EQ(env->local_rank, 1);
  EXPECT_EQ(env->local_world_size, 2);
  EXPECT_EQ(env->master_addr, "node0");
  EXPECT_EQ(env->master_port, 1234);
  EXPECT_EQ(env->restart_count, 2);
  EXPECT_TRUE(env->use_agent_store);
}

TEST(ReadLaunchEnv, TorchrunWithoutAgentStore) {
  auto env = ReadLaunchEnv({}, Env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"},
                                    {"LOCAL_WORLD_SIZE", "2"}, {"TORCHELASTIC_USE_AGENT_STORE", "False"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_FALSE(env->use_agent_store);
  EXPECT_EQ(env->master_addr, "127.0.0.1");
  EXPECT_EQ(env->master_port, 29500);
}

TEST(ReadLaunchEnv, DeepSpeed) {
  auto env = ReadLaunchEnv({}, Env({{"RANK", "5"}, {"WORLD_SIZE", "6"}, {"LOCAL_RANK", "2"},
                                    {"LOCAL_SIZE", "3"}, {"CROSS_RANK", "1"}, {"CROSS_SIZE", "2"},
                                    {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "29600"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->source, "deepspeed");
  EXPECT_EQ(env->rank, 5);
  EXPECT_EQ(env->local_rank, 2);
  EXPECT_EQ(env->local_world_size, 3);
  EXPECT_EQ(env->master_addr, "10.0.0.1");
  EXPECT_EQ(env->master_port, 29600);
}

TEST(ReadLaunchEnv, SlurmFirstHostOfNodeListIsMaster) {
  auto env = ReadLaunchEnv({}, Env({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"},
                                    {"SLURM_LOCALID", "1"}, {"SLURM_NNODES", "4"},
                                    {"SLURM_NODEID", "2"}, {"SLURM_JOB_ID", "77"},
                                    {"SLURM_NODELIST", "gnode[10,20-22]"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->source, "slurm");
  EXPECT_EQ(env->rank, 5);
  EXPECT_EQ(env->world_size, 8);
  EXPECT_EQ(env->local_rank, 1);
  EXPECT_EQ(env->local_world_size, 2);
  EXPECT_EQ(env->master_addr, "gnode10");
}

TEST(ReadLaunchEnv, SlurmTasksPerNodeAndExplicitMaster) {
  auto env = ReadLaunchEnv({}, Env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"},
                                    {"SLURM_LOCALID", "0"}, {"SLURM_NTASKS_PER_NODE", "4(x2)"},
                                    {"SLURM_NODELIST", "a[1-2]"}, {"MASTER_ADDR", "head"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->local_world_size, 4);
  EXPECT_EQ(env->master_addr, "head");
}

TEST(ReadLaunchEnv, OpenMpi) {
  auto env = ReadLaunchEnv({}, Env({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "4"},
                                    {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                    {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}, {"MASTER_ADDR", "m"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->source, "openmpi");
  EXPECT_EQ(env->rank, 1);
  EXPECT_EQ(env->world_size, 4);
  EXPECT_EQ(env->local_world_size, 2);
  EXPECT_EQ(env->master_addr, "m");
}

TEST(ReadLaunchEnv, FlagsOverrideEnvironment) {
  LaunchOverrides flags;
  flags.rank = 1;
  flags.master_port = 4000;
  flags.master_addr = "override";
  auto env = ReadLaunchEnv(flags, Env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->rank, 1);
  EXPECT_EQ(env->master_port, 4000);
  EXPECT_EQ(env->master_addr, "override");

  LaunchOverrides only_flags;
  only_flags.rank = 1;
  only_flags.world_size = 3;
  env = ReadLaunchEnv(only_flags, Env({}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->source, "flags");
  EXPECT_EQ(env->local_rank, 1);
  EXPECT_EQ(env->local_world_size, 3);
}

TEST(ReadLaunchEnv, BadValuesNameTheVariable) {
  auto env = ReadLaunchEnv({}, Env({{"RANK", "one"}, {"WORLD_SIZE", "2"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("RANK='one'"), std::string::npos) << env.status();

  env = ReadLaunchEnv({}, Env({{"RANK", "2"}, {"WORLD_SIZE", "2"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("rank 2 is outside"), std::string::npos) << env.status();

  env = ReadLaunchEnv({}, Env({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_PORT", "70000"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("master port 70000"), std::string::npos) << env.status();

  env = ReadLaunchEnv({}, Env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"},
                               {"SLURM_NODELIST", "n[1-"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("SLURM_NODELIST"), std::string::npos) << env.status();

  env = ReadLaunchEnv({}, Env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"},
                               {"SLURM_NTASKS_PER_NODE", "x"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("SLURM_NTASKS_PER_NODE"), std::string::npos);
}

TEST(ExpandSlurmNodeList, Forms) {
  using V = std::vector<std::string>;
  EXPECT_EQ(*ExpandSlurmNodeList("node1"), V({"node1"}));
  EXPECT_EQ(*ExpandSlurmNodeList("a,b"), V({"a", "b"}));
  EXPECT_EQ(*ExpandSlurmNodeList("gnode[10,20-22]"), V({"gnode10", "gnode20", "gnode21", "gnode22"}));
  EXPECT_EQ(*ExpandSlurmNodeList("n[01-03]"), V({"n01", "n02", "n03"}));
  EXPECT_EQ(*ExpandSlurmNodeList("x[1-2],login,y[7]"), V({"x1", "x2", "login", "y7"}));
  EXPECT_FALSE(ExpandSlurmNodeList("").ok());
  EXPECT_FALSE(ExpandSlurmNodeList("n[3-1]").ok());
  EXPECT_FALSE(ExpandSlurmNodeList("n[a]").ok());
  EXPECT_FALSE(ExpandSlurmNodeList("n[1]x").ok());
}

}  // namespace
}  // namespace cf::distributed
