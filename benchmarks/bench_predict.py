"""Time ``fusionlab predict`` as users run it (the CLI) against onnxruntime on the same files.

Issue 14's scale targets, measured in one run (medians of ``--repeat`` runs, the tools
taking turns so that both see the same machine):

- CLI wall time of ``fusionlab predict FILE --batch 1`` on the 10,000-node Inception chain
  (``fusionlab models export inception-chain-500``) <= 0.3x onnxruntime's session creation
  (ORT_ENABLE_ALL: its Conv+BN, Conv+activation, ... fusions) of the same file;
- the 100,000-node chain (``inception-chain-5000``) <= 11x the 10,000-node time (linear);
- peak memory (max RSS) of the 100k ``predict`` <= that of ``onnx.load`` + ONNX shape
  inference alone on the same file (``onnx.shape_inference.infer_shapes(model,
  strict_mode=False, data_prop=True)``), each in a fresh interpreter that reports its own
  high-water mark (Linux ``VmHWM``; the 100k ``predict`` runs ``fusionlab.cli.main`` as the
  ``fusionlab`` script does, for that report).

Also printed: GoogLeNet; plain chains of 1k/2k/4k/8k/10k Relu nodes (each doubling should
about double the time: a quadratic step would show as x4); and the time of each phase of
one in-process prediction of the 10k chain (and ``--phases-100k``: the 100k one): reading
the file, shape inference, building the IR, the initial plan, each pass (with the checks
after it), and the output (table and plan JSON).

onnxruntime's session creation runs in-process (its own cost, no interpreter start);
fusionlab's is the whole command, interpreter start and imports included. Exit code 1 when
a target is missed.

Run: .venv/bin/python benchmarks/bench_predict.py [--repeat N] [--skip-100k] [--python PY]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parent.parent
RELU_CHAINS = (1000, 2000, 4000, 8000, 10000)
TARGET_ORT, TARGET_LINEAR = 0.3, 11.0

PEAK = """
import os, re, sys
def report_peak():  # this process's own high-water mark (a child's ru_maxrss would count
    # the benchmark's pages it was forked from: the parent holds the models and sessions)
    with open("/proc/self/status") as f:
        print("PEAK", int(re.search(r"VmHWM:\\s+(\\d+)", f.read()).group(1)) / 1024, file=sys.stderr, flush=True)
"""
SHAPE_INFERENCE_ONLY = PEAK + """
import onnx
model = onnx.load(sys.argv[1])
onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
report_peak()
"""
CLI_WITH_PEAK = PEAK + """
from fusionlab.cli import main
code = main(sys.argv[1:])  # what fusionlab.cli.script does, with the peak reported at the end
sys.stdout.flush()
report_peak()
os._exit(code)
"""


def relu_chain(n: int) -> onnx.ModelProto:
    """``n`` Relu nodes in a row on a small [1, 16, 8, 8] tensor."""
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=f"Relu_{i}") for i in range(n)]
    graph = helper.make_graph(
        nodes, f"relu-chain-{n}",
        [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 16, 8, 8])],
        [helper.make_tensor_value_info(f"t{n}", TensorProto.FLOAT, [1, 16, 8, 8])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[float, float | None]:
    """Wall seconds of one child process, and the peak RSS (MiB) it reported, if any."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"bench_predict: {' '.join(cmd)} failed (exit {proc.returncode}): {err.strip()[-500:]}")
    peaks = [float(line.split()[1]) for line in err.splitlines() if line.startswith("PEAK ")]
    return elapsed, (peaks[-1] if peaks else None)


def ort_session(path: Path) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def timed_ort(path: Path) -> float:
    t0 = time.perf_counter()
    session = ort_session(path)
    elapsed = time.perf_counter() - t0
    del session  # freeing it is not timed
    return elapsed


