// The `preprocessor_config.json` of a hub snapshot: transformers' ConvNextImageProcessor set up
// so that `AutoImageProcessor.from_pretrained(snapshot)` turns an image into the tensor our eval
// transform gives (data/transforms.h EvalTransform + normalization), checked against the real
// processor by //tools/interop:run_outputs_test.
//
// Resizing: ConvNextImageProcessor (size.shortest_edge < 384) resizes the shorter side to
// floor(size / crop_pct) and center-crops `size`, as our EvalTransform does. Data whose images
// all come at the training size (IDX, CIFAR, synthetic) are passed through unchanged by our eval
// transform, so the processor gets crop_pct 1.0 (a resize to the same size is the identity in
// PIL and torchvision). For other data the processor resizes like ours: our bilinear resize is
// PIL's antialiased one (data/resample.h) and our JPEG decode gives PIL's pixels (decode.h) at the
// default full-size decode (TransformOptions::eval_decode).
#ifndef CONVFOREVER_TRAIN_PREPROCESSOR_CONFIG_H_
#define CONVFOREVER_TRAIN_PREPROCESSOR_CONFIG_H_

#include <string>

#include "convforever/train/trainer.h"

namespace cf::train {

// The JSON text for a model with `channels` input channels trained with `options`.
std::string PreprocessorConfigJson(const TrainerOptions& options, int channels);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_PREPROCESSOR_CONFIG_H_
