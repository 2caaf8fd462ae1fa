// The entrypoint's command table (PlanCommand) against the checkout's real recipes, and the
// local launcher through the real `cf` binary with real child processes.
#include "containers/entrypoint/dispatch.h"

#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cf::entrypoint {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Paths TestPaths() { return {"/img/bin", "convforever/train/recipes"}; }

TEST(PlanCommand, TrainPutsTheRecipeFirstSoFlagsOverrideIt) {
  auto plan = PlanCommand({"train", "--recipe=fashion_mnist_cnn", "--max_steps=3"}, TestPaths());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->binary, "/img/bin/train");
  EXPECT_THAT(plan->args, ElementsAre("--flagfile=convforever/train/recipes/fashion_mnist_cnn.flags",
                                      "--max_steps=3"));
  auto separate = PlanCommand({"train", "--recipe", "fashion_mnist_cnn"}, TestPaths());
  ASSERT_TRUE(separate.ok());
  EXPECT_THAT(separate->args, ElementsAre("--flagfile=convforever/train/recipes/fashion_mnist_cnn.flags"));
}

TEST(PlanCommand, DefaultRecipeIsFashionMnist) {
  auto plan = PlanCommand({"train"}, TestPaths());
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(plan->args, ElementsAre("--flagfile=convforever/train/recipes/fashion_mnist.flags"));
}

TEST(PlanCommand, ModesOfTheTrainer) {
  auto eval = PlanCommand({"evaluate", "--checkpoint=best"}, TestPaths());
  ASSERT_TRUE(eval.ok());
  EXPECT_THAT(eval->args, ElementsAre("--eval_only", "--flagfile=convforever/train/recipes/fashion_mnist.flags",
                                      "--checkpoint=best"));
  auto estimate = PlanCommand({"estimate", "--recipe=convforever_depth"}, TestPaths());
  ASSERT_TRUE(estimate.ok());
  EXPECT_THAT(estimate->args, ElementsAre("--estimate", "--flagfile=convforever/train/recipes/convforever_depth.flags"));
  auto preflight = PlanCommand({"preflight", "--hostfile=/data/hosts"}, TestPaths());
  ASSERT_TRUE(preflight.ok());
  EXPECT_EQ(preflight->args.front(), "--preflight");
  EXPECT_EQ(preflight->args.back(), "--hostfile=/data/hosts");
}

TEST(PlanCommand, HelpOfACommandIsItsOwn) {
  auto train = PlanCommand({"train", "--help"}, TestPaths());
  ASSERT_TRUE(train.ok());
  EXPECT_THAT(train->args, ElementsAre("--help"));
  auto classify = PlanCommand({"classify", "--help"}, TestPaths());
  ASSERT_TRUE(classify.ok());
  EXPECT_EQ(classify->binary, "/img/bin/classify");
  EXPECT_THAT(classify->args, ElementsAre("--help"));
  auto sweep = PlanCommand({"sweep", "--help"}, TestPaths());
  ASSERT_TRUE(sweep.ok());
  EXPECT_THAT(sweep->args, ElementsAre("--help"));
  for (const char* h : {"help", "--help", "-h"}) {
    auto top = PlanCommand({h}, TestPaths());
    ASSERT_TRUE(top.ok());
    EXPECT_EQ(top->kind, Plan::Kind::kHelp);
  }
  EXPECT_EQ(PlanCommand({}, TestPaths())->kind, Plan::Kind::kHelp);
}

TEST(PlanCommand, OtherBinaries) {
  auto pack = PlanCommand({"data", "pack", "--data=synthetic", "--out=/runs/x"}, TestPaths());
  ASSERT_TRUE(pack.ok());
  EXPECT_EQ(pack->binary, "/img/bin/pack");
  EXPECT_THAT(pack->args, ElementsAre("--data=synthetic", "--out=/runs/x"));
  auto sweep = PlanCommand({"sweep", "/data/s.csv"}, TestPaths());
  ASSERT_TRUE(sweep.ok());
  EXPECT_THAT(sweep->args, ElementsAre("--train_binary=/img/bin/train", "--launcher=/img/bin/cf-launch",
                                       "--recipes_dir=convforever/train/recipes", "/data/s.csv"));
  auto hub = PlanCommand({"hub", "whoami"}, TestPaths());
  ASSERT_TRUE(hub.ok());
  EXPECT_EQ(hub->binary, "/img/bin/hub");
}

TEST(PlanCommand, ErrorsNameTheCulpritAndTheChoices) {
  auto recipe = PlanCommand({"train", "--recipe=nope"}, TestPaths());
  ASSERT_FALSE(recipe.ok());
  EXPECT_THAT(recipe.status().message(), HasSubstr("no recipe 'nope'"));
  EXPECT_THAT(recipe.status().message(), HasSubstr("fashion_mnist_cnn"));
  auto escape = PlanCommand({"train", "--recipe=../../etc/passwd"}, TestPaths());
  EXPECT_FALSE(escape.ok());
  auto command = PlanCommand({"trian"}, TestPaths());
  ASSERT_FALSE(command.ok());
  EXPECT_THAT(command.status().message(), HasSubstr("unknown command 'trian'"));
  EXPECT_THAT(command.status().message(), HasSubstr("preflight"));
  EXPECT_FALSE(PlanCommand({"data", "unpack"}, TestPaths()).ok());
}

