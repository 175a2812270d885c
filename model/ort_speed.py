"""Time the backbone through onnxruntime on one thread: the reference that
tract is compared with (model/compare-speed.sh runs both in the same run).

Prints one JSON line:
  {"engine": "onnxruntime", "version": ..., "load_ms": ..., "median_ms": ..., "cpu_ms": ..., "times_ms": [...]}
`load_ms` is creating the session (read + optimise); the times are single
inferences on the reference "ramp" input (model/check_export.py), as
shared/benches/tract_speed.rs times tract; `cpu_ms` is the mean CPU time of
one inference.

Usage: python ort_speed.py BACKBONE.onnx [--runs N] [--warmup N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import onnxruntime as ort

from check_export import reference_inputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    options = ort.SessionOptions()
    # One thread, as tract runs: the comparison is per core.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    started = time.perf_counter()
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - started) * 1e3

    x = reference_inputs(int(session.get_inputs()[0].shape[-1]))["ramp"]
    feed = {"input": x}
    outputs = ["logits", "features"]
    for _ in range(args.warmup):
        session.run(outputs, feed)
    runs = max(args.runs, 1)
    times = []
    # CPU time of the whole process (every thread onnxruntime might use): on a
    # shared, loaded machine steadier than the wall clock.
    cpu_before = time.process_time()
    for _ in range(runs):
        started = time.perf_counter()
        session.run(outputs, feed)
        times.append((time.perf_counter() - started) * 1e3)
    cpu_ms = (time.process_time() - cpu_before) * 1e3 / runs

    print(
        json.dumps(
            {
                "engine": "onnxruntime",
                "version": ort.__version__,
                "load_ms": round(load_ms, 1),
                "median_ms": round(statistics.median(times), 2),
                "cpu_ms": round(cpu_ms, 2),
                "times_ms": [round(t, 2) for t in times],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
