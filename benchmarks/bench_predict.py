"""Time ``predict`` against onnxruntime's own fusing optimizer on the same files.

For GoogLeNet and synthetic chains of Inception blocks (~10,000 and ~100,000 nodes), in
one run: fusionlab's load + predict (target trt10), and onnxruntime's session creation
with full graph optimization (ORT_ENABLE_ALL: its Conv+BN, Conv+activation, ... fusions).
Medians of several repetitions. Targets (issue 3): predict <= 0.5x onnxruntime at 10,000
nodes, and predict at 100,000 nodes <= 12x predict at 10,000 nodes.

Run: .venv/bin/python benchmarks/bench_predict.py [--repeat N] [--skip-100k]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnx

from fusionlab import zoo
from fusionlab.graph import load
from fusionlab.predict import predict


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` over ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ort_session(path: Path) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def fusionlab_predict(path: Path) -> object:
    return predict(load(path, batch=1), "trt10").plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-100k", action="store_true", help="leave out the 100,000-node model")
    args = ap.parse_args()
    cases: list[tuple[str, Callable[[], onnx.ModelProto]]] = [
        ("googlenet", lambda: zoo.build("googlenet", batch=1)),
        ("chain-10k", lambda: zoo.inception_chain(500, batch=1)),
    ]
    if not args.skip_100k:
        cases.append(("chain-100k", lambda: zoo.inception_chain(5000, batch=1)))
    results: dict[str, tuple[int, float, float | None]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in cases:
            path = Path(tmp) / f"{name}.onnx"
            model = build()
            onnx.save(model, str(path))
            nodes = len(model.graph.node)
            del model
            ours = median_time(lambda p=path: fusionlab_predict(p), args.repeat)  # type: ignore[misc]
            theirs = None
            if name != "chain-100k":
                theirs = median_time(lambda p=path: ort_session(p), args.repeat)  # type: ignore[misc]
            results[name] = (nodes, ours, theirs)
            ort_text = f"{theirs:8.3f} s" if theirs is not None else "       -  "
            ratio = f"{ours / theirs:6.2f}x" if theirs else "     -"
            print(
                f"{name:12s} {nodes:7d} nodes   fusionlab load+predict {ours:8.3f} s   "
                f"onnxruntime session {ort_text}   ratio {ratio}",
                flush=True,
            )
    n10, t10, o10 = results["chain-10k"]
    if o10:
        print(f"predict / onnxruntime at {n10} nodes: {t10 / o10:.2f}x (target <= 0.5x)")
    if "chain-100k" in results:
        n100, t100, _ = results["chain-100k"]
        print(f"predict at {n100} nodes / at {n10} nodes: {t100 / t10:.2f}x (target <= 12x)")


if __name__ == "__main__":
    main()
