// Export/import round trips (timm, transformers, torchvision layouts), config.json contents, and
// strict-loading errors.
#include "convforever/models/export.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "convforever/models/registry.h"

namespace cf::models {
namespace {

std::string TempDir(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

std::shared_ptr<Model> SmallConvNeXt(int64_t classes = 3) {
  ModelOptions o;
  o.depth = 5;
  o.widths = {8, 16, 16, 24};
  o.num_classes = classes;
  o.image_size = 32;
  auto m = CreateModel("convforever", o);
  EXPECT_TRUE(m.ok());
  return *m;
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

void ExpectSameOutputs(Model& a, Model& b) {
  a.eval();
  b.eval();
  at::Tensor x = at::randn({2, 3, 32, 32});
  EXPECT_TRUE(at::equal(a.forward(x), b.forward(x)));
}

TEST(ExportTest, RoundTripsInEveryLayout) {
  for (WeightFormat f : {WeightFormat::kTimm, WeightFormat::kTransformers}) {
    auto a = SmallConvNeXt();
    auto b = SmallConvNeXt();
    const std::string dir = TempDir(std::string("rt_") + WeightFormatName(f));
    ASSERT_TRUE(SaveModel(*a, dir, f, {"cat", "dog", "bird"}).ok());
    absl::Status s = LoadModelWeights(*b, dir);  // directory form, layout detected
    ASSERT_TRUE(s.ok()) << s;
    ExpectSameOutputs(*a, *b);
  }
  // torchvision layout (no config.json): through the tensors directly.
  auto a = SmallConvNeXt();
  auto b = SmallConvNeXt();
  auto tv = ExportStateDict(*a, WeightFormat::kTorchvision);
  ASSERT_TRUE(tv.ok());
  const std::string path = TempDir("tv.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, *tv, {{"format", "pt"}}).ok());
  ASSERT_TRUE(LoadModelWeights(*b, path).ok());
  ExpectSameOutputs(*a, *b);
}

TEST(ExportTest, TransformersNamesAndConfig) {
  auto a = SmallConvNeXt();
  const std::string dir = TempDir("hf");
  ASSERT_TRUE(SaveModel(*a, dir, WeightFormat::kTransformers, {"cat", "dog", "bird"}).ok());
  auto tensors = ReadSafetensorsFile(dir + "/model.safetensors");
  ASSERT_TRUE(tensors.ok());
  EXPECT_EQ(tensors->metadata["format"], "pt");
  std::set<std::string> names;
  for (const auto& [n, t] : tensors->tensors) names.insert(n);
  for (const char* n : {"convnext.embeddings.patch_embeddings.weight", "convnext.embeddings.layernorm.bias",
                        "convnext.encoder.stages.1.downsampling_layer.0.weight",
                        "convnext.encoder.stages.1.downsampling_layer.1.weight",
                        "convnext.encoder.stages.0.layers.1.dwconv.weight",
                        "convnext.encoder.stages.3.layers.0.pwconv2.bias",
                        "convnext.encoder.stages.2.layers.0.layer_scale_parameter", "convnext.layernorm.weight",
                        "classifier.weight"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  nlohmann::json c = ReadJson(dir + "/config.json");
  EXPECT_EQ(c["architectures"][0], "ConvNextForImageClassification");
  EXPECT_EQ(c["model_type"], "convnext");
  EXPECT_EQ(c["depths"], nlohmann::json({2, 1, 1, 1}));
  EXPECT_EQ(c["hidden_sizes"], nlohmann::json({8, 16, 16, 24}));
  EXPECT_EQ(c["id2label"]["1"], "dog");
  EXPECT_EQ(c["label2id"]["bird"], 2);
  EXPECT_EQ(c["num_stages"], 4);
  EXPECT_DOUBLE_EQ(c["layer_norm_eps"].get<double>(), 1e-6);
}

TEST(ExportTest, TimmConfig) {
  auto a = SmallConvNeXt();
  const std::string dir = TempDir("timm");
  ASSERT_TRUE(SaveModel(*a, dir, WeightFormat::kTimm, {}).ok());
  nlohmann::json c = ReadJson(dir + "/config.json");
  EXPECT_EQ(c["architecture"], "convnext_tiny");
  EXPECT_EQ(c["model_args"]["depths"], nlohmann::json({2, 1, 1, 1}));
  EXPECT_EQ(c["num_classes"], 3);
  EXPECT_EQ(c["num_features"], 24);
  EXPECT_EQ(c["label_names"][2], "LABEL_2");
  EXPECT_EQ(c["pretrained_cfg"]["classifier"], "head.fc");
  auto r = CreateModel("resnet18", ModelOptions());
  ASSERT_TRUE(r.ok());
  auto rc = ConfigJson(**r, WeightFormat::kTimm, {});
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(nlohmann::json::parse(*rc)["architecture"], "resnet18");
}

void ExpectLoadError(Model& m, const NamedTensors& t, const std::string& fragment) {
  const std::string path = TempDir("bad.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, t, {}).ok());
  absl::Status s = LoadModelWeights(m, path);
  ASSERT_FALSE(s.ok()) << "expected: " << fragment;
  EXPECT_NE(std::string(s.message()).find(fragment), std::string::npos) << s;
  EXPECT_NE(std::string(s.message()).find("bad.safetensors"), std::string::npos) << s;
}

TEST(ExportTest, StrictLoadingNamesTheCulprits) {
  auto a = SmallConvNeXt();
  auto good = ExportStateDict(*a, WeightFormat::kTimm);
  ASSERT_TRUE(good.ok());
  NamedTensors missing(good->begin() + 1, good->end());
  ExpectLoadError(*a, missing, "missing 1 (stem.0.weight)");
  NamedTensors extra = *good;
  extra.emplace_back("head.extra", at::ones({2}));
  ExpectLoadError(*a, extra, "unexpected 1 (head.extra)");
  NamedTensors wrong = *good;
  wrong[0].second = at::ones({8, 3, 2, 2});
  ExpectLoadError(*a, wrong, "shape/dtype mismatch 1 (stem.0.weight");
  // Another model's checkpoint (more classes).
  auto other = ExportStateDict(*SmallConvNeXt(5), WeightFormat::kTimm);
  ExpectLoadError(*a, *other, "head.fc.weight");
  // Files that are not checkpoints at all.
  const std::string junk = TempDir("junk.safetensors");
  std::ofstream(junk) << "not a safetensors file";
  EXPECT_FALSE(LoadModelWeights(*a, junk).ok());
  EXPECT_EQ(LoadModelWeights(*a, TempDir("nothing_here")).code(), absl::StatusCode::kNotFound);
}

TEST(ExportTest, UnsupportedCombinationsAreClearErrors) {
  auto r = CreateModel("resnet18", ModelOptions());
  ASSERT_TRUE(r.ok());
  absl::Status s = SaveModel(**r, TempDir("r"), WeightFormat::kTransformers, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << s;
  auto a = SmallConvNeXt();
  s = SaveModel(*a, TempDir("c"), WeightFormat::kTimm, {"only", "two"});
  EXPECT_NE(std::string(s.message()).find("class_names has 2 entries"), std::string::npos) << s;
  ModelOptions o;
  o.blur_pool = true;
  auto blur = CreateModel("resnet18", o);
  EXPECT_EQ(ConfigJson(**blur, WeightFormat::kTimm, {}).status().code(), absl::StatusCode::kUnimplemented);
}

TEST(ExportTest, EveryRegistryFamilyRoundTripsInTimmNames) {
  for (const std::string name : {"resnet18", "simple_cnn", "vit_tiny_32"}) {
    ModelOptions o = DefaultOptions(name);
    auto a = CreateModel(name, o);
    auto b = CreateModel(name, o);
    ASSERT_TRUE(a.ok() && b.ok());
    const std::string dir = TempDir("fam_" + name);
    ASSERT_TRUE(SaveModel(**a, dir, WeightFormat::kTimm, {}).ok()) << name;
    ASSERT_TRUE(LoadModelWeights(**b, dir).ok()) << name;
    (*a)->eval();
    (*b)->eval();
    at::Tensor x = at::randn({1, o.in_channels, o.image_size, o.image_size});
    EXPECT_TRUE(at::equal((*a)->forward(x), (*b)->forward(x))) << name;
  }
}

}  // namespace
}  // namespace cf::models
