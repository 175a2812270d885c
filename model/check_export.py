"""Check an exported backbone against the reference logits, with onnxruntime.

The same check runs in Rust through tract (shared/tests/classifier.rs); this
one runs in model/build.sh so a bad export never lands in the cache.

Usage: python check_export.py BACKBONE.onnx REFERENCE.json
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnxruntime as ort

TOLERANCE = 1e-3


def reference_inputs(side: int = 224) -> dict[str, np.ndarray]:
    """The two inputs described in ../shared/data/reference/README (shared/README.md).

    The reference logits are Lite0's, at 224; other sides are for timing.
    """
    c, h, w = np.meshgrid(np.arange(3), np.arange(side), np.arange(side), indexing="ij")
    ramp = ((c * side * side + h * side + w) % 255) / 127.5 - 1.0
    return {
        "zeros": np.zeros((1, 3, side, side), dtype=np.float32),
        "ramp": ramp.astype(np.float32)[None],
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    reference = json.loads(open(argv[2]).read())
    session = ort.InferenceSession(argv[1], providers=["CPUExecutionProvider"])
    worst = 0.0
    for name, x in reference_inputs().items():
        logits, features = session.run(["logits", "features"], {"input": x})
        expected = np.array(reference[name]["logits"], dtype=np.float32)
        diff = float(np.max(np.abs(logits[0] - expected)))
        top5 = [int(i) for i in np.argsort(-logits[0])[:5]]
        print(f"{name}: max |diff| {diff:.2e}, top5 {top5} (reference {reference[name]['top5']})")
        if features.shape != (1, 1280):
            print(f"features have shape {features.shape}", file=sys.stderr)
            return 1
        worst = max(worst, diff)
    if worst > TOLERANCE:
        print(f"export differs from the reference by {worst:.2e} > {TOLERANCE}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
