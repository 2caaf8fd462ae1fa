#include "convforever/sweep/trainer_flags.h"

#include "gtest/gtest.h"

namespace cf::sweep {
namespace {

TEST(ParseHelpXml, NamesAndTypes) {
  absl::StatusOr<TrainerFlags> flags = ParseHelpXml(
      "<?xml version=\"1.0\"?>\n<AllFlags>\n<program>train</program>\n"
      "<flag><file>main.cc</file><name>depth</name><meaning>blocks &lt;n&gt;</meaning>"
      "<default>0</default><current>0</current><type>int32</type></flag>\n"
      "<flag><file>main.cc</file><name>hflip</name><meaning>flip</meaning><default>true</default>"
      "<current>true</current><type>bool</type></flag>\n</AllFlags>\n");
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(*flags, (TrainerFlags{{"depth", "int32"}, {"hflip", "bool"}}));
}

TEST(ParseHelpXml, NothingUsableIsAnError) {
  EXPECT_FALSE(ParseHelpXml("").ok());
  EXPECT_FALSE(ParseHelpXml("usage: train [flags]\n").ok());
  EXPECT_FALSE(ParseHelpXml("<flag><type>int32</type></flag>").ok());
  EXPECT_FALSE(ParseHelpXml("<flag><name>x</name>").ok());
}

// The real trainer binary: the flags a sweep table uses are there with the types gflags gives.
TEST(QueryTrainerFlags, TheRealTrainer) {
  absl::StatusOr<TrainerFlags> flags = QueryTrainerFlags("convforever/train/train");
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(flags->at("depth"), "int32");
  EXPECT_EQ(flags->at("micro_batch_size"), "int64");
  EXPECT_EQ(flags->at("enable_gradient_checkpointing"), "bool");
  EXPECT_EQ(flags->at("lr"), "double");
  EXPECT_EQ(flags->at("optimizer"), "string");
  EXPECT_EQ(flags->count("run_dir"), 1u);
}

TEST(QueryTrainerFlags, MissingBinarySaysHowToBuildIt) {
  absl::StatusOr<TrainerFlags> flags = QueryTrainerFlags("convforever/train/no_such_train");
  ASSERT_FALSE(flags.ok());
  EXPECT_NE(flags.status().message().find("bazel build //convforever/train:train"),
            std::string::npos)
      << flags.status();
  // A binary that prints no flags.
  absl::StatusOr<TrainerFlags> not_gflags = QueryTrainerFlags("/bin/true");
  ASSERT_FALSE(not_gflags.ok());
  EXPECT_NE(not_gflags.status().message().find("/bin/true --helpxml"), std::string::npos);
}

}  // namespace
}  // namespace cf::sweep
