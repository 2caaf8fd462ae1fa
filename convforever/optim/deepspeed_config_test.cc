// DeepSpeed config parsing: the two shipped example configs (testdata/ds_config_*.json, copied
// from the original project's examples) with their "auto" values resolved from flags, a config
// using every supported key, and every bad input rejected with an error naming the key.
#include "convforever/optim/deepspeed_config.h"

#include <cstdlib>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::optim {
namespace {

std::string Testdata(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  std::string rel = "convforever/optim/testdata/" + name;
  return srcdir && ws ? std::string(srcdir) + "/" + ws + "/" + rel : rel;
}

TEST(DeepSpeedConfig, BasicCnnExample) {
  auto c = ParseDeepSpeedConfig(Testdata("ds_config_basic_cnn.json"), {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->train_batch_size, 32);
  EXPECT_EQ(c->micro_batch_per_gpu, 32);
  EXPECT_EQ(c->gradient_accumulation_steps, 1);
  ASSERT_TRUE(c->has_optimizer);
  EXPECT_EQ(c->optimizer.type, "adamw");  // DeepSpeed's Adam defaults to adam_w_mode
  EXPECT_DOUBLE_EQ(c->optimizer.lr, 1e-3);
  EXPECT_FALSE(c->has_scheduler);
  EXPECT_TRUE(c->fp16);
  EXPECT_TRUE(c->loss_scaler.enabled);
  EXPECT_TRUE(c->loss_scaler.dynamic);
  EXPECT_EQ(c->loss_scaler.init_scale, 65536.0);  // DeepSpeed defaults
  EXPECT_EQ(c->loss_scaler.growth_interval, 1000);
  EXPECT_EQ(c->loss_scaler.hysteresis, 2);
  EXPECT_EQ(c->loss_scaler.min_scale, 1.0);
  EXPECT_TRUE(c->unsupported_keys.empty());

  // Fixed sizes that disagree with the world size are a contradiction, as in DeepSpeed.
  DeepSpeedAutoValues two_gpus;
  two_gpus.world_size = 2;
  auto bad = ParseDeepSpeedConfig(Testdata("ds_config_basic_cnn.json"), two_gpus);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("train_batch_size (32) != "), std::string::npos)
      << bad.status();
}

TEST(DeepSpeedConfig, ConvForeverExampleResolvesAuto) {
  DeepSpeedAutoValues f;
  f.micro_batch = 64;
  f.grad_accum = 2;
  f.world_size = 4;
  auto c = ParseDeepSpeedConfig(Testdata("ds_config_convforever.json"), f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->train_batch_size, 512);
  EXPECT_EQ(c->micro_batch_per_gpu, 64);
  EXPECT_EQ(c->gradient_accumulation_steps, 2);
  EXPECT_DOUBLE_EQ(c->optimizer.lr, 3e-4);
  EXPECT_DOUBLE_EQ(c->optimizer.weight_decay, 1e-4);
  EXPECT_DOUBLE_EQ(c->optimizer.beta2, 0.999);
  EXPECT_EQ(c->zero_stage, 2);
  EXPECT_EQ(c->offload_optimizer_device, "cpu");
  EXPECT_EQ(c->unsupported_keys,
            (std::vector<std::string>{"zero_optimization.contiguous_gradients",
                                      "zero_optimization.overlap_comm",
                                      "zero_optimization.offload_optimizer.pin_memory"}));

  // Only the micro batch known: accumulation 1, global batch derived.
  DeepSpeedAutoValues micro_only;
  micro_only.micro_batch = 16;
  micro_only.world_size = 2;
  c = ParseDeepSpeedConfig(Testdata("ds_config_convforever.json"), micro_only);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->train_batch_size, 32);
  EXPECT_EQ(c->gradient_accumulation_steps, 1);

