"""Time the backbone through onnxruntime on one thread: the reference that
tract is compared with (model/compare-speed.sh runs both in the same run).

Prints one JSON line:
  {"engine": "onnxruntime", "version": ..., "load_ms": ..., "median_ms": ..., "cpu_ms": ..., "times_ms": [...]}
`load_ms` is creating the session (read + optimise); the times are single
inferences on the reference "ramp" input (model/check_export.py), as
shared/benches/tract_speed.rs times tract; `cpu_ms` is the mean CPU time of
one inference.

Usage: python ort_speed.py BACKBONE.onnx [--runs N] [--warmup N] [--profile]

--profile also writes onnxruntime's own per-node profile to stderr (mean
kernel time per inference, by op type and the slowest nodes), to set beside
tract's (`tract_speed --profile`): the nodes keep the ONNX names, so the two
lists can be matched node by node. The profiler has a cost of its own, so
the times printed with it are not the ones to compare.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

from check_export import reference_inputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="per-node profile to stderr")
    args = parser.parse_args()

    options = ort.SessionOptions()
    # One thread, as tract runs: the comparison is per core.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    profile_dir = tempfile.mkdtemp(prefix="ort-profile-") if args.profile else None
    if profile_dir:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(profile_dir, "ort")

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
    if profile_dir:
        print_profile(session.end_profiling(), args.warmup + runs)

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


def print_profile(path: str, inferences: int) -> None:
    """onnxruntime's trace, summed per op type and per node, as mean ms per
    inference (warm-up runs included: the trace has no marker between them)."""
    with open(path) as trace:
        events = json.load(trace)
    by_op: dict[str, float] = collections.defaultdict(float)
    by_node: dict[str, float] = collections.defaultdict(float)
    shapes = {}
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        by_op[event["args"]["op_name"]] += event["dur"]
        by_node[event["name"]] += event["dur"]
        shapes[event["name"]] = event["args"].get("output_type_shape")
    per_inference = 1e3 * inferences  # trace durations are in microseconds
    print(f"profile: {sum(by_op.values()) / per_inference:.2f} ms per inference", file=sys.stderr)
    for op, total in sorted(by_op.items(), key=lambda kv: -kv[1]):
        print(f"  {op:28s} {total / per_inference:8.3f} ms", file=sys.stderr)
    print("slowest nodes:", file=sys.stderr)
    for node, total in sorted(by_node.items(), key=lambda kv: -kv[1])[:25]:
        name = node.removesuffix("_kernel_time")
        print(f"  {total / per_inference:8.3f} ms  {name}  {shapes[node]}", file=sys.stderr)
    os.remove(path)
    os.rmdir(os.path.dirname(path))


if __name__ == "__main__":
    raise SystemExit(main())
