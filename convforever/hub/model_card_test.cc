#include "convforever/hub/model_card.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace cf::hub {
namespace {

TEST(ModelCardTest, FrontMatterAndTables) {
  ModelCardOptions o;
  o.repo_id = "convforever/convnext-tiny-run7";
  o.model_name = "convnext_tiny";
  o.datasets = {"cifar10"};
  o.metrics = {{"top1", 81.25}, {"train_loss", 0.5}};
  o.flags = {{"lr", "0.004"}, {"model", "convnext_tiny"}, {"hub_token", "hf_abc"},
             {"note", "a|b"}};
  o.step = 1200;
  const std::string card = ModelCard(o);
  EXPECT_TRUE(absl::StartsWith(card,
                               "---\n"
                               "library_name: \"timm\"\n"
                               "license: \"apache-2.0\"\n"
                               "pipeline_tag: \"image-classification\"\n"
                               "tags:\n- \"image-classification\"\n- \"convforever\"\n- \"timm\"\n"
                               "datasets:\n- \"cifar10\"\n"
                               "metrics:\n- \"top1\"\n- \"train_loss\"\n"
                               "---\n\n# convforever/convnext-tiny-run7\n"))
      << card;
  EXPECT_TRUE(absl::StrContains(card, "| top1 | 81.25 |\n| train_loss | 0.5 |\n")) << card;
  EXPECT_TRUE(absl::StrContains(card, "| `lr` | `0.004` |")) << card;
  EXPECT_TRUE(absl::StrContains(card, "| `hub_token` | `<redacted>` |")) << card;
  EXPECT_FALSE(absl::StrContains(card, "hf_abc"));
  EXPECT_TRUE(absl::StrContains(card, "| `note` | `a\\|b` |")) << card;
  EXPECT_TRUE(absl::StrContains(card, "step 1200")) << card;
  EXPECT_TRUE(absl::StrContains(card, "timm.create_model(\"hf-hub:convforever/convnext-tiny-run7\""));
}

TEST(ModelCardTest, TrainingCurvesAreImagesInTheRepo) {
  ModelCardOptions o;
  o.repo_id = "me/run";
  o.images = {{"Held-out top-1", "plots/top1.png"}, {"a [bad]\ncaption", "plots/lr.png"}};
  const std::string card = ModelCard(o);
  EXPECT_TRUE(absl::StrContains(card, "## Training curves\n\n![Held-out top-1](plots/top1.png)\n\n"
                                      "![a (bad) caption](plots/lr.png)\n"))
      << card;
  EXPECT_FALSE(absl::StrContains(ModelCard(ModelCardOptions{}), "Training curves"));
}

TEST(ModelCardTest, TransformersAndQuotingHostileStrings) {
  ModelCardOptions o;
  o.repo_id = "org/m";
  o.library_name = "transformers";
  o.datasets = {"a: \"quoted\"\nnext"};
  const std::string card = ModelCard(o);
  EXPECT_TRUE(absl::StrContains(card, "library_name: \"transformers\"\n"));
  EXPECT_TRUE(absl::StrContains(card, "- \"a: \\\"quoted\\\"\\nnext\"\n")) << card;
  EXPECT_TRUE(absl::StrContains(card, "AutoModelForImageClassification.from_pretrained(\"org/m\")"));
  EXPECT_FALSE(absl::StrContains(card, "## Metrics"));
}

TEST(ModelCardTest, SecretFlagNames) {
  EXPECT_TRUE(IsSecretFlagName("HF_TOKEN"));
  EXPECT_TRUE(IsSecretFlagName("openrouter_api_key"));
  EXPECT_TRUE(IsSecretFlagName("db_password"));
  EXPECT_FALSE(IsSecretFlagName("lr"));
  EXPECT_FALSE(IsSecretFlagName("batch_size"));
}

TEST(ModelCardTest, UrlCredentialsAreRedacted) {
  ModelCardOptions o;
  o.repo_id = "convforever/x";
  o.library_name = "timm";
  o.description = "Trained on https://user:pw@data.example/train.tar?X-Amz-Signature=s1.";
  o.datasets = {"https://h/d?token=t2"};
  o.flags = {{"data_dir", "https://cdn.example/s/{0..9}.tar?Signature=s3&Expires=1"}};
  const std::string card = ModelCard(o);
  for (const char* secret : {"user:pw", "s1", "t2", "s3"}) {
    EXPECT_FALSE(absl::StrContains(card, secret)) << secret << "\n" << card;
  }
  EXPECT_TRUE(absl::StrContains(card, "https://cdn.example/s/{0..9}.tar?Signature=REDACTED&Expires=1"))
      << card;
}

}  // namespace
}  // namespace cf::hub
