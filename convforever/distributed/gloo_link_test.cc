// Foundation check: c10d's TCPStore and ProcessGroupGloo (inside libtorch_cpu) link and work.
// Two real processes rendezvous over 127.0.0.1 and all-reduce a tensor; the full Communicator
// with timeouts, bucketing and NCCL lives in this package's other targets.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

// Runs one rank; returns a process exit code (0 = the all-reduce gave the expected sum).
int RunRank(int rank, int world_size, uint16_t* port, int port_pipe[2]) {
  try {
    c10d::TCPStoreOptions opts;
    opts.isServer = rank == 0;
    opts.numWorkers = world_size;
    opts.timeout = std::chrono::seconds(30);
    if (rank == 0) {
      opts.port = 0;  // the kernel picks a free port; rank 1 learns it through the pipe
      // ...which it can only do once this constructor returns, so rank 0 must not wait here
      // for the other workers to join.
      opts.waitWorkers = false;
      auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", opts);
      *port = store->getPort();
      if (write(port_pipe[1], port, sizeof(*port)) != sizeof(*port)) return 10;
      auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::seconds(30));
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      c10d::ProcessGroupGloo pg(store, rank, world_size, options);
      std::vector<at::Tensor> tensors = {at::full({1000}, 1.0f + rank)};
      pg.allreduce(tensors)->wait();
      return at::allclose(tensors[0], at::full({1000}, 3.0f)) ? 0 : 11;
    }
    if (read(port_pipe[0], port, sizeof(*port)) != sizeof(*port)) return 12;
    opts.port = *port;
    auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", opts);
    auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::seconds(30));
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    c10d::ProcessGroupGloo pg(store, rank, world_size, options);
    std::vector<at::Tensor> tensors = {at::full({1000}, 1.0f + rank)};
    pg.allreduce(tensors)->wait();
    return at::allclose(tensors[0], at::full({1000}, 3.0f)) ? 0 : 13;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    return 14;
  }
}

TEST(GlooLink, TwoProcessAllReduceOverLoopback) {
  int port_pipe[2];
  ASSERT_EQ(pipe(port_pipe), 0);
  pid_t pids[2];
  for (int rank = 0; rank < 2; ++rank) {
    pids[rank] = fork();
    ASSERT_GE(pids[rank], 0);
    if (pids[rank] == 0) {
      uint16_t port = 0;
      _exit(RunRank(rank, 2, &port, port_pipe));
    }
  }
  for (int rank = 0; rank < 2; ++rank) {
    int wstatus = 0;
    ASSERT_EQ(waitpid(pids[rank], &wstatus, 0), pids[rank]);
    ASSERT_TRUE(WIFEXITED(wstatus)) << "rank " << rank << " died";
    EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "rank " << rank;
  }
}

}  // namespace
}  // namespace cf::distributed
