#include "convforever/sweep/run_name.h"

#include <set>

#include "gtest/gtest.h"

namespace cf::sweep {
namespace {

TEST(RunName, RowShortKeysAndHash) {
  const std::vector<FlagValue> flags = {{"depth", "20"}, {"micro_batch_size", "32"},
                                        {"gradient_accumulation_steps", "1"}, {"lr", "1e-4"},
                                        {"weight_decay", "0.01"}};
  const std::string name = RunName(3, flags, "identity");
  EXPECT_EQ(name.substr(0, name.size() - 8), "03-d20-b32x1-lr1e-4-");
  const std::string hash = name.substr(name.size() - 8);
  EXPECT_EQ(hash.find_first_not_of("0123456789abcdef"), std::string::npos) << name;
  EXPECT_EQ(RunName(123, flags, "identity").substr(0, 4), "123-");
}

TEST(RunName, LaterFlagsWinAndMissingKeysAreLeftOut) {
  const std::string a = RunName(0, {{"depth", "20"}, {"depth", "4"}, {"micro_batch_size", "8"}}, "x");
  EXPECT_EQ(a.substr(0, a.size() - 8), "00-d4-b8-");
  const std::string b = RunName(1, {{"weight_decay", "0.1"}}, "x");
  EXPECT_EQ(b.size(), std::string("01-").size() + 8);
  const std::string c = RunName(2, {{"lr", "1e-3/bad name"}}, "x");
  EXPECT_EQ(c.substr(0, c.size() - 8), "02-lr1e-3_bad_name-");
}

// The hash is of the identity: rows that agree on their short keys but not on the rest get
// different names, and the name of one identity never changes (run dirs are found again).
TEST(RunName, HashSeparatesIdentitiesAndIsStable) {
  const std::vector<FlagValue> flags = {{"depth", "20"}};
  std::set<std::string> names;
  for (const char* identity : {"--weight_decay=0.01", "--weight_decay=1e-4", "--lr=1", ""}) {
    names.insert(RunName(0, flags, identity).substr(7));
  }
  EXPECT_EQ(names.size(), 4u);
  EXPECT_EQ(RunName(0, flags, "--weight_decay=0.01"), RunName(0, flags, "--weight_decay=0.01"));
  // FNV-1a 64 reference values (the offset basis for "", and "a").
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
}

}  // namespace
}  // namespace cf::sweep
