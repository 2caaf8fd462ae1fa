#include "convforever/base/status_macros.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace cf::base {
namespace {

absl::Status FailIf(bool fail) {
  return fail ? absl::InvalidArgumentError("bad input") : absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<int>> MakeInt(bool fail, int value) {
  if (fail) return absl::NotFoundError("no int");
  return std::make_unique<int>(value);
}

absl::Status Chain(bool fail_first, bool fail_second, int* steps) {
  RETURN_IF_ERROR(FailIf(fail_first));
  ++*steps;
  RETURN_IF_ERROR(FailIf(fail_second));
  ++*steps;
  return absl::OkStatus();
}

absl::StatusOr<int> Sum(bool fail_a, bool fail_b) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> a, MakeInt(fail_a, 2));  // move-only value
  ASSIGN_OR_RETURN(auto b, MakeInt(fail_b, 3));                  // two on one function: unique names
  return *a + *b;
}

TEST(StatusMacros, ReturnIfErrorStopsAtFirstError) {
  int steps = 0;
  EXPECT_TRUE(Chain(false, false, &steps).ok());
  EXPECT_EQ(steps, 2);
  steps = 0;
  absl::Status s = Chain(false, true, &steps);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "bad input");
  EXPECT_EQ(steps, 1);
  steps = 0;
  EXPECT_FALSE(Chain(true, false, &steps).ok());
  EXPECT_EQ(steps, 0);
}

TEST(StatusMacros, AssignOrReturnMovesValueOrPropagates) {
  absl::StatusOr<int> ok = Sum(false, false);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 5);
  absl::StatusOr<int> bad = Sum(false, true);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Sum(true, false).status().message(), "no int");
}

TEST(StatusMacros, EvaluatesExpressionOnce) {
  int calls = 0;
  auto counted = [&]() -> absl::StatusOr<int> { return ++calls; };
  auto run = [&]() -> absl::Status {
    int x = 0;
    ASSIGN_OR_RETURN(x, counted());  // assigns to an existing variable
    EXPECT_EQ(x, 1);
    RETURN_IF_ERROR(counted().status());
    return absl::OkStatus();
  };
  EXPECT_TRUE(run().ok());
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace cf::base
