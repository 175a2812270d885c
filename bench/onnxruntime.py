"""onnxruntime on the same backbone.onnx as tract, one thread, for BENCHMARKS.md.

Prints one JSON line: model load, inference alone (median of --runs), and
Pillow decode + preprocess of the same photo, all in milliseconds. Runs with
the model's virtualenv (model/build.sh makes it):

    .cache/venv-model/bin/python bench/onnxruntime.py MODEL.onnx PHOTO.jpg [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

SIDE = 224


def preprocess(path: str) -> np.ndarray:
    """Short side to 256, centre crop 224, scaled to [-1, 1], channels first:
    the same steps as shared/model/src/preprocess.rs (not the same resize
    filter, which only changes the values, not the work the model does)."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        scale = 256 / min(w, h)
        image = image.resize((max(SIDE, round(w * scale)), max(SIDE, round(h * scale))), Image.BILINEAR)
        left = (image.width - SIDE) // 2
        top = (image.height - SIDE) // 2
        image = image.crop((left, top, left + SIDE, top + SIDE))
        x = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("photo")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    options = ort.SessionOptions()
    # One thread, as tract runs: the aim compares one core with one core.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL

    started = time.perf_counter()
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - started) * 1000

    decode_ms = []
    for _ in range(max(3, args.runs // 3)):
        started = time.perf_counter()
        x = preprocess(args.photo)
        decode_ms.append((time.perf_counter() - started) * 1000)

    input_name = session.get_inputs()[0].name
    for _ in range(3):  # warm-up: first runs allocate
        session.run(None, {input_name: x})
    inference_ms = []
    for _ in range(args.runs):
        started = time.perf_counter()
        session.run(None, {input_name: x})
        inference_ms.append((time.perf_counter() - started) * 1000)

    print(
        json.dumps(
            {
                "onnxruntime": ort.__version__,
                "load_ms": round(load_ms, 1),
                "decode_preprocess_ms": round(statistics.median(decode_ms), 2),
                "inference_ms": round(statistics.median(inference_ms), 2),
                "inference_min_ms": round(min(inference_ms), 2),
                "runs": args.runs,
            }
        )
    )


if __name__ == "__main__":
    main()
