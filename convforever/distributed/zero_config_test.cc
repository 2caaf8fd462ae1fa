#include "convforever/distributed/zero_config.h"

#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

TEST(ZeroConfig, ExampleConvForeverConfig) {
  // /work/shared/examples/ds_config_convforever.json, abridged.
  auto o = ZeroOptionsFromDeepSpeedJson(R"({
    "train_batch_size": "auto", "fp16": {"enabled": true},
    "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu", "pin_memory": true},
                          "contiguous_gradients": true, "overlap_comm": false}})", "ds.json");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->stage, 2);
  EXPECT_TRUE(o->offload_optimizer);
}

TEST(ZeroConfig, MissingSectionIsPlainDataParallel) {
  auto o = ZeroOptionsFromDeepSpeedJson(R"({"train_batch_size": 8})", "ds.json");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->stage, 0);
  EXPECT_FALSE(o->offload_optimizer);
  o = ZeroOptionsFromDeepSpeedJson(R"({"zero_optimization": {"stage": 1, "offload_optimizer": {"device": "none"}}})", "x");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->stage, 1);
  EXPECT_FALSE(o->offload_optimizer);
}

TEST(ZeroConfig, BadInputsNameFileAndKey) {
  struct Case {
    const char* json;
    const char* message;
  } cases[] = {
      {"{", "cfg.json: not a JSON object"},
      {"[1]", "cfg.json: not a JSON object"},
      {R"({"zero_optimization": 2})", "cfg.json: zero_optimization must be an object"},
      {R"({"zero_optimization": {"stage": "2"}})", "zero_optimization.stage must be an integer"},
      {R"({"zero_optimization": {"stage": 3}})", "stage 3 (parameter sharding) is not implemented"},
      {R"({"zero_optimization": {"stage": 7}})", "stage 7 is not 0, 1 or 2"},
      {R"({"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "nvme"}}})", "device 'nvme' is not supported"},
      {R"({"zero_optimization": {"stage": 2, "offload_optimizer": true}})", "offload_optimizer must be"},
  };
  for (const Case& c : cases) {
    auto o = ZeroOptionsFromDeepSpeedJson(c.json, "cfg.json");
    ASSERT_FALSE(o.ok()) << c.json;
    EXPECT_NE(o.status().message().find(c.message), std::string::npos) << o.status();
  }
}

TEST(ZeroConfig, MissingFileIsNamed) {
  auto o = ZeroOptionsFromDeepSpeedConfigFile("/nonexistent/ds.json");
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("/nonexistent/ds.json"), std::string::npos);
}

}  // namespace
}  // namespace cf::distributed
