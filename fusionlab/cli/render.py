"""``fusionlab render MODEL -o OUT.svg``: draw the graph, the predicted plan, or every stage.

The output format follows the extension of ``-o`` (``.svg``, ``.png``, ``.pdf`` need
Graphviz's ``dot``; ``.dot``/``.gv`` write the DOT text and need nothing). ``--stage all``
writes one file per stage: ``OUT-00-original.svg``, ``OUT-01-<pass>.svg``, ...
``--plan PLAN.json`` draws a plan read from a file (e.g. one ``fusionlab import`` made
from a real engine) against MODEL instead of predicting one. ``--build BACKEND`` builds
MODEL (``rtx``: TensorRT-RTX, no GPU needed) and draws the diff of the prediction with the
engine's layers, as ``fusionlab diff -o``.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

from fusionlab.api import read_plan
from fusionlab.cli.args import add_model_args, add_target_args, chosen_target, input_files, read_actual
from fusionlab.errors import FusionlabError
from fusionlab.fusion.predictor import ORIGINAL, predict
from fusionlab.ir.graph import load
from fusionlab.render.dot import expanded_regions, graph_to_dot, plan_to_dot, regions_in, stage_title
from fusionlab.render.graphviz import INSTALL_HINT, dot_program, output_format, render_file

log = logging.getLogger(__name__)

LARGE = 2000
"""Above this many drawn boxes, a warning suggests --focus, --match or --compact."""
MAX_BOXES = 1500
"""Above this many boxes (``--max-boxes``) render refuses to run Graphviz: it takes minutes
(the 1,996-node ViT-S/16 graph: about 5 minutes) and the drawing is unreadable anyway. DOT
output (``.dot``) is only text and is written whatever its size."""


def _radius(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "render", help="draw the ONNX graph, the predicted plan or every pass's stage (Graphviz)",
        description="Draw MODEL as SVG, PNG, PDF or DOT (by the extension of -o): the ONNX "
                    "graph (--stage original), the plan after one pass (--stage PASS), the "
                    "predicted plan (--stage plan, the default) or every stage (--stage all: "
                    "OUT-00-original.svg, OUT-01-<pass>.svg, ...).",
    )
    add_model_args(p)
    add_target_args(p, builds=True)
    p.add_argument("--build", metavar="BACKEND", choices=("rtx", "tensorrt", "auto"),
                   help="build MODEL (rtx: TensorRT-RTX, no GPU needed; tensorrt; auto) and draw the "
                        "diff of the prediction with the engine's layers")
    p.add_argument("--stage", default="plan", metavar="STAGE",
                   help="original, a pass of the target, plan (the last stage; default) or all")
    p.add_argument("--plan", metavar="PLAN.json", dest="plan_file",
                   help="draw this fusionlab.plan/2 file (e.g. from 'fusionlab import') "
                        "instead of a prediction")
    p.add_argument("--focus", metavar="NODE",
                   help="draw only what lies within --radius edges of NODE (a node or layer name)")
    p.add_argument("--radius", type=_radius, default=2, metavar="K",
                   help="with --focus: how many edges away to draw (default 2)")
    p.add_argument("--match", metavar="REGEX",
                   help="draw only the layers (or nodes) whose name matches, their neighbours in grey")
    p.add_argument("--compact", action="store_true",
                   help="one box per layer instead of a box around its ops")
    p.add_argument("--expand", metavar="REGION", action="append", default=[],
                   help="draw this Myelin region ({ForeignNode[...]}, drawn as one box otherwise) "
                        "with its ops; REGION is the layer's name or one of its nodes (repeatable)")
    p.add_argument("--max-boxes", type=_radius, default=MAX_BOXES, metavar="N",
                   help=f"refuse to draw more than N boxes (default {MAX_BOXES})")
    p.add_argument("--title", help="title drawn above the figure (default: what the stage is)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="file to write: .svg, .png, .pdf (need Graphviz's dot) or .dot/.gv")
    p.set_defaults(run=run)


def _stage_path(out: Path, index: int, name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    return out.with_name(f"{out.stem}-{index:02d}-{safe}{out.suffix}")


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args.output)
    if fmt != "dot" and dot_program() is None:
        raise FusionlabError(INSTALL_HINT)
    if args.focus is None and args.radius != 2:
        log.warning("--radius has no effect without --focus")
    g = load(args.model, batch=args.batch)
    options: dict[str, Any] = {"focus": args.focus, "radius": args.radius, "match": args.match}
    limit = args.max_boxes
    protect = input_files(args)
    out = Path(args.output)
    if args.build:
        if args.plan_file or args.stage != "plan":
            raise FusionlabError("--build draws the diff with the built engine; it takes no --plan or --stage")
        from fusionlab.api import diff
        from fusionlab.render.dot import diff_to_dot

        actual, modelled = read_actual(args, g)
        args.target = chosen_target(args, modelled)
        d = diff(predict(g, args.target, args.precision), actual)
        title = args.title or f"{g.name}: target {args.target} vs {actual.source}"
        dot = diff_to_dot(g, d, title=title, members=not args.compact, expand=args.expand, **options)
        _check_size(dot, limit, fmt)
        render_file(dot, out, protect=protect)
        print(f"wrote {out} (exact match {d.metrics.exact_matches}/{d.metrics.engine_layers} engine layers)")
        return 0
    args.target = chosen_target(args, None)
    if args.plan_file:
        if args.stage != "plan":
            raise FusionlabError("--plan draws the plan in the file; --stage applies to predictions")
        plan = read_plan(args.plan_file)
        title = args.title or f"{g.name}: {plan.source or 'plan'} ({len(plan.layers)} layers)"
        dot = plan_to_dot(plan, g, title=title, members=not args.compact, expand=args.expand,
                          **options)
        _check_size(dot, limit, fmt)
        render_file(dot, out, protect=protect)
        print(f"wrote {out}")
        return 0
    prediction = predict(g, args.target, args.precision)
    names = [s.name for s in prediction.stages]
    if args.expand:
        expanded_regions(prediction.plan, args.expand)  # an unknown region is an error
    if args.stage == "all":
        wanted = list(range(len(names)))
    elif args.stage == "plan":
        wanted = [len(names) - 1]
    elif args.stage in names:
        wanted = [names.index(args.stage)]
    else:
        raise FusionlabError(
            f"--stage {args.stage!r}: target {args.target} has the stages "
            f"{', '.join(names)} (or use plan, all)"
        )
    for index in wanted:
        title, subtitle = stage_title(prediction, index, final=args.stage == "plan")
        if args.title:
            title = args.title
        if names[index] == ORIGINAL:
            dot = graph_to_dot(g, title=title, subtitle=subtitle, **options)
        else:
            stage_plan = prediction.stages[index].plan
            dot = plan_to_dot(stage_plan, g, title=title, subtitle=subtitle,
                              members=not args.compact, expand=regions_in(stage_plan, args.expand),
                              **options)
        _check_size(dot, limit, fmt)
        path = _stage_path(out, index, names[index]) if args.stage == "all" else out
        render_file(dot, path, protect=protect)
        print(f"wrote {path}")
    return 0


def boxes_in(dot: str) -> int:
    r"""Boxes (node statements) in DOT text, edges left out.

    >>> boxes_in('digraph g {\n  n0 [label="a"];\n  n1 [label="b"];\n  n0 -> n1 [label="x"];\n}')
    2
    """
    return sum(1 for line in dot.splitlines() if " [label=" in line and " -> " not in line)


def _check_size(dot: str, limit: int, fmt: str) -> None:
    """Warn above :data:`LARGE` boxes; refuse above ``limit`` (``--max-boxes``) when
    Graphviz would have to lay it out."""
    boxes = boxes_in(dot)
    hint = ("draw part of it with --focus NODE --radius K or --match REGEX, or use --compact "
            "(Myelin regions are one box unless --expand names them)")
    if boxes > limit and fmt != "dot":
        raise FusionlabError(f"the drawing would have {boxes:,} boxes, more than --max-boxes "
                             f"{limit:,}: {hint}; or raise --max-boxes")
    if boxes > LARGE:
        log.warning("the drawing has %d boxes; Graphviz may be slow: %s", boxes, hint)
