"""How fast ``fusionlab.ir.graph.load`` reads a model: ONNX parse + shape inference + graph IR.

Two models from the zoo are written to a temporary folder first (not timed): GoogLeNet
(196 nodes, 28 MB of weights) and a synthetic chain of Inception blocks (20 nodes a block;
500 blocks = 10,000 nodes by default). Each is then loaded with ``batch=1`` several times;
the median, the fastest and the slowest run are printed, with nodes per second.

Run from the repository root::

    .venv/bin/python benchmarks/bench_load.py [--repeat 5] [--blocks 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from fusionlab import zoo
from fusionlab.ir.graph import load


def time_load(path: Path, batch: int, repeat: int) -> tuple[int, list[float]]:
    """Load ``path`` ``repeat`` times; returns the node count and the seconds of each run."""
    seconds: list[float] = []
    nodes = 0
    for _ in range(repeat):
        start = time.perf_counter()
        g = load(path, batch=batch)
        seconds.append(time.perf_counter() - start)
        nodes = len(g)
    return nodes, seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="timed loads per model (default 5)")
    parser.add_argument("--blocks", type=int, default=500,
                        help="Inception blocks in the chain, 20 nodes each (default 500)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.blocks < 1:
        parser.error("--repeat and --blocks must be at least 1")
    models = ["googlenet", f"inception-chain-{args.blocks}"]
    print(f"fusionlab.ir.graph.load, batch 1, median of {args.repeat} runs")
    with tempfile.TemporaryDirectory(prefix="fusionlab-bench-") as tmp:
        for name in models:
            path = zoo.export(name, Path(tmp) / f"{name}.onnx")
            size_mb = path.stat().st_size / 1e6
            nodes, seconds = time_load(path, 1, args.repeat)
            median = statistics.median(seconds)
            print(
                f"{name:<24} {nodes:>7,} nodes  {size_mb:7.1f} MB  "
                f"median {median * 1e3:8.1f} ms  (min {min(seconds) * 1e3:.1f}, "
                f"max {max(seconds) * 1e3:.1f})  {nodes / median:>10,.0f} nodes/s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
