// InitFromPretrained on real files written to disk: our own timm/transformers exports of another
// model (same or other class count), a checkpoint directory, and the error cases. Files saved by
// timm itself (safetensors and torch.save) are checked by //tools/interop:timm_test.
#include "convforever/models/init_from.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "convforever/models/export.h"
#include "convforever/models/registry.h"
#include "convforever/models/safetensors.h"

namespace cf::models {
namespace {

std::shared_ptr<Model> Pico(int64_t classes, std::vector<int64_t> widths = {}) {
  ModelOptions o = DefaultOptions("convnext_pico_fmnist");
  o.num_classes = classes;
  o.widths = widths;
  return CreateModel("convnext_pico_fmnist", o).value();
}

std::string TempDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp ? tmp : "/tmp") + "/" + name;
  std::filesystem::create_directories(dir);
  return dir;
}

at::Tensor Get(const Model& m, const std::string& name) {
  for (const auto& [n, t] : m.StateDict()) {
    if (n == name) return t;
  }
  return {};
}

TEST(InitFromTest, SameClassesCopiesEveryTensor) {
  auto source = Pico(10), target = Pico(10);
  const std::string dir = TempDir("same");
  ASSERT_TRUE(SaveModel(*source, dir, WeightFormat::kTimm, {}).ok());
  auto r = InitFromPretrained(*target, dir);  // a checkpoint-style directory
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->head_reinitialized);
  EXPECT_EQ(r->file, dir + "/model.safetensors");
  for (const auto& [name, t] : source->StateDict()) EXPECT_TRUE(Get(*target, name).equal(t)) << name;
}

TEST(InitFromTest, TransformersNamesAreDetected) {
  auto source = Pico(10), target = Pico(10);
  const std::string dir = TempDir("transformers");
  ASSERT_TRUE(SaveModel(*source, dir, WeightFormat::kTransformers, {}).ok());
  auto r = InitFromPretrained(*target, dir + "/model.safetensors");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->format, WeightFormat::kTransformers);
  EXPECT_TRUE(Get(*target, "stages.1.blocks.0.mlp.fc1.weight").equal(Get(*source, "stages.1.blocks.0.mlp.fc1.weight")));
}

TEST(InitFromTest, OtherClassCountReinitialisesTheHeadOnly) {
  auto source = Pico(1000), target = Pico(10);
  const at::Tensor head_before = Get(*target, "head.fc.weight").clone();
  const std::string dir = TempDir("head");
  ASSERT_TRUE(SaveModel(*source, dir, WeightFormat::kTransformers, {}).ok());
  auto r = InitFromPretrained(*target, dir);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->head_reinitialized);
  EXPECT_EQ(r->head, "classifier");
  EXPECT_EQ(r->file_classes, 1000);
  EXPECT_EQ(r->model_classes, 10);
  EXPECT_TRUE(Get(*target, "head.fc.weight").equal(head_before));
  EXPECT_TRUE(Get(*target, "head.norm.weight").equal(Get(*source, "head.norm.weight")));
  EXPECT_TRUE(Get(*target, "stem.0.weight").equal(Get(*source, "stem.0.weight")));
  const std::string line = Describe(*r);
  EXPECT_NE(line.find("'classifier' re-initialised: the file has 1000 classes, the model 10"), std::string::npos) << line;
}

TEST(InitFromTest, ShapeMismatchNamesTheKeyAndBothShapes) {
  auto source = Pico(10, {16, 64, 128}), target = Pico(10);
  const std::string dir = TempDir("shape");
  ASSERT_TRUE(SaveModel(*source, dir, WeightFormat::kTimm, {}).ok());
  auto r = InitFromPretrained(*target, dir);
  ASSERT_FALSE(r.ok());
  const std::string msg(r.status().message());
  EXPECT_NE(msg.find(dir + "/model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stem.0.weight file Float[16,1,2,2] vs model Float[32,1,2,2]"), std::string::npos) << msg;
}

TEST(InitFromTest, MissingAndUnexpectedTensorsAreNamed) {
  auto source = Pico(10), target = Pico(10);
  NamedTensors tensors = ExportStateDict(*source, WeightFormat::kTimm).value();
  for (auto& [name, t] : tensors) {
    if (name == "stages.2.blocks.0.norm.bias") name = "stages.2.blocks.0.norm.beta";
  }
  const std::string file = TempDir("missing") + "/renamed.safetensors";
  ASSERT_TRUE(WriteSafetensors(file, tensors, {{"format", "pt"}}).ok());
  auto r = InitFromPretrained(*target, file);
  ASSERT_FALSE(r.ok());
  const std::string msg(r.status().message());
  EXPECT_NE(msg.find("missing 1 (stages.2.blocks.0.norm.bias)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected 1 (stages.2.blocks.0.norm.beta)"), std::string::npos) << msg;
}

TEST(InitFromTest, DataParallelPrefixIsDropped) {
  auto source = Pico(10), target = Pico(10);
  NamedTensors tensors = ExportStateDict(*source, WeightFormat::kTimm).value();
  for (auto& [name, t] : tensors) name = "module." + name;
  const std::string file = TempDir("ddp") + "/ddp.safetensors";
  ASSERT_TRUE(WriteSafetensors(file, tensors, {{"format", "pt"}}).ok());
  auto r = InitFromPretrained(*target, file);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(Get(*target, "stem.0.weight").equal(Get(*source, "stem.0.weight")));
}

TEST(InitFromTest, MissingAndGarbageFilesAreErrors) {
  auto target = Pico(10);
  auto missing = InitFromPretrained(*target, "/nonexistent/weights.pth");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/weights.pth"), std::string::npos);
  for (const std::string& bytes : {std::string("not a weights file at all"), std::string("PK\x03\x04garbage")}) {
    const std::string file = TempDir("garbage") + "/bad.pth";
    std::ofstream(file, std::ios::binary) << bytes;
    auto r = InitFromPretrained(*target, file);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(file), std::string::npos) << r.status();
  }
}

}  // namespace
}  // namespace cf::models
