"""Prints what TensorBoard's own EventAccumulator reads from an event file or directory, as one
JSON object: {"scalars": {tag: [[step, value], ...]}, "text": {tag: [[step, text], ...]}}
(NaN/Inf as strings). Used by //convforever/train:tensorboard_test.

Usage: tfevents_dump.py PATH
"""
import json
import math
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def number(v):
    return v if math.isfinite(v) else str(v)


def main():
    acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    out = {"scalars": {t: [[e.step, number(e.value)] for e in acc.Scalars(t)] for t in tags["scalars"]},
           "text": {t: [[e.step, e.tensor_proto.string_val[0].decode()] for e in acc.Tensors(t)]
                    for t in tags["tensors"]}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
