// The README.md model card pushed with every snapshot: YAML front matter the Hub reads
// (library_name, license, pipeline_tag, tags, datasets, metrics) and a Markdown body with the
// run's metrics and flags as tables, plus how to load the weights with timm / transformers.
// Flag values whose names look secret (token, key, secret, password) are replaced by "<redacted>".
// Pure function of its options; thread-safe.
#ifndef CONVFOREVER_HUB_MODEL_CARD_H_
#define CONVFOREVER_HUB_MODEL_CARD_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cf::hub {

struct ModelCardOptions {
  std::string repo_id;     // ORG/NAME, the title
  std::string model_name;  // e.g. "convnext_tiny" (timm architecture name)
  std::string description;
  std::string library_name = "timm";  // "timm" or "transformers"
  std::string license = "apache-2.0";
  std::string pipeline_tag = "image-classification";
  std::vector<std::string> tags = {"image-classification", "convforever"};
  std::vector<std::string> datasets;  // Hub dataset ids or names
  // Metric name -> value, in display order (e.g. {"top1", 81.2}, {"train_loss", 0.91}).
  std::vector<std::pair<std::string, double>> metrics;
  // Flag name -> value, in display order (the training command's settings).
  std::vector<std::pair<std::string, std::string>> flags;
  // Images in the repo shown under "Training curves", as (caption, path relative to the card).
  std::vector<std::pair<std::string, std::string>> images;
  int64_t step = -1;   // training step of the snapshot; < 0 = not shown
  int64_t epoch = -1;  // < 0 = not shown
};

std::string ModelCard(const ModelCardOptions& options);

// True for flag names whose values must never be published.
bool IsSecretFlagName(const std::string& name);

}  // namespace cf::hub

#endif  // CONVFOREVER_HUB_MODEL_CARD_H_
