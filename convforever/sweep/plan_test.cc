#include "convforever/sweep/plan.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace cf::sweep {
namespace {

TrainerFlags Flags() {
  return {{"depth", "int32"},         {"micro_batch_size", "int64"},
          {"gradient_accumulation_steps", "int64"},
          {"lr", "double"},           {"weight_decay", "double"},
          {"threads", "int32"},       {"num_workers", "int32"},
          {"data", "string"},         {"max_steps", "int64"},
          {"hflip", "bool"},          {"run_dir", "string"},
          {"resume", "string"},       {"optimizer", "string"}};
}

std::string WriteTable(const std::string& name, const std::string& text) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp ? tmp : "/tmp") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

SweepOptions Options(const std::string& csv) {
  SweepOptions o;
  o.csv_path = csv;
  o.recipe_flagfile = "/repo/convforever/train/recipes/convforever_depth.flags";
  o.train_binary = "/repo/train";
  o.launcher = "/repo/launch.sh";
  o.out_dir = "/out";
  o.cores = 8;
  return o;
}

TEST(BuildPlan, CommandOrderRecipeRowOverridesThenTheSweepsOwn) {
  SweepOptions o = Options(WriteTable("a.csv", "approx_num_layers,learning_rate\n20,1e-4\n32,1e-3\n"));
  o.overrides = {"--data=synthetic", "--lr=5", "--nohflip"};
  absl::StatusOr<SweepPlan> plan = BuildPlan(o, Flags());
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->runs.size(), 2u);
  const PlannedRun& r = plan->runs[1];
  EXPECT_EQ(r.row, 1u);
  EXPECT_EQ(r.line, 3);
  EXPECT_EQ(r.run_dir, "/out/runs/" + r.name);
  // The name shows the effective lr (the override), the hash tells the rows apart.
  EXPECT_EQ(r.name.substr(0, r.name.size() - 8), "01-d32-lr5-") << r.name;
  EXPECT_EQ(absl::StrJoin(r.command, " "),
            "/repo/train --flagfile=/repo/convforever/train/recipes/convforever_depth.flags "
            "--depth=32 --lr=1e-3 --data=synthetic --lr=5 --hflip=false "
            "--run_dir=/out/runs/" + r.name + " --resume=auto");
  EXPECT_NE(plan->runs[0].name.substr(plan->runs[0].name.size() - 8),
            r.name.substr(r.name.size() - 8));
  EXPECT_EQ(r.input_values, (std::vector<std::string>{"32", "1e-3"}));
}

TEST(BuildPlan, ParallelAddsThreadsAndWorkersUnlessSet) {
  SweepOptions o = Options(WriteTable("p.csv", "approx_num_layers,threads\n20,\n32,3\n"));
  o.parallel = 4;
  absl::StatusOr<SweepPlan> plan = BuildPlan(o, Flags());
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string first = absl::StrJoin(plan->runs[0].command, " ");
  EXPECT_NE(first.find("--threads=2 --num_workers=1 --depth=20"), std::string::npos) << first;
  const std::string second = absl::StrJoin(plan->runs[1].command, " ");
  EXPECT_EQ(second.find("--threads=2"), std::string::npos) << second;
  EXPECT_NE(second.find("--threads=3"), std::string::npos) << second;
  // The sweep's own thread choice is not part of a run's identity: the same row with --parallel 1
  // is the same run directory.
  SweepOptions serial = o;
  serial.parallel = 1;
  absl::StatusOr<SweepPlan> plan1 = BuildPlan(serial, Flags());
  ASSERT_TRUE(plan1.ok());
  EXPECT_EQ(plan1->runs[0].name, plan->runs[0].name);
  EXPECT_EQ(absl::StrJoin(plan1->runs[0].command, " ").find("--threads"), std::string::npos);
  // An override names its own thread count: nothing added.
  o.overrides = {"--num_workers=2", "--threads=1"};
  plan = BuildPlan(o, Flags());
  ASSERT_TRUE(plan.ok());
  const std::string overridden = absl::StrJoin(plan->runs[0].command, " ");
  EXPECT_EQ(overridden.find("--num_workers=1"), std::string::npos) << overridden;
  EXPECT_EQ(overridden.find("--threads=2"), std::string::npos) << overridden;
}

