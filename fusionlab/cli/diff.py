"""``fusionlab diff MODEL --layer-info F [--profile F] | --engine E | --build BACKEND``:
predicted vs actual (``--build rtx`` builds with TensorRT-RTX and needs no GPU)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fusionlab.cli.args import (
    add_actual_args,
    add_device_args,
    add_model_args,
    add_target_args,
    chosen_target,
    device_options,
    input_files,
    read_actual,
)
from fusionlab.compare.diff import Diff, diff_to_dict
from fusionlab.dtypes import PRECISIONS
from fusionlab.io import dumps_json, write_atomic
from fusionlab.plan import Kind
from fusionlab.table import format_table


def register(sub: Any) -> None:
    p = sub.add_parser("diff", help="compare the predicted plan with a real engine's layers (and times)")
    add_model_args(p)
    add_actual_args(p, required=True)
    add_target_args(p, precision_default=None, builds=True)
    add_device_args(p)
    p.add_argument("--json", metavar="FILE", help="write the diff as JSON ('-' for stdout)")
    p.add_argument("-o", "--output", metavar="OUT", help="draw the diff (.svg, .png, .pdf or .dot)")
    p.set_defaults(run=run)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f} ms"


def diff_text(d: Diff) -> str:
    """The human report: metrics, layer components, findings and the timing table."""
    out = [
        f"exact match: {d.metrics.exact_matches}/{d.metrics.engine_layers} engine layers "
        f"({100 * d.metrics.exact_match_rate:.1f}%); same-layer node pairs: precision {d.metrics.pair_precision:.3f}, "
        f"recall {d.metrics.pair_recall:.3f}",
    ]
    counts = {s: len(d.by_status(s)) for s in ("matched", "split", "merged", "mismatched")}
    sync = {layer.name for layer in d.actual.layers if layer.kind is Kind.SYNC}
    syncs = sum(1 for name in d.inserted if name in sync)
    out.append(", ".join(f"{n} {s}" for s, n in counts.items())
               + f", {len(d.inserted) - syncs} inserted by the engine"
               + (f" (and {syncs} stream syncs)" if syncs else "") + ", "
               f"{len(d.eliminated_disagreements)} elimination disagreements")
    misses = [m for m in d.matches if m.status != "matched"]
    if misses:
        out += ["", format_table(["status", "predicted", "engine"],
                                 [[m.status, " ; ".join(m.predicted), " ; ".join(m.actual)] for m in misses])]
    if d.findings:
        out += ["", "findings:"] + [str(f) for f in d.findings]
    if d.timing:
        rows = [[r.actual, r.predicted_ms, r.actual_ms, r.actual_share] for r in d.timing]
        out += ["", format_table(["engine layer", "predicted ms", "measured ms", "share %"], rows)]
        t = d.totals
        out.append(f"total measured {_ms(t.get('actual_ms'))} (engine-inserted layers "
                   f"{_ms(t.get('actual_inserted_ms'))}); total predicted {_ms(t.get('predicted_ms'))}")
        worst = d.worst_predicted()
        if worst:
            out += ["", "worst predicted:"] + [
                f"  {r.actual}: predicted {r.predicted_ms:.4f} ms, measured {r.actual_ms:.4f} ms" for r in worst
                if r.predicted_ms is not None and r.actual_ms is not None
            ]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from fusionlab.api import diff, load, predict

    g = load(args.model, batch=args.batch)
    options = device_options(args)
    actual, modelled = read_actual(args, g)
    target = chosen_target(args, modelled)
    precision = args.precision or (actual.precision if actual.precision in PRECISIONS else "fp32")
    prediction = predict(g, target, precision=precision, **options)
    d = diff(prediction, actual)
    protect = input_files(args)
    if args.json:
        text = dumps_json(diff_to_dict(d))
        if args.json == "-":
            sys.stdout.write(text)
            return 0
        write_atomic(args.json, text, protect=protect)
    print(f"{g.name}: predicted (target {target}, {precision}) vs {actual.source}")
    print(diff_text(d))
    if args.output:
        from fusionlab.api import draw

        draw(d, args.output, protect=protect)
    return 0