def median_turns(fns: list[Callable[[], float]], repeat: int) -> list[float]:
    """Median of each function's own measurement, the functions taking turns."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, bucket in zip(fns, times, strict=True):
            bucket.append(fn())
    return [statistics.median(t) for t in times]


@contextlib.contextmanager
def phase_clock() -> Iterator[dict[str, float]]:
    """Time the phases of a prediction by wrapping the functions that do them."""
    import fusionlab.fusion.predictor as predictor
    import fusionlab.ir.graph as graph
    from fusionlab.fusion.passes import PASSES

    spent: dict[str, float] = defaultdict(float)
    saved: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, attr: str, label: str) -> None:
        fn = getattr(owner, attr)

        def clocked(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - t0

        saved.append((owner, attr, fn))
        setattr(owner, attr, clocked)

    wrap(graph, "_read_model", "read (onnx.load)")
    wrap(graph, "_inferred_infos", "shape inference")
    wrap(graph, "_load", "load total")
    wrap(predictor, "initial_plan", "initial plan")
    wrap(predictor, "check_plan", "checks after passes")
    for name, module in PASSES.items():
        wrap(module, "run", f"pass {name}")
    try:
        yield spent
    finally:
        for owner, attr, fn in reversed(saved):
            setattr(owner, attr, fn)


def phases(path: Path) -> dict[str, float]:
    """Seconds per phase of one in-process ``predict PATH --batch 1`` (after a warm-up run)."""
    from fusionlab.cli.predict import plan_table, summary_line
    from fusionlab.fusion.predictor import predict
    from fusionlab.gcpause import paused
    from fusionlab.ir.graph import load
    from fusionlab.plan.serialize import plan_to_json

    predict(load(path, batch=1), "trt10")  # warm: imports, caches
    with phase_clock() as spent:
        g = load(path, batch=1)
        prediction = predict(g, "trt10")
    with paused():  # as the command prints them (fusionlab.cli.predict)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            print(summary_line(prediction.plan, len(g)))
            print(plan_table(prediction.plan))
        spent["output: table"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        plan_to_json(prediction.plan)
        spent["output: plan JSON (--json)"] = time.perf_counter() - t0
    total = spent.pop("load total")
    spent["IR build (rest of load)"] = total - spent["read (onnx.load)"] - spent["shape inference"]
    return dict(spent)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each measurement (the median is kept)")
    ap.add_argument("--skip-100k", action="store_true", help="leave out the 100,000-node model")
    ap.add_argument("--phases-100k", action="store_true", help="also print the 100k chain's phases")
    ap.add_argument("--python", default=sys.executable, help="interpreter to run fusionlab with")
    args = ap.parse_args()
    env = environment()
    # byte-compile first (PYTHONDONTWRITEBYTECODE=1 would compile every module on every run)
    subprocess.run([args.python, "-m", "compileall", "-q", str(ROOT / "fusionlab")], check=True,
                   env={k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"})
    from fusionlab import zoo

    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        files: dict[str, Path] = {}
        builds: list[tuple[str, Callable[[], onnx.ModelProto]]] = [
            ("googlenet", lambda: zoo.build("googlenet", batch=1)),
            ("chain-10k", lambda: zoo.inception_chain(500, batch=1)),
        ]
        if not args.skip_100k:
            builds.append(("chain-100k", lambda: zoo.inception_chain(5000, batch=1)))
        builds += [(f"relu-{n // 1000}k", lambda n=n: relu_chain(n)) for n in RELU_CHAINS]  # type: ignore[misc]
        nodes: dict[str, int] = {}
        for name, build in builds:
            model = build()
            nodes[name] = len(model.graph.node)
            files[name] = Path(tmp) / f"{name}.onnx"
            onnx.save(model, str(files[name]))
            del model

        def cli(name: str) -> list[str]:
            return [args.python, "-m", "fusionlab", "predict", str(files[name]), "--batch", "1"]

        print(f"{os.cpu_count()} CPUs; medians of {args.repeat}; fusionlab = CLI wall time "
              "(interpreter start included), onnxruntime = in-process session creation", flush=True)
        walls: dict[str, float] = {}
        for name in ("googlenet", "chain-10k"):
            ours, theirs = median_turns(
                [lambda n=name: run_child(cli(n), env)[0], lambda n=name: timed_ort(files[n])],  # type: ignore[misc]
                args.repeat,
            )
            walls[name] = ours
            print(f"{name:11s} {nodes[name]:7d} nodes   fusionlab predict {ours:7.3f} s   "
                  f"onnxruntime session {theirs:7.3f} s   ratio {ours / theirs:5.2f}x", flush=True)
            if name == "chain-10k":
                ok = ours / theirs <= TARGET_ORT
                failed |= not ok
                print(f"  predict / onnxruntime at {nodes[name]} nodes: {ours / theirs:.2f}x "
                      f"(target <= {TARGET_ORT}x) {'ok' if ok else 'MISSED'}", flush=True)
        if not args.skip_100k:
            repeat = max(1, min(args.repeat, 3))
            peak_cli = [args.python, "-c", CLI_WITH_PEAK, *cli("chain-100k")[3:]]
            runs = [run_child(peak_cli, env) for _ in range(repeat)]
            base = [run_child([args.python, "-c", SHAPE_INFERENCE_ONLY, str(files["chain-100k"])], env)
                    for _ in range(repeat)]
            wall = statistics.median(r[0] for r in runs)
            peak = statistics.median(r[1] or 0.0 for r in runs)
            base_peak = statistics.median(b[1] or 0.0 for b in base)
            ten = walls["chain-10k"]
            ok_linear, ok_mem = wall / ten <= TARGET_LINEAR, peak <= base_peak
            failed |= not (ok_linear and ok_mem)
            print(f"chain-100k  {nodes['chain-100k']:7d} nodes   fusionlab predict {wall:7.3f} s   "
                  f"peak {peak:6.0f} MiB   (medians of {repeat})")
            print(f"  predict at 100k / at 10k nodes: {wall / ten:.2f}x (target <= {TARGET_LINEAR:.0f}x) "
                  f"{'ok' if ok_linear else 'MISSED'}")
            print(f"  peak memory: predict {peak:.0f} MiB, onnx.load + shape inference alone {base_peak:.0f} MiB "
                  f"(target: at most that) {'ok' if ok_mem else 'MISSED'}", flush=True)
        relu = [f"relu-{n // 1000}k" for n in RELU_CHAINS]
        times = median_turns([lambda n=name: run_child(cli(n), env)[0] for name in relu], args.repeat)  # type: ignore[misc]
        print("plain Relu chains (CLI wall time; each doubling should about double the work):")
        previous = None
        for name, t in zip(relu, times, strict=True):
            step = f"  x{t / previous:.2f} on the previous" if previous else ""
            print(f"  {name:8s} {nodes[name]:6d} nodes  {t:7.3f} s{step}")
            previous = t
        for name in ("chain-10k", *(("chain-100k",) if args.phases_100k and not args.skip_100k else ())):
            spent = phases(files[name])
            print(f"phases of one in-process predict of {name} (s, after a warm-up run):")
            for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
                print(f"  {label:32s} {seconds:7.3f}")
            print(f"  {'total':32s} {sum(spent.values()):7.3f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