TEST(BuildPlan, LaunchWrapsTheTrainerAndCountsRanks) {
  SweepOptions o = Options(WriteTable("l.csv", "approx_num_layers\n20\n"));
  o.launch_args = {"-n", "2"};
  o.parallel = 2;
  absl::StatusOr<SweepPlan> plan = BuildPlan(o, Flags());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->ranks, 2);
  const std::string cmd = absl::StrJoin(plan->runs[0].command, " ");
  EXPECT_EQ(cmd.rfind("/repo/launch.sh -n 2 -- /repo/train --flagfile=", 0), 0u) << cmd;
  EXPECT_NE(cmd.find("--threads=2"), std::string::npos) << cmd;  // 8 cores / (2 rows x 2 ranks)
  // Launched or not is a different run.
  SweepOptions local = o;
  local.launch_args.clear();
  EXPECT_NE(BuildPlan(local, Flags())->runs[0].name, plan->runs[0].name);
}

TEST(BuildPlan, AChangedRowOrOverrideIsANewRunDirectory) {
  const std::string a = BuildPlan(Options(WriteTable("c1.csv", "approx_num_layers,weight_decay\n20,0.01\n")), Flags())->runs[0].name;
  const std::string b = BuildPlan(Options(WriteTable("c2.csv", "approx_num_layers,weight_decay\n20,0.02\n")), Flags())->runs[0].name;
  EXPECT_NE(a, b);
  EXPECT_EQ(a.substr(0, 7), b.substr(0, 7));  // same short keys
  SweepOptions o = Options(WriteTable("c3.csv", "approx_num_layers,weight_decay\n20,0.01\n"));
  EXPECT_EQ(BuildPlan(o, Flags())->runs[0].name, a);  // same content, same name
  o.overrides = {"--max_steps=5"};
  EXPECT_NE(BuildPlan(o, Flags())->runs[0].name, a);
}

TEST(BuildPlan, ScaleColumnFeedsTheFlags) {
  SweepOptions o = Options(WriteTable("s.csv", "approx_num_layers\n20\n120\n"));
  o.scales = {{"approx_num_layers", 0.1}};
  absl::StatusOr<SweepPlan> plan = BuildPlan(o, Flags());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->runs[0].row_flags[0].Arg(), "--depth=2");
  EXPECT_EQ(plan->runs[1].row_flags[0].Arg(), "--depth=12");
  EXPECT_EQ(plan->runs[1].input_values[0], "12");
}

TEST(BuildPlan, Errors) {
  SweepOptions o = Options(WriteTable("e.csv", "approx_num_layers\n20\n"));
  o.overrides = {"--no_such_flag=1"};
  absl::StatusOr<SweepPlan> plan = BuildPlan(o, Flags());
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("no flag --no_such_flag"), std::string::npos) << plan.status();
  o.overrides = {"--run_dir=/x"};
  EXPECT_NE(BuildPlan(o, Flags()).status().message().find("set by the sweep"), std::string::npos);
  o.overrides = {"synthetic"};
  EXPECT_NE(BuildPlan(o, Flags()).status().message().find("is not a flag"), std::string::npos);
  o.overrides = {"--max_steps"};
  EXPECT_NE(BuildPlan(o, Flags()).status().message().find("needs a value"), std::string::npos);
  o.overrides = {"--max_steps=few"};
  EXPECT_NE(BuildPlan(o, Flags()).status().message().find("--max_steps is an integer"),
            std::string::npos);
  EXPECT_FALSE(BuildPlan(Options(WriteTable("h.csv", "approx_num_layers\n")), Flags()).ok());
}

TEST(LaunchRanks, Forms) {
  EXPECT_EQ(LaunchRanks({"-n", "4"}), 4);
  EXPECT_EQ(LaunchRanks({"--nproc_per_node=3"}), 3);
  EXPECT_EQ(LaunchRanks({"--hostfile", "h"}), 1);
}

TEST(ShellJoin, QuotesWhatAShellWouldSplit) {
  EXPECT_EQ(ShellJoin({"/bin/train", "--data_dir=", "--x=a b", "it's"}),
            "/bin/train --data_dir= '--x=a b' 'it'\\''s'");
}

}  // namespace
}  // namespace cf::sweep