TEST(PlanCommand, LaunchRunsTheTrainerOrAGivenProgram) {
  auto plan = PlanCommand({"launch", "-n", "2", "--", "--recipe=fashion_mnist_cnn", "--max_steps=3"}, TestPaths());
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->kind, Plan::Kind::kLaunch);
  EXPECT_THAT(plan->launch_args, ElementsAre("-n", "2"));
  EXPECT_EQ(plan->launch_command, "/img/bin/train");
  EXPECT_THAT(plan->args, ElementsAre("--flagfile=convforever/train/recipes/fashion_mnist_cnn.flags", "--max_steps=3"));
  auto program = PlanCommand({"launch", "-n", "2", "--", "/img/bin/train", "--run_dir=/runs/r"}, TestPaths());
  ASSERT_TRUE(program.ok());
  EXPECT_EQ(program->launch_command, "/img/bin/train");
  EXPECT_THAT(program->args, ElementsAre("--run_dir=/runs/r"));
}

struct CfRun {
  int code;
  std::string out;
};

// Runs the real entrypoint binary (stdout and stderr together).
CfRun RunCf(const std::string& args) {
  const std::string cmd = "containers/entrypoint/cf " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(LocalLaunch, RanksGetTorchrunsVariablesAndPrefixedOutput) {
  CfRun r = RunCf("launch -n 2 -- /bin/sh -c 'echo \"rank=$RANK of $WORLD_SIZE local=$LOCAL_RANK/$LOCAL_WORLD_SIZE "
                "at $MASTER_ADDR:$MASTER_PORT\"; echo to-stderr >&2; printf no-newline'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("[rank 0] rank=0 of 2 local=0/2 at 127.0.0.1:"));
  EXPECT_THAT(r.out, HasSubstr("[rank 1] rank=1 of 2 local=1/2 at 127.0.0.1:"));
  EXPECT_THAT(r.out, HasSubstr("[rank 1] to-stderr\n"));
  EXPECT_THAT(r.out, HasSubstr("[rank 0] no-newline\n"));
}

TEST(LocalLaunch, SecondNodeOfTwoNumbersItsRanksAfterTheFirstNodes) {
  CfRun r = RunCf("launch -n 2 --nnodes=2 --node_rank=1 --master_addr=10.0.0.5 --master_port 29500 -- "
                  "/bin/sh -c 'echo \"rank=$RANK of $WORLD_SIZE local=$LOCAL_RANK/$LOCAL_WORLD_SIZE "
                  "node=$GROUP_RANK at $MASTER_ADDR:$MASTER_PORT\"'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("[rank 0] rank=2 of 4 local=0/2 node=1 at 10.0.0.5:29500"));
  EXPECT_THAT(r.out, HasSubstr("[rank 1] rank=3 of 4 local=1/2 node=1 at 10.0.0.5:29500"));
  CfRun no_master = RunCf("launch -n 2 --nnodes=2 --node_rank=1 -- /bin/true");
  EXPECT_EQ(no_master.code, 2);
  EXPECT_THAT(no_master.out, HasSubstr("--nnodes > 1 needs --master_addr and --master_port"));
  CfRun past = RunCf("launch --nnodes=2 --node_rank=2 --master_addr=h --master_port=1 -- /bin/true");
  EXPECT_EQ(past.code, 2);
  EXPECT_THAT(past.out, HasSubstr("--node_rank 2 is not below --nnodes 2"));
}

TEST(LocalLaunch, AFailedRankStopsTheOthersAndGivesItsCode) {
  // Rank 1 fails at once; rank 0 would print "finished" after a minute unless it is stopped, and
  // says so when SIGTERM (not the later SIGKILL) reaches it.
  CfRun r = RunCf("launch -n 2 -- /bin/sh -c 'if [ $RANK = 1 ]; then sleep 0.2; echo failing; exit 3; fi; "
                "trap \"echo stopped-by-term; exit 143\" TERM; sleep 60 & wait; echo finished'");
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_THAT(r.out, HasSubstr("[rank 1] failing"));
  EXPECT_THAT(r.out, HasSubstr("rank 1 exited with code 3"));
  EXPECT_THAT(r.out, HasSubstr("[rank 0] stopped-by-term"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("finished")));
}

TEST(LocalLaunch, UsageErrors) {
  CfRun unknown = RunCf("launch --hostfile h -- /bin/true");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.out, HasSubstr("unknown option '--hostfile'"));
  CfRun bad_n = RunCf("launch -n zero -- /bin/true");
  EXPECT_EQ(bad_n.code, 2);
  EXPECT_THAT(bad_n.out, HasSubstr("-n needs a number"));
  CfRun missing = RunCf("launch -n 1 -- /nonexistent/program");
  EXPECT_EQ(missing.code, 127);
  EXPECT_THAT(missing.out, HasSubstr("[rank 0] launch: cannot run /nonexistent/program"));
}

TEST(Entrypoint, HelpAndUnknownCommand) {
  CfRun help = RunCf("help");
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("preflight"));
  CfRun unknown = RunCf("frobnicate");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.out, HasSubstr("cf: unknown command 'frobnicate'"));
}

}  // namespace
}  // namespace cf::entrypoint
