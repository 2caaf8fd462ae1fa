// fake_hub_server: FakeHub (fake_hub.h) as a standalone process, to point huggingface_hub, the
// `hub` binary or curl at by hand:
//   bazel run //convforever/hub:fake_hub_server
//   HF_ENDPOINT=<printed endpoint> HF_TOKEN=<printed token> HF_HUB_DISABLE_XET=1 python ...
// Prints "endpoint=..." and "token=..." lines, serves until stdin reaches end of file or
// SIGINT/SIGTERM arrives, then prints the counters and every protocol violation; the exit code is
// 1 when there was a violation or a token sent to a presigned URL.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "convforever/hub/testing/fake_hub.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

DEFINE_int64(multipart_threshold, 2 * 1024 * 1024, "LFS objects this large go multipart");
DEFINE_int64(chunk_size, 1024 * 1024, "multipart part size");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before the server threads start

  cf::hub::testing::FakeHubOptions options;
  options.multipart_threshold = FLAGS_multipart_threshold;
  options.chunk_size = FLAGS_chunk_size;
  auto hub = cf::hub::testing::FakeHub::Start(options);
  if (!hub.ok()) {
    std::cerr << "fake_hub_server: " << hub.status() << "\n";
    return 1;
  }
  std::cout << "endpoint=" << (*hub)->endpoint() << "\ntoken=" << options.token
            << "\nstorage=" << (*hub)->storage_url() << std::endl;

  // Wait for a signal or for stdin to close, whichever comes first.
  for (;;) {
    timespec tick{0, 200 * 1000 * 1000};
    if (sigtimedwait(&signals, nullptr, &tick) > 0) break;
    pollfd in{STDIN_FILENO, POLLIN, 0};
    if (poll(&in, 1, 0) > 0) {
      char buf[256];
      if (read(STDIN_FILENO, buf, sizeof(buf)) <= 0) break;
    }
  }
  const auto violations = (*hub)->violations();
  std::cout << "commits=" << (*hub)->commits() << " basic_puts=" << (*hub)->basic_puts()
            << " part_puts=" << (*hub)->part_puts() << " token_leaks=" << (*hub)->token_leaks()
            << " violations=" << violations.size() << std::endl;
  for (const std::string& v : violations) std::cout << "violation: " << v << "\n";
  return violations.empty() && (*hub)->token_leaks() == 0 ? 0 : 1;
}
