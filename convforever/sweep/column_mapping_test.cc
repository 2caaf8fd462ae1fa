#include "convforever/sweep/column_mapping.h"

#include <string>

#include "convforever/sweep/csv.h"
#include "gtest/gtest.h"

namespace cf::sweep {
namespace {

// A trainer's flags as --helpxml types them (the real binary's are read in trainer_flags_test).
TrainerFlags SomeTrainerFlags() {
  return {{"depth", "int32"},          {"micro_batch_size", "int64"},
          {"gradient_accumulation_steps", "int64"},
          {"enable_gradient_checkpointing", "bool"},
          {"lr", "double"},            {"weight_decay", "double"},
          {"lr_scheduler_type", "string"}, {"warmup_epochs", "double"},
          {"drop_path_rate", "double"}, {"label_smoothing", "double"},
          {"gradient_clipping", "double"}, {"precision", "string"},
          {"optimizer", "string"},     {"seed", "uint64"},
          {"ema_decay", "double"},     {"run_dir", "string"},
          {"resume", "string"},        {"flagfile", "string"},
          {"model", "string"},         {"hflip", "bool"}};
}

CsvTable Table(const std::string& text) {
  absl::StatusOr<CsvTable> t = ParseCsv(text, "t.csv");
  EXPECT_TRUE(t.ok()) << t.status();
  return *t;
}

std::vector<std::string> Args(const std::vector<FlagValue>& flags) {
  std::vector<std::string> out;
  for (const FlagValue& f : flags) out.push_back(f.Arg());
  return out;
}

TEST(MapColumns, TheResearchTableMapsToTheOriginalToolsFlags) {
  const CsvTable t = Table(
      "approx_num_layers,precision,per_device_train_batch_size,gradient_accumulation_steps,"
      "enable_gradient_checkpointing,optimizer,learning_rate,weight_decay,lr_scheduler_type,"
      "warmup_epochs,drop_path_rate,label_smoothing,gradient_clipping\n"
      "50,BF16,8,2,True,AdamW,1e-4,0.01,Cosine,5,0.1,0.1,1.0\n");
  absl::StatusOr<std::vector<std::string>> map = MapColumns(t.header, SomeTrainerFlags(), "t.csv");
  ASSERT_TRUE(map.ok()) << map.status();
  absl::StatusOr<std::vector<FlagValue>> flags = RowFlags(t, 0, *map, SomeTrainerFlags(), "t.csv");
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(Args(*flags),
            (std::vector<std::string>{
                "--depth=50", "--precision=bf16", "--micro_batch_size=8",
                "--gradient_accumulation_steps=2", "--enable_gradient_checkpointing=true",
                "--optimizer=adamw", "--lr=1e-4", "--weight_decay=0.01",
                "--lr_scheduler_type=cosine", "--warmup_epochs=5", "--drop_path_rate=0.1",
                "--label_smoothing=0.1", "--gradient_clipping=1.0"}));
}

TEST(MapColumns, TrueFalseInAnyCase) {
  const CsvTable t = Table("enable_gradient_checkpointing,hflip\nTrue,FALSE\nfalse,TRUE\n1,0\n");
  absl::StatusOr<std::vector<std::string>> map = MapColumns(t.header, SomeTrainerFlags(), "t.csv");
  ASSERT_TRUE(map.ok()) << map.status();
  std::vector<std::vector<std::string>> got;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    absl::StatusOr<std::vector<FlagValue>> flags = RowFlags(t, r, *map, SomeTrainerFlags(), "t.csv");
    ASSERT_TRUE(flags.ok()) << flags.status();
    got.push_back(Args(*flags));
  }
  EXPECT_EQ(got[0], (std::vector<std::string>{"--enable_gradient_checkpointing=true", "--hflip=false"}));
  EXPECT_EQ(got[1], (std::vector<std::string>{"--enable_gradient_checkpointing=false", "--hflip=true"}));
  EXPECT_EQ(got[2], (std::vector<std::string>{"--enable_gradient_checkpointing=true", "--hflip=false"}));
}

TEST(MapColumns, AColumnNamedLikeATrainerFlagPassesAsIs) {
  const CsvTable t = Table("model,seed,ema_decay\nconvforever,7,0.999\n");
  absl::StatusOr<std::vector<std::string>> map = MapColumns(t.header, SomeTrainerFlags(), "t.csv");
  ASSERT_TRUE(map.ok()) << map.status();
  absl::StatusOr<std::vector<FlagValue>> flags = RowFlags(t, 0, *map, SomeTrainerFlags(), "t.csv");
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(Args(*flags), (std::vector<std::string>{"--model=convforever", "--seed=7",
                                                     "--ema_decay=0.999"}));
}

TEST(MapColumns, UnknownColumnsAreNamedAndTheKnownOnesListed) {
  const CsvTable t = Table("approx_num_layers,num_epochs,learning_rate,per_device_eval_batch\n1,2,3,4\n");
  absl::StatusOr<std::vector<std::string>> map = MapColumns(t.header, SomeTrainerFlags(), "s.csv");
  ASSERT_FALSE(map.ok());
  const std::string msg(map.status().message());
  EXPECT_NE(msg.find("s.csv: unknown column(s) 'num_epochs', 'per_device_eval_batch'"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("approx_num_layers (--depth)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("learning_rate (--lr)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ema_decay"), std::string::npos) << msg;  // a trainer flag
  EXPECT_EQ(msg.find("flagfile"), std::string::npos) << msg;   // not offered
}

TEST(MapColumns, FlagsOfTheSweepAndGflagsCannotBeColumns) {
  for (const char* column : {"run_dir", "resume", "flagfile"}) {
    const CsvTable t = Table(std::string("lr,") + column + "\n1,x\n");
    absl::StatusOr<std::vector<std::string>> map = MapColumns(t.header, SomeTrainerFlags(), "t.csv");
    ASSERT_FALSE(map.ok()) << column;
    EXPECT_NE(map.status().message().find(column), std::string::npos) << map.status();
  }
}

TEST(MapColumns, TwoColumnsForOneFlag) {
  const CsvTable t = Table("learning_rate,lr\n1,2\n");
  absl::StatusOr<std::vector<std::string>> map = MapColumns(t.header, SomeTrainerFlags(), "t.csv");
  ASSERT_FALSE(map.ok());
  EXPECT_NE(map.status().message().find("--lr"), std::string::npos) << map.status();
}

TEST(RowFlags, BadValuesNameLineAndColumn) {
  const CsvTable t = Table("approx_num_layers,enable_gradient_checkpointing,learning_rate\n"
                           "20,True,1e-4\n"
                           "20.5,True,1e-4\n"
                           "20,maybe,1e-4\n"
                           "20,False,fast\n");
  absl::StatusOr<std::vector<std::string>> map = MapColumns(t.header, SomeTrainerFlags(), "t.csv");
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_TRUE(RowFlags(t, 0, *map, SomeTrainerFlags(), "t.csv").ok());
  const struct {
    size_t row;
    const char* where;
  } cases[] = {{1, "t.csv:3: column 'approx_num_layers': --depth is an integer: got '20.5'"},
               {2, "t.csv:4: column 'enable_gradient_checkpointing': --enable_gradient_checkpointing "
                   "is a boolean: expected True or False, got 'maybe'"},
               {3, "t.csv:5: column 'learning_rate': --lr is a number: got 'fast'"}};
  for (const auto& c : cases) {
    absl::StatusOr<std::vector<FlagValue>> flags = RowFlags(t, c.row, *map, SomeTrainerFlags(), "t.csv");
    ASSERT_FALSE(flags.ok()) << c.where;
    EXPECT_EQ(flags.status().message(), c.where);
  }
}

TEST(RowFlags, EmptyCellLeavesTheRecipesValue) {
  const CsvTable t = Table("approx_num_layers,learning_rate\n20,\n,1e-3\n");
  absl::StatusOr<std::vector<std::string>> map = MapColumns(t.header, SomeTrainerFlags(), "t.csv");
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(Args(*RowFlags(t, 0, *map, SomeTrainerFlags(), "t.csv")),
            (std::vector<std::string>{"--depth=20"}));
  EXPECT_EQ(Args(*RowFlags(t, 1, *map, SomeTrainerFlags(), "t.csv")),
            (std::vector<std::string>{"--lr=1e-3"}));
}

}  // namespace
}  // namespace cf::sweep
