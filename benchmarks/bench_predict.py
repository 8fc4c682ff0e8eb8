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
from fusionlab.fusion.predictor import predict
from fusionlab.ir.graph import load


def median_times(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median wall time of each function, in seconds, the functions taking turns.

    Turns make both tools see the same machine (this one is shared and noisy). A result
    is kept until the clock has stopped, so freeing it (fusionlab's graph and plans,
    onnxruntime's session) is timed for neither.
    """
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, bucket in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            result = fn()
            bucket.append(time.perf_counter() - t0)
            del result
    return [statistics.median(t) for t in times]


def ort_session(path: Path) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def fusionlab_predict(path: Path) -> object:
    """What `fusionlab predict MODEL --batch 1` computes: load, shape inference, passes."""
    return predict(load(path, batch=1), "trt10")


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
            fns: list[Callable[[], object]] = [lambda p=path: fusionlab_predict(p)]  # type: ignore[misc]
            if name != "chain-100k":
                fns.append(lambda p=path: ort_session(p))  # type: ignore[misc]
            medians = median_times(fns, args.repeat)
            ours, theirs = medians[0], (medians[1] if len(medians) > 1 else None)
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
