// Communicator over real processes on 127.0.0.1 (Gloo): every collective, at 2 and 3 ranks.
#include "convforever/distributed/communicator.h"

#include <chrono>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "convforever/distributed/multiprocess_harness.h"
#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

using testing::RunRanks;
constexpr char kWorker[] = "convforever/distributed/dist_test_worker";

void ExpectAllOk(const std::vector<testing::RankResult>& results) {
  for (size_t r = 0; r < results.size(); ++r) {
    EXPECT_EQ(results[r].exit_code, 0) << "rank " << r << " stderr:\n" << results[r].err;
  }
}

TEST(Communicator, CollectivesTwoRanks) { ExpectAllOk(RunRanks(kWorker, 2, {"--mode=collectives"})); }

TEST(Communicator, CollectivesThreeRanks) { ExpectAllOk(RunRanks(kWorker, 3, {"--mode=collectives"})); }

TEST(Communicator, ConnectsToTorchrunAgentStoreAsClient) {
  // Plays torchrun's agent: it serves the store on MASTER_PORT, so a rank that tried to bind
  // that port itself would fail; ranks keep their keys under /worker/attempt_<restart count>.
  c10d::TCPStoreOptions opts;
  opts.port = 0;
  opts.isServer = true;
  opts.waitWorkers = false;
  opts.timeout = std::chrono::seconds(30);
  auto agent_store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", opts);
  auto results = RunRanks(kWorker, 2, {"--mode=collectives"}, 50, 20, agent_store->getPort(),
                          {{"TORCHELASTIC_USE_AGENT_STORE", "True"},
                           {"TORCHELASTIC_RESTART_COUNT", "1"},
                           {"TORCHELASTIC_RUN_ID", "test"}});
  ExpectAllOk(results);
  EXPECT_TRUE(agent_store->check({"/worker/attempt_1/cf_heartbeat/1"}));
}

TEST(Communicator, OneRankIsLocal) {
  LaunchEnv env;
  auto comm = Communicator::Create(env, {});
  ASSERT_TRUE(comm.ok()) << comm.status();
  EXPECT_EQ((*comm)->backend_name(), "local");
  at::Tensor in = at::arange(4, at::kFloat), out = at::empty({4});
  ASSERT_TRUE((*comm)->ReduceScatterSum(in, out).ok());
  EXPECT_TRUE(at::equal(in, out));
}

TEST(Communicator, BadBackendIsAnError) {
  CommOptions options;
  options.backend = "mpi";
  auto comm = Communicator::Create(LaunchEnv{}, options);
  ASSERT_FALSE(comm.ok());
  EXPECT_NE(comm.status().message().find("unknown backend 'mpi'"), std::string::npos);
#ifndef CF_WITH_CUDA
  options.backend = "nccl";
  comm = Communicator::Create(LaunchEnv{}, options);
  ASSERT_FALSE(comm.ok());
  EXPECT_NE(comm.status().message().find("needs a CUDA build"), std::string::npos);
#endif
}

}  // namespace
}  // namespace cf::distributed
