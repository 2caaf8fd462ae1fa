// ChooseIntraOpThreads: the machine's cores divided among the ranks launched on it, less the data
// workers, at least 1; an explicit --threads or OMP_NUM_THREADS wins.
#include "convforever/train/threads.h"

#include "gtest/gtest.h"

namespace cf::train {
namespace {

ThreadInputs Machine(int cores, int local_world_size, int num_workers) {
  ThreadInputs in;
  in.cores = cores;
  in.local_world_size = local_world_size;
  in.num_workers = num_workers;
  return in;
}

TEST(IntraOpThreads, OneRankTakesTheMachineLessItsWorkers) {
  EXPECT_EQ(ChooseIntraOpThreads(Machine(16, 1, 1)).threads, 16);
  EXPECT_EQ(ChooseIntraOpThreads(Machine(16, 1, 2)).threads, 15);
  EXPECT_EQ(ChooseIntraOpThreads(Machine(2, 1, 2)).threads, 1);  // 2 cores: one thread measured faster
}

TEST(IntraOpThreads, LocalRanksShareTheCores) {
  // 8 ranks on 16 cores: 2 each, so 1 thread (not 8 x 15).
  const ThreadChoice eight = ChooseIntraOpThreads(Machine(16, 8, 2));
  EXPECT_EQ(eight.threads, 1);
  EXPECT_NE(eight.why.find("16 cores / 8 local ranks = 2 per rank"), std::string::npos) << eight.why;
  EXPECT_EQ(ChooseIntraOpThreads(Machine(16, 2, 2)).threads, 7);   // 8 per rank less 1 worker
  EXPECT_EQ(ChooseIntraOpThreads(Machine(64, 4, 1)).threads, 16);
  EXPECT_EQ(ChooseIntraOpThreads(Machine(4, 8, 2)).threads, 1);    // more ranks than cores: 1
  EXPECT_EQ(ChooseIntraOpThreads(Machine(16, 0, 1)).threads, 16);  // nonsense size: one rank
}

TEST(IntraOpThreads, LightDataGivesTheWorkersCoresToCompute) {
  ThreadInputs in = Machine(2, 1, 1);
  in.light_data = true;
  const ThreadChoice two = ChooseIntraOpThreads(in);
  EXPECT_EQ(two.threads, 2);
  EXPECT_NE(two.why.find("in-memory data"), std::string::npos) << two.why;
  in = Machine(16, 2, 4);
  in.light_data = true;
  EXPECT_EQ(ChooseIntraOpThreads(in).threads, 8);  // the rank's share, workers not subtracted
  in = Machine(2, 2, 1);
  in.light_data = true;
  EXPECT_EQ(ChooseIntraOpThreads(in).threads, 1);  // 2 ranks on 2 cores: still one each
}

TEST(IntraOpThreads, ExplicitSettingsWin) {
  ThreadInputs in = Machine(16, 8, 2);
  in.omp_num_threads = "3";
  EXPECT_EQ(ChooseIntraOpThreads(in).threads, 3);
  EXPECT_NE(ChooseIntraOpThreads(in).why.find("OMP_NUM_THREADS"), std::string::npos);
  in.threads_flag = 5;  // --threads beats the environment
  EXPECT_EQ(ChooseIntraOpThreads(in).threads, 5);
  EXPECT_NE(ChooseIntraOpThreads(in).why.find("--threads"), std::string::npos);
  in = Machine(16, 8, 2);
  in.omp_num_threads = "";  // set but empty or not a count: not a choice
  EXPECT_EQ(ChooseIntraOpThreads(in).threads, 1);
  in.omp_num_threads = "many";
  EXPECT_EQ(ChooseIntraOpThreads(in).threads, 1);
}

}  // namespace
}  // namespace cf::train