  // Nothing known: all three "auto" cannot be resolved.
  c = ParseDeepSpeedConfig(Testdata("ds_config_convforever.json"), {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("train_batch_size"), std::string::npos);
}

TEST(DeepSpeedConfig, EveryKeyAndAutoFromFlags) {
  const std::string text = R"({
    "train_batch_size": 64, "gradient_accumulation_steps": 4,
    "optimizer": {"type": "Lamb", "params": {"lr": "auto", "betas": "auto", "eps": "auto",
                  "weight_decay": "auto", "max_coeff": 10.0, "min_coeff": 0.01}},
    "scheduler": {"type": "WarmupDecayLR", "params": {"warmup_min_lr": "auto", "warmup_max_lr": "auto",
                  "warmup_num_steps": "auto", "total_num_steps": "auto", "warmup_type": "linear"}},
    "fp16": {"enabled": "auto", "loss_scale": 0, "initial_scale_power": 12, "loss_scale_window": 500,
             "hysteresis": 3, "min_loss_scale": 2},
    "bf16": {"enabled": false},
    "gradient_clipping": "auto",
    "zero_optimization": {"stage": 1, "offload_optimizer": {"device": "none"}},
    "steps_per_print": 10, "wall_clock_breakdown": false
  })";
  DeepSpeedAutoValues f;
  f.world_size = 2;
  f.lr = 2e-3;
  f.beta1 = 0.8;
  f.beta2 = 0.95;
  f.eps = 1e-7;
  f.weight_decay = 0.02;
  f.warmup_steps = 10;
  f.total_steps = 110;
  f.max_grad_norm = 1.5;
  f.fp16 = true;
  auto c = ParseDeepSpeedConfig(text, f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->source, "<inline json>");
  EXPECT_EQ(c->micro_batch_per_gpu, 8);
  EXPECT_EQ(c->optimizer.type, "lamb");
  EXPECT_DOUBLE_EQ(c->optimizer.lr, 2e-3);
  EXPECT_DOUBLE_EQ(c->optimizer.beta1, 0.8);
  EXPECT_DOUBLE_EQ(c->optimizer.beta2, 0.95);
  EXPECT_DOUBLE_EQ(c->optimizer.eps, 1e-7);
  EXPECT_DOUBLE_EQ(c->optimizer.weight_decay, 0.02);
  EXPECT_DOUBLE_EQ(c->optimizer.max_trust, 10.0);
  EXPECT_DOUBLE_EQ(c->optimizer.min_trust, 0.01);
  ASSERT_TRUE(c->has_scheduler);
  EXPECT_EQ(c->schedule.type, "linear");
  EXPECT_EQ(c->schedule.warmup_steps, 10);
  EXPECT_EQ(c->schedule.total_steps, 110);
  EXPECT_DOUBLE_EQ(LearningRate(c->schedule, 5), 1e-3);   // linear warmup from 0 to 2e-3
  EXPECT_DOUBLE_EQ(LearningRate(c->schedule, 60), 1e-3);  // linear decay to 0 at 110
  EXPECT_TRUE(c->fp16);
  EXPECT_EQ(c->loss_scaler.init_scale, 4096.0);
  EXPECT_EQ(c->loss_scaler.growth_interval, 500);
  EXPECT_EQ(c->loss_scaler.hysteresis, 3);
  EXPECT_EQ(c->loss_scaler.min_scale, 2.0);
  EXPECT_DOUBLE_EQ(c->gradient_clipping, 1.5);
  EXPECT_EQ(c->zero_stage, 1);
  EXPECT_EQ(c->unsupported_keys, (std::vector<std::string>{"steps_per_print", "wall_clock_breakdown"}));
}

TEST(DeepSpeedConfig, OtherSchedulers) {
  auto c = ParseDeepSpeedConfig(R"({"train_batch_size": 8, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"total_num_steps": 100, "warmup_num_steps": 10,
      "warmup_min_ratio": 0.1, "cos_min_ratio": 0.01, "warmup_type": "linear"}}})", {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->schedule.type, "cosine");
  EXPECT_DOUBLE_EQ(LearningRate(c->schedule, 0), 0.001);
  EXPECT_DOUBLE_EQ(LearningRate(c->schedule, 100), 0.0001);
  c = ParseDeepSpeedConfig(R"({"train_batch_size": 8, "scheduler": {"type": "WarmupLR",
      "params": {"warmup_max_lr": 0.5, "warmup_num_steps": 100}}})", {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->schedule.warmup_type, "log");
  EXPECT_DOUBLE_EQ(LearningRate(c->schedule, 100), 0.5);
  c = ParseDeepSpeedConfig(R"({"train_batch_size": 8, "scheduler": {"type": "OneCycle",
      "params": {"cycle_min_lr": 0.01, "cycle_max_lr": 0.1, "cycle_first_step_size": 10,
                 "cycle_momentum": true}}})", {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(LearningRate(c->schedule, 10), 0.1);
  EXPECT_EQ(c->unsupported_keys, (std::vector<std::string>{"scheduler.params.cycle_momentum"}));
}

