"""``fusionlab predict MODEL``: the predicted engine layers for a TensorRT target."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from fusionlab.cli.args import add_device_args, add_model_args, add_target_args, device_options, input_files
from fusionlab.errors import FusionlabError
from fusionlab.io import write_atomic
from fusionlab.plan import Plan
from fusionlab.table import format_table

if TYPE_CHECKING:
    from fusionlab.fusion.predictor import Prediction


def register(sub: Any) -> None:
    p = sub.add_parser("predict", help="predict TensorRT's engine layers (fusions) for a model")
    add_model_args(p)
    add_target_args(p)
    p.add_argument(
        "--json", metavar="FILE", help="write the plan as fusionlab.plan/2 JSON ('-' for stdout)"
    )
    p.add_argument("--stages", action="store_true", help="show what each pass formed, in order")
    p.add_argument(
        "--explain",
        metavar="NODE",
        action="append",
        default=[],
        help="say which rule took NODE and why other rules did not (repeatable)",
    )
    p.add_argument(
        "--eliminated",
        action="store_true",
        help=f"list every eliminated node (by default only up to {ELIMINATED_LISTED}; more are counted by kind)",
    )
    add_device_args(p)
    p.set_defaults(run=run)


ELIMINATED_LISTED = 20
"""Up to this many eliminated nodes are listed one per line; more are summarized by kind."""


NAME_WIDTH = 90
"""Layer names longer than this are shortened in tables (the JSON keeps them whole)."""


def short_name(name: str, width: int = NAME_WIDTH) -> str:
    """``name`` cut in the middle to ``width`` characters.

    >>> short_name("a" * 10 + "b" * 10, 9)
    'aaaa…bbbb'
    """
    if len(name) <= width:
        return name
    half = (width - 1) // 2
    return f"{name[:half]}…{name[len(name) - (width - 1 - half):]}"


def plan_table(plan: Plan) -> str:
    """The layer table printed by ``predict`` (and reused by other commands)."""
    timed = any(layer.time_ms is not None for layer in plan.layers)
    header = ["#", "layer", "kind", "rule", "nodes"] + (["ms"] if timed else [])
    rows: list[list[Any]] = []
    for i, layer in enumerate(plan.layers):
        row: list[Any] = [i, short_name(layer.name), layer.kind, layer.rule, len(layer.nodes)]
        if timed:
            row.append(layer.time_ms)
        rows.append(row)
    return format_table(header, rows)


def summary_line(plan: Plan, nodes: int) -> str:
    """``N ONNX nodes -> M layers (E eliminated, C inserted)``."""
    inserted = sum(1 for layer in plan.layers if layer.inserted)
    return (
        f"{nodes} ONNX nodes -> {len(plan.layers)} layers "
        f"({len(plan.eliminated)} eliminated, {inserted} inserted by the engine)"
    )


def eliminated_text(plan: Plan, *, every: bool = False) -> str:
    """One line per eliminated node, or (above :data:`ELIMINATED_LISTED`) a count per kind
    of elimination with an example each.

    >>> from fusionlab.plan import Elimination, How
    >>> gone = {f"c{i}": Elimination(How.CONSTANT, "constant-folded") for i in range(30)}
    >>> print(eliminated_text(Plan((), eliminated={**gone, "d": Elimination(How.NOOP, "an identity")})))
    eliminated 31 nodes (--eliminated lists each):
      30  constant-folded  (e.g. c0: constant-folded)
       1  noop             (e.g. d: an identity)
    """
    items = list(plan.eliminated.items())
    if every or len(items) <= ELIMINATED_LISTED:
        return "\n".join(f"eliminated {node}: {reason}" for node, reason in items)
    by_how: dict[str, list[str]] = {}
    for node, reason in items:
        by_how.setdefault(reason.how.value, []).append(node)
    width = max(len(h) for h in by_how)
    digits = len(str(max(len(nodes) for nodes in by_how.values())))
    lines = [f"eliminated {len(items)} nodes (--eliminated lists each):"]
    for how, nodes in sorted(by_how.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        example = nodes[0]
        lines.append(f"  {len(nodes):>{digits}}  {how:<{width}}  (e.g. {example}: "
                     f"{short_name(str(plan.eliminated[example]), 70)})")
    return "\n".join(lines)


def stages_text(prediction: Prediction) -> str:
    """What each pass did, in order."""
    out: list[str] = []
    for stage in prediction.stages:
        if stage.name == "original":
            out.append(f"original: {len(stage.plan.layers)} layers (one per ONNX node)")
            continue
        gone = len(stage.plan.eliminated) - len(
            prediction.stages[prediction.stages.index(stage) - 1].plan.eliminated
        )
        out.append(
            f"{stage.name}: {len(stage.plan.layers)} layers, formed {len(stage.formed)}, eliminated {gone}"
        )
        out.extend(f"    {layer.name}" for layer in stage.formed)
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from fusionlab.gcpause import paused

    # the cyclic collector paused for the whole command, output included: with a large
    # model's graph and plans alive, each full collection walks them all for nothing
    # (~0.15 s per collection at 10,000 nodes); load and predict pause it themselves
    with paused():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from fusionlab.api import load, predict
    from fusionlab.cli import leave_for_exit
    from fusionlab.plan.serialize import plan_to_json

    g = load(args.model, batch=args.batch)
    prediction = predict(g, args.target, precision=args.precision, **device_options(args))
    leave_for_exit(g, prediction)
    plan = prediction.plan
    if args.json:
        text = plan_to_json(plan)
        if args.json == "-":
            sys.stdout.write(text)
            return 0
        write_atomic(args.json, text, protect=input_files(args))
    print(
        f"{g.name}: target {args.target} ({prediction.target.versions}), {args.precision}, "
        f"batch {g.batch or 'as in file'}"
    )
    print(summary_line(plan, len(g)))
    print()
    if args.stages:
        print(stages_text(prediction))
        print()
    print(plan_table(plan))
    if any(layer.time_ms is not None for layer in plan.layers):
        total = sum(layer.time_ms or 0.0 for layer in plan.layers)
        print(f"predicted total on {args.device}: {total:.4f} ms")
    if plan.eliminated:
        print()
        print(eliminated_text(plan, every=args.eliminated))
    for node in args.explain:
        if node not in g:
            raise FusionlabError(f"{args.model}: no node named {node!r} to explain")
        print()
        print("\n".join(prediction.explain(node)))
    return 0
