// caption_benchmark: classifier throughput and rate-limiter accuracy against a local
// OpenAI-compatible server (testing/fake_openai.h) that answers after --latency_ms.
//
//  1. captions/s: --records unique captions, --concurrency in flight, no limiter, no cache, the
//     full pipeline (prompt, HTTP, parse, ordered JSONL output, shards). Target >= 1000/s at 64.
//     Side by side: tools/bench/caption_reference.py (thread pool of blocking Python HTTP clients,
//     the original tool's approach) against the same server in the same run.
//  2. limiter: --rpm_records captions at --requests_per_minute; the achieved request rate measured
//     at the server (arrival times of the first and last request) vs the setting (target: within 5%).
// Run from the repository root: bazel-bin/convforever/caption/caption_benchmark
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "convforever/caption/categories.h"
#include "convforever/caption/classifier.h"
#include "convforever/caption/testing/fake_openai.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

DEFINE_int32(records, 6000, "captions for the throughput run");
DEFINE_int32(concurrency, 64, "requests in flight");
DEFINE_int32(latency_ms, 20, "server answer latency");
DEFINE_double(requests_per_minute, 3000, "limiter setting for the rate run");
DEFINE_int32(rpm_records, 300, "captions for the rate run");
DEFINE_bool(reference, true, "also run tools/bench/caption_reference.py (/usr/bin/python3)");

namespace {

using cf::caption::ClassifierOptions;

std::string Input(int n, const std::string& tag) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&s, "{\"id\":\"", tag, i, "\",\"caption\":\"a dog photo number ", i, " ", tag, "\"}\n");
  }
  return s;
}

ClassifierOptions Options(const std::string& base_url, const std::string& dir) {
  ClassifierOptions o;
  o.base_url = base_url;
  o.prompt.model = "bench";
  auto categories = cf::caption::LoadCategories("convforever/caption/data/categories.txt");
  CHECK(categories.ok()) << categories.status() << " (run from the repository root)";
  o.categories = *categories;
  o.concurrency = FLAGS_concurrency;
  o.progress = false;
  o.output = {.path = dir + "/out.jsonl", .shard_dir = dir + "/shards", .sync_every = 1000};
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  auto fake = cf::caption::testing::FakeOpenAi::Start({.latency = absl::Milliseconds(FLAGS_latency_ms)});
  CHECK(fake.ok()) << fake.status();
  char tmpl[] = "/tmp/caption_benchmark.XXXXXX";
  const std::string root = mkdtemp(tmpl);

  // 1. Throughput.
  const std::string dir1 = root + "/throughput";
  mkdir(dir1.c_str(), 0755);
  ClassifierOptions o = Options((*fake)->base_url(), dir1);
  o.requests_per_minute = 0;
  std::istringstream in1(Input(FLAGS_records, "t"));
  cf::caption::ClassifySummary s1;
  absl::Status st = cf::caption::RunClassifier(o, in1, "bench", nullptr, &s1);
  CHECK(st.ok()) << st;
  CHECK_EQ(s1.labeled, FLAGS_records) << s1.Format();
  const double cps = s1.written / s1.wall_seconds;
  std::printf("caption throughput: %d captions, concurrency %d, server latency %d ms: %.0f captions/s "
              "(%.2f s wall, target >= 1000)\n",
              FLAGS_records, FLAGS_concurrency, FLAGS_latency_ms, cps, s1.wall_seconds);

  if (FLAGS_reference) {
    const std::string cmd = absl::StrCat("/usr/bin/python3 tools/bench/caption_reference.py ", (*fake)->base_url(), " ",
                                         FLAGS_records, " ", FLAGS_concurrency);
    FILE* p = popen(cmd.c_str(), "r");
    double ref = 0;
    if (p != nullptr && std::fscanf(p, "captions_per_s %lf", &ref) == 1 && ref > 0) {
      std::printf("python reference (thread pool, http.client): %.0f captions/s -> C++/Python %.2fx\n", ref, cps / ref);
    } else {
      std::printf("python reference: not run (%s failed)\n", cmd.c_str());
    }
    if (p != nullptr) pclose(p);
  }

  // 2. Limiter accuracy, measured where it matters: request arrivals at the server.
  (*fake)->server().ClearRequests();
  const std::string dir2 = root + "/rate";
  mkdir(dir2.c_str(), 0755);
  ClassifierOptions o2 = Options((*fake)->base_url(), dir2);
  o2.requests_per_minute = FLAGS_requests_per_minute;
  std::istringstream in2(Input(FLAGS_rpm_records, "r"));
  cf::caption::ClassifySummary s2;
  st = cf::caption::RunClassifier(o2, in2, "bench", nullptr, &s2);
  CHECK(st.ok()) << st;
  const auto reqs = (*fake)->server().requests();
  CHECK_GE(reqs.size(), 2u);
  absl::Time first = reqs.front().received, last = reqs.front().received;
  for (const auto& r : reqs) {
    first = std::min(first, r.received);
    last = std::max(last, r.received);
  }
  const double achieved = (reqs.size() - 1) / absl::ToDoubleSeconds(last - first) * 60.0;
  const double err = (achieved - FLAGS_requests_per_minute) / FLAGS_requests_per_minute * 100.0;
  std::printf("limiter: set %.0f requests/min, achieved %.1f requests/min over %zu requests (%+.2f%%, target within 5%%)\n",
              FLAGS_requests_per_minute, achieved, reqs.size(), err);
  const std::string rm = "rm -rf " + root;
  if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", root.c_str());
  return 0;
}
