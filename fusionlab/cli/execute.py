"""``fusionlab execute MODEL``: run a model with PyTorch/cuDNN kernels, fused as a plan says.

The reference executor (``fusionlab.execute``) for the "actual" side where TensorRT is
absent: the plan's layers (``--plan``, or predicted for ``--target``) or one kernel per
ONNX node (``--unfused``), checked against each other on random inputs, timed per layer
and end to end. Prints each layer's realisation and times, and trtexec's performance
summary; ``--export-profile`` writes trtexec's ``--exportProfile`` JSON with the plan's
layer names, which ``diff``, ``render`` and ``calibrate`` read as they read trtexec's.
Needs PyTorch (``pip install 'fusionlab[torch]'``).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from fusionlab.cli.args import add_model_args, input_files, positive_int
from fusionlab.fusion.targets import DEFAULT, TARGETS
from fusionlab.io import write_atomic
from fusionlab.table import format_table

log = logging.getLogger(__name__)

NAME_WIDTH = 72


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "execute",
        help="run a model with PyTorch/cuDNN kernels, fused as a plan says, and time each layer",
    )
    add_model_args(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--plan", metavar="PLAN.json",
                       help="the plan to follow (fusionlab.plan/2 or /1 JSON, e.g. from predict --json)")
    which.add_argument("--target", choices=list(TARGETS), default=None,
                       help=f"predict the plan for this TensorRT target (default {DEFAULT})")
    p.add_argument("--unfused", action="store_true",
                   help="time one kernel per ONNX node instead of the plan's layers")
    p.add_argument("--precision", choices=["fp32", "fp16"], default=None,
                   help="compute precision (default: the plan's, else fp32)")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                   help="where to run (default cuda; cpu times with time.perf_counter)")
    p.add_argument("--iterations", type=positive_int, default=100, metavar="N",
                   help="timed iterations, per layer and end to end (default 100)")
    p.add_argument("--warmup", type=non_negative_int, default=10, metavar="N",
                   help="untimed iterations before each timed run (default 10)")
    p.add_argument("--cuda-graph", action="store_true",
                   help="launch each inference as one CUDA graph (layer events captured in it)")
    p.add_argument("--export-profile", metavar="F",
                   help="per-layer times as trtexec's --exportProfile JSON")
    p.add_argument("--no-check", action="store_true",
                   help="skip the fused-vs-unfused numerical check")
    p.add_argument("--no-compile", action="store_true",
                   help="run point-wise chains op by op instead of one torch.compile kernel")
    p.add_argument("--no-tactics", action="store_true",
                   help="no per-layer tactic timing and no Triton kernels: the PyTorch/cuDNN "
                        "realisations alone (CUDA)")
    p.add_argument("--kernels", action="store_true",
                   help="count each layer's GPU kernels with torch.profiler (CUDA)")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                   help="seed of the random inputs (default 0)")
    p.set_defaults(run=run)


def _short(name: str) -> str:
    return name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 3] + "..."


def run(args: argparse.Namespace) -> int:
    from fusionlab.api import read_plan
    from fusionlab.execute import ExecuteOptions, execute, require_torch
    from fusionlab.fusion.predictor import predict
    from fusionlab.ir.graph import load
    from fusionlab.plan import Plan

    require_torch()
    plan: Plan | None = None
    batch = args.batch
    precision = args.precision
    if args.plan:
        plan = read_plan(args.plan)
        if batch is None and plan.batch is not None:
            batch = plan.batch
        elif batch is not None and plan.batch not in (None, batch):
            log.warning("the plan was made for batch %s; running batch %s", plan.batch, batch)
        if precision is None:
            precision = plan.precision if plan.precision in ("fp32", "fp16") else "fp32"
    precision = precision or "fp32"
    graph = load(args.model, batch=batch)
    if plan is None and not (args.unfused and args.no_check):
        plan = predict(graph, args.target or DEFAULT, precision).plan
    options = ExecuteOptions(
        device=args.device,
        precision=precision,
        iterations=args.iterations,
        warmup=args.warmup,
        cuda_graph=args.cuda_graph,
        seed=args.seed,
        compile_pointwise=not args.no_compile,
        tactics=not args.no_tactics,
        check=not args.no_check,
        count_kernels=args.kernels,
    )
    result = execute(graph, plan, options, unfused=args.unfused)
    profile = result.profile
    if args.export_profile:
        from fusionlab.formats.trtexec import profile_to_json

        write_atomic(args.export_profile, profile_to_json(profile),
                     protect=input_files(args))
    print(f"=== {graph.name}: {result.label}, {precision}, batch {graph.batch or 'as in file'}, "
          f"on {profile.device} ===")
    for key, value in profile.method.items():
        print(f"{key}: {value}")
    if result.check is not None:
        print(result.check.describe())
    if result.kernels is not None:
        print(f"kernels per inference: {result.kernels}")
    print()
    total = sum(layer.stats.median_ms for layer in result.layers) or 1.0
    header = ["#", "layer", "median ms", "p90 ms", "p99 ms", "%"]
    header += ["kernels"] if result.kernels is not None else []
    rows: list[list[Any]] = []
    for i, layer in enumerate(result.layers):
        row: list[Any] = [i, _short(layer.name), layer.stats.median_ms,
                          layer.stats.percentiles.get(90.0), layer.stats.percentiles.get(99.0),
                          100.0 * layer.stats.median_ms / total]
        if result.kernels is not None:
            row.append(layer.kernels)
        rows.append(row)
    print(format_table(header, rows))
    print()
    print("how each layer ran:")
    for i, layer in enumerate(result.layers):
        print(f"{i:>4}  {_short(layer.name)}: {layer.path}")
    print()
    from fusionlab.formats.trtexec import format_summary

    print(format_summary(profile), end="")
    return 0
