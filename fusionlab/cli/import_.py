"""``fusionlab import LAYERINFO.json``: trtexec/TREx exports -> fusionlab's plan JSON.

Reads engine layer information (``trtexec --exportLayerInfo``, ``IEngineInspector``, TREx
``engine.graph.json``, or a saved TensorRT-RTX build log: :mod:`fusionlab.formats.rtx_log`),
optionally a profile (``--exportProfile``, ``--exportTimes``, TREx
``engine.profile.metadata.json`` or a trtexec log) joined to the layers by name, and the
ONNX model the engine was built from (to resolve layer names to its nodes and find the
eliminated ones). Writes the plan (``fusionlab.plan/2``) with ``-o``, else prints a table.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fusionlab.cli.args import input_files, positive_int
from fusionlab.errors import FusionlabError
from fusionlab.formats.rtx_log import read_engine_layers
from fusionlab.formats.trtexec import (
    format_summary,
    join_profile,
    read_profile,
)
from fusionlab.io import write_atomic
from fusionlab.ir.graph import load
from fusionlab.plan import Kind, Plan
from fusionlab.plan.serialize import plan_to_json
from fusionlab.table import format_table


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help="convert trtexec/TREx exports (layer info, profile) into a fusionlab plan",
        description=(
            "Convert engine layer information (trtexec --exportLayerInfo, IEngineInspector, "
            "TREx engine.graph.json) and optionally a profile into fusionlab's plan JSON "
            "(fusionlab.plan/2). Layers join profile records by name; --model resolves layer "
            "names to the ONNX nodes and lists the nodes no layer computes."
        ),
    )
    p.add_argument(
        "layer_info", metavar="LAYERINFO.json",
        help="engine layer information (trtexec --exportLayerInfo, TREx engine.graph.json)",
    )
    p.add_argument(
        "--profile", metavar="PROFILE.json",
        help="per-layer times (trtexec --exportProfile) or another trtexec/TREx timing file",
    )
    p.add_argument(
        "--model", metavar="MODEL.onnx",
        help="the ONNX model the engine was built from: resolves layer names to its nodes",
    )
    p.add_argument(
        "--batch", type=positive_int, default=None, metavar="N",
        help="with --model: fix a symbolic or dynamic batch dimension to N",
    )
    p.add_argument(
        "-o", "--output", metavar="PLAN.json",
        help="write the plan as fusionlab.plan/2 JSON ('-' for stdout) instead of a table",
    )
    p.set_defaults(run=run)


def layer_rows(plan: Plan) -> list[list[Any]]:
    """One row per layer: name, TensorRT's layer type, fusionlab's kind, number of ONNX nodes,
    measured time (ms)."""
    return [[layer.name, layer.engine_type or "", layer.kind, len(layer.nodes), layer.time_ms]
            for layer in plan.layers]


def run(args: argparse.Namespace) -> int:
    if args.batch is not None and args.model is None:
        raise FusionlabError("--batch needs --model")
    graph = load(args.model, batch=args.batch) if args.model else None
    plan = read_engine_layers(args.layer_info, graph)
    profile = read_profile(args.profile) if args.profile else None
    if profile is not None and profile.layers:
        plan = join_profile(plan, profile)

    if args.output:
        text = plan_to_json(plan)
        if args.output == "-":
            sys.stdout.write(text)
        else:
            inputs = input_files(args)
            write_atomic(args.output, text, protect=inputs)
        return 0

    print(format_table(["layer", "type", "kind", "nodes", "time (ms)"], layer_rows(plan)))
    syncs = sum(1 for layer in plan.layers if layer.kind is Kind.SYNC)
    inserted = sum(1 for layer in plan.layers if layer.inserted) - syncs
    timed = [layer.time_ms for layer in plan.layers if layer.time_ms is not None]
    line = f"\n{len(plan.layers)} layers ({inserted} inserted by TensorRT"
    line += f", {syncs} stream syncs)" if syncs else ")"
    line += f", precision {plan.precision}"
    line += f", batch {plan.batch}" if plan.batch is not None else ""
    if timed:
        line += f", {sum(timed):.4g} ms per run in {len(timed)} timed layers"
    print(line)
    if plan.eliminated:
        print(f"eliminated: {', '.join(f'{n} ({why})' for n, why in plan.eliminated.items())}")
    if profile is not None and profile.summary is not None:
        print()
        print(format_summary(profile), end="")
    return 0