TEST(DeepSpeedConfig, EveryBadInputNamesTheKey) {
  struct Case { std::string patch, key; };
  const std::vector<Case> cases = {
      {R"({"train_batch_size": "abc"})", "train_batch_size"},
      {R"({"train_batch_size": 0})", "train_batch_size"},
      {R"({"train_batch_size": 32.5})", "train_batch_size"},
      {R"({"train_micro_batch_size_per_gpu": -4})", "train_micro_batch_size_per_gpu"},
      {R"({"train_micro_batch_size_per_gpu": 3, "gradient_accumulation_steps": 2})", "train_batch_size (8) != "},
      {R"({"train_batch_size": null, "gradient_accumulation_steps": 2})", "neither"},
      {R"({"optimizer": []})", "optimizer"},
      {R"({"optimizer": {"params": {}}})", "optimizer.type"},
      {R"({"optimizer": {"type": "Adagrad"}})", "Adagrad"},
      {R"({"optimizer": {"type": "Adam", "params": {"lr": "fast"}}})", "optimizer.params.lr"},
      {R"({"optimizer": {"type": "Adam", "params": {"lr": -1}}})", "optimizer.params.lr"},
      {R"({"optimizer": {"type": "Adam", "params": {"lr": "auto"}}})", "optimizer.params.lr"},
      {R"({"optimizer": {"type": "Adam", "params": {"betas": [0.9]}}})", "optimizer.params.betas"},
      {R"({"optimizer": {"type": "Adam", "params": {"betas": [0.9, 1.5]}}})", "optimizer.params.betas"},
      {R"({"optimizer": {"type": "Adam", "params": {"betas": "auto"}}})", "optimizer.params.betas"},
      {R"({"optimizer": {"type": "Adam", "params": {"weight_decay": -0.1}}})", "optimizer.params.weight_decay"},
      {R"({"optimizer": {"type": "SGD", "params": {"nesterov": true}}})", "optimizer.params.nesterov"},
      {R"({"optimizer": {"type": "Lamb", "params": {"max_coeff": 1, "min_coeff": 2}}})", "min_coeff"},
      {R"({"scheduler": {"params": {}}})", "scheduler.type"},
      {R"({"scheduler": {"type": "Cyclic"}})", "Cyclic"},
      {R"({"scheduler": {"type": "WarmupDecayLR", "params": {"warmup_num_steps": 10}}})", "total_num_steps"},
      {R"({"scheduler": {"type": "WarmupDecayLR", "params": {"warmup_num_steps": 10, "total_num_steps": 10}}})", "total_num_steps"},
      {R"({"scheduler": {"type": "WarmupLR", "params": {"warmup_type": "exp"}}})", "warmup_type"},
      {R"({"scheduler": {"type": "WarmupLR", "params": {"warmup_min_lr": 0.1, "warmup_max_lr": 0.01}}})", "warmup_max_lr"},
      {R"({"scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": "auto"}}})", "warmup_num_steps"},
      {R"({"scheduler": {"type": "WarmupCosineLR", "params": {"total_num_steps": 100, "cos_min_ratio": 2}}})", "cos_min_ratio"},
      {R"({"scheduler": {"type": "WarmupCosineLR", "params": {"total_num_steps": 100}}})", "needs an lr"},
      {R"({"scheduler": {"type": "OneCycle", "params": {"cycle_max_lr": 0.1}}})", "cycle_min_lr"},
      {R"({"scheduler": {"type": "OneCycle", "params": {"cycle_min_lr": 0.2, "cycle_max_lr": 0.1}}})", "cycle_max_lr"},
      {R"({"scheduler": {"type": "OneCycle", "params": {"cycle_min_lr": 0.01, "cycle_max_lr": 0.1, "cycle_first_step_size": 0}}})", "cycle_first_step_size"},
      {R"({"fp16": {"enabled": "yes"}})", "fp16.enabled"},
      {R"({"fp16": {"enabled": "auto"}})", "fp16.enabled"},
      {R"({"fp16": {"enabled": true}, "bf16": {"enabled": true}})", "bf16.enabled"},
      {R"({"fp16": {"loss_scale": -1}})", "fp16.loss_scale"},
      {R"({"fp16": {"initial_scale_power": 100}})", "fp16.initial_scale_power"},
      {R"({"fp16": {"loss_scale_window": 0}})", "fp16.loss_scale_window"},
      {R"({"fp16": {"hysteresis": 0}})", "fp16.hysteresis"},
      {R"({"fp16": {"min_loss_scale": 0}})", "fp16.min_loss_scale"},
      {R"({"bf16": {"enabled": 1}})", "bf16.enabled"},
      {R"({"gradient_clipping": -1})", "gradient_clipping"},
      {R"({"gradient_clipping": "auto"})", "gradient_clipping"},
      {R"({"zero_optimization": {"stage": 4}})", "zero_optimization.stage"},
      {R"({"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "nvme"}}})", "offload_optimizer.device"},
      {R"({"zero_optimization": {"offload_optimizer": {"device": "cpu"}}})", "offload_optimizer.device"},
  };
  for (const Case& c : cases) {
    nlohmann::json cfg = {{"train_batch_size", 8}};
    cfg.merge_patch(nlohmann::json::parse(c.patch));
    auto r = ParseDeepSpeedConfig(cfg.dump(), {});
    ASSERT_FALSE(r.ok()) << c.patch;
    EXPECT_NE(std::string(r.status().message()).find(c.key), std::string::npos)
        << c.patch << " -> " << r.status();
    EXPECT_NE(std::string(r.status().message()).find("<inline json>"), std::string::npos);
  }
}

