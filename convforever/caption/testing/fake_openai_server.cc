// fake_openai_server: FakeOpenAi (fake_openai.h) as a standalone process, for peers that are not
// C++ (the real `openai` Python client in openai_client_test.sh) to talk to.
//
//   FAKE_OPENAI_API_KEY=sk-test fake_openai_server --url_file=/tmp/url [--latency_ms=0]
//
// Binds 127.0.0.1 on an ephemeral port, writes its base URL (".../v1", no newline) to --url_file
// atomically (a reader sees the whole URL or no file), and serves until SIGTERM or SIGINT. The
// expected API key comes from the environment (unset or empty: no key check).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "convforever/caption/testing/fake_openai.h"
#include "gflags/gflags.h"

DEFINE_string(url_file, "", "where to write the base URL once listening (required)");
DEFINE_int32(latency_ms, 0, "added to every answer");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_url_file.empty()) {
    std::cerr << "fake_openai_server: --url_file is required\n";
    return 2;
  }
  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  const char* key = std::getenv("FAKE_OPENAI_API_KEY");
  auto fake = cf::caption::testing::FakeOpenAi::Start(
      {.api_key = key != nullptr ? key : "", .latency = absl::Milliseconds(FLAGS_latency_ms)});
  if (!fake.ok()) {
    std::cerr << "fake_openai_server: " << fake.status() << "\n";
    return 1;
  }
  const std::string tmp = FLAGS_url_file + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr || std::fputs((*fake)->base_url().c_str(), f) < 0 || std::fclose(f) != 0 ||
      std::rename(tmp.c_str(), FLAGS_url_file.c_str()) != 0) {
    std::cerr << "fake_openai_server: cannot write --url_file " << FLAGS_url_file << "\n";
    return 1;
  }
  int sig = 0;
  sigwait(&stop, &sig);
  (*fake)->Stop();
  return 0;
}
