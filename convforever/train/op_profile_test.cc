// The --profile_steps window: its parser, the self-time arithmetic, and a real profile of LibTorch
// ops and a named region written to ops.json / trace.json.
#include "convforever/train/op_profile.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

TEST(ParseProfileSteps, AcceptsAWindowAndNamesTheFlagOnErrors) {
  absl::StatusOr<ProfileWindow> w = ParseProfileSteps("10:15");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->first, 10);
  EXPECT_EQ(w->end, 15);
  for (const char* bad : {"", "10", "5:5", "6:5", "-1:3", "a:b", "1:2:3", "1:"}) {
    absl::StatusOr<ProfileWindow> b = ParseProfileSteps(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_NE(b.status().message().find("--profile_steps"), std::string::npos) << b.status();
  }
}

const OpTime* Find(const std::vector<OpTime>& ops, const std::string& name) {
  for (const OpTime& t : ops) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// outer [0, 100) holds a [10, 30) and b [40, 90), and b holds a [50, 60); another thread's c runs
// [20, 70) without being anyone's child. Times in ns, results in us.
TEST(AggregateOpTimes, SelfTimeIsDurationLessDirectChildrenOnTheSameThread) {
  const std::vector<OpEvent> events = {
      {"a", 1, 50'000, 60'000}, {"outer", 1, 0, 100'000}, {"b", 1, 40'000, 90'000},
      {"a", 1, 10'000, 30'000}, {"c", 2, 20'000, 70'000},
  };
  const std::vector<OpTime> ops = AggregateOpTimes(events);
  ASSERT_EQ(ops.size(), 4u);
  const OpTime* outer = Find(ops, "outer");
  const OpTime* a = Find(ops, "a");
  const OpTime* b = Find(ops, "b");
  const OpTime* c = Find(ops, "c");
  ASSERT_TRUE(outer && a && b && c);
  EXPECT_DOUBLE_EQ(outer->total_us, 100);
  EXPECT_DOUBLE_EQ(outer->self_us, 100 - 20 - 50);
  EXPECT_DOUBLE_EQ(b->self_us, 50 - 10);
  EXPECT_EQ(a->calls, 2);
  EXPECT_DOUBLE_EQ(a->self_us, 30);
  EXPECT_DOUBLE_EQ(a->total_us, 30);
  EXPECT_DOUBLE_EQ(c->self_us, 50);
  // Sorted by self time.
  EXPECT_EQ(ops[0].name, "c");
  // The self times of one thread add up to its outermost event's duration.
  EXPECT_DOUBLE_EQ(outer->self_us + a->self_us + b->self_us, 100);
}

// Two events starting together: the longer one encloses the shorter.
TEST(AggregateOpTimes, SameStartTheLongerIsTheParent) {
  const std::vector<OpTime> ops =
      AggregateOpTimes({{"inner", 1, 0, 10'000}, {"parent", 1, 0, 30'000}});
  EXPECT_DOUBLE_EQ(Find(ops, "parent")->self_us, 20);
  EXPECT_DOUBLE_EQ(Find(ops, "inner")->self_us, 10);
}

TEST(OpProfiler, WritesOpsAndTraceForTheWindowOnly) {
  const std::string dir =
      (std::filesystem::path(::testing::TempDir()) / "op_profile_test").string();
  std::filesystem::remove_all(dir);
  OpProfiler profiler({/*first=*/1, /*end=*/3}, dir);
  const at::Tensor x = at::rand({64, 64});
  for (int64_t step = 0; step < 5; ++step) {
    profiler.BeforeStep(step);
    {
      RECORD_FUNCTION("cf::test_region", std::vector<c10::IValue>());
      at::Tensor y = at::mm(x, x);
      y = at::mm(y, x);
    }
    ASSERT_TRUE(profiler.AfterStep(step).ok());
  }
  std::ifstream in(dir + "/ops.json");
  ASSERT_TRUE(in.good()) << "no ops.json in " << dir;
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["steps"], 2);
  EXPECT_GT(j["wall_us"].get<double>(), 0);
  double region_total = -1, region_self = -1, mm_total = 0;
  int64_t mm_calls = 0, region_calls = 0;
  for (const auto& op : j["ops"]) {
    EXPECT_LE(op["self_us"].get<double>(), op["total_us"].get<double>() + 1e-6) << op;
    if (op["name"] == "cf::test_region") {
      region_calls = op["calls"];
      region_total = op["total_us"];
      region_self = op["self_us"];
    }
    if (op["name"] == "aten::mm") {
      mm_calls = op["calls"];
      mm_total = op["total_us"];
    }
  }
  // Steps 1 and 2 only: two regions, four matrix products.
  EXPECT_EQ(region_calls, 2);
  EXPECT_EQ(mm_calls, 4);
  EXPECT_NEAR(region_self, region_total - mm_total, 1e-3 * region_total + 1);
  std::ifstream trace(dir + "/trace.json");
  ASSERT_TRUE(trace.good());
  const nlohmann::json t = nlohmann::json::parse(trace, nullptr, false);
  ASSERT_FALSE(t.is_discarded()) << "trace.json is not JSON";
  EXPECT_TRUE(t.contains("traceEvents"));
}

}  // namespace
}  // namespace cf::train