TEST(DeepSpeedConfig, BadFilesAndWorldSize) {
  auto r = ParseDeepSpeedConfig("/nonexistent/ds.json", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("/nonexistent/ds.json"), std::string::npos);
  r = ParseDeepSpeedConfig("{\"train_batch_size\": 8,", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("not valid JSON"), std::string::npos);
  r = ParseDeepSpeedConfig("{} ", {});
  ASSERT_FALSE(r.ok());  // no batch size at all
  DeepSpeedAutoValues f;
  f.world_size = 0;
  r = ParseDeepSpeedConfig(R"({"train_batch_size": 8})", f);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("world_size"), std::string::npos);
}

// A number past double's range made nlohmann throw out_of_range, which the parse_error handler
// did not catch: the process terminated.
TEST(DeepSpeedConfig, NumberOutOfRangeIsAnError) {
  auto r = ParseDeepSpeedConfig(R"({"train_batch_size": 8, "gradient_clipping": 1e500})", {});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_NE(std::string(r.status().message()).find("not valid JSON"), std::string::npos);
}

// micro x accum x world past int64 was undefined behavior (and could wrap onto a matching
// train_batch_size).
TEST(DeepSpeedConfig, BatchProductOverflowIsAnError) {
  auto r = ParseDeepSpeedConfig(
      R"({"train_micro_batch_size_per_gpu": 4294967296, "gradient_accumulation_steps": 4294967296})", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("overflows"), std::string::npos) << r.status();
  DeepSpeedAutoValues f;
  f.micro_batch = int64_t{1} << 40;
  f.grad_accum = int64_t{1} << 40;
  r = ParseDeepSpeedConfig(R"({"train_batch_size": "auto"})", f);
  ASSERT_FALSE(r.ok());
}

// A config nested a million deep was dumped into an error message, recursing until the stack
// overflowed.
TEST(DeepSpeedConfig, DeepNestingIsAnError) {
  const int depth = 1'000'000;
  auto r = ParseDeepSpeedConfig("{\"train_batch_size\": " + std::string(depth, '[') +
                                    std::string(depth, ']') + "}",
                                {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("nested deeper than"), std::string::npos)
      << r.status();
}

}  // namespace
}  // namespace cf::optim

namespace cf::optim {
namespace {

// ConvForever's own "diloco" section: the keys given, and errors naming the dotted key.
TEST(DeepSpeedConfig, DiLoCoSection) {
  auto c = ParseDeepSpeedConfig(
      R"({"train_micro_batch_size_per_gpu": 8,
          "diloco": {"inner_steps": 100, "dtype": "int8", "outer_nesterov": false, "overlap": true}})",
      {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->has_diloco);
  EXPECT_EQ(c->diloco.inner_steps, 100);
  EXPECT_EQ(c->diloco.dtype, "int8");
  EXPECT_EQ(c->diloco.outer_nesterov, false);
  EXPECT_EQ(c->diloco.overlap, true);
  EXPECT_FALSE(c->diloco.outer_lr.has_value());
  EXPECT_TRUE(c->unsupported_keys.empty());
  auto none = ParseDeepSpeedConfig(R"({"train_micro_batch_size_per_gpu": 8})", {});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_diloco);
  for (const char* bad : {R"({"train_micro_batch_size_per_gpu": 8, "diloco": {"dtype": "fp8"}})",
                          R"({"train_micro_batch_size_per_gpu": 8, "diloco": {"inner_steps": 0}})",
                          R"({"train_micro_batch_size_per_gpu": 8, "diloco": {"outer_momentum": 1.5}})",
                          R"({"train_micro_batch_size_per_gpu": 8, "diloco": 3})"}) {
    auto r = ParseDeepSpeedConfig(bad, {});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("diloco"), absl::string_view::npos) << r.status();
  }
}

}  // namespace
}  // namespace cf::optim
