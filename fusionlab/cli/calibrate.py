"""``fusionlab calibrate``: fit the cost model's efficiency factors to a measured profile.

Reads an engine's layer information (``trtexec --exportLayerInfo``) and its per-layer
profile (``--exportProfile`` JSON or a ``--dumpProfile`` log), joins them by layer name,
fits per-class efficiency factors and the per-layer overhead (:func:`fusionlab.cost.model.fit`)
and reports the error before and after. ``-o EFF.json`` saves the factors for
``fusionlab predict --device NAME --efficiency EFF.json``.

Costs come from the ONNX model's nodes with ``--model`` (FLOPs as fusionlab counts them),
else from the inspector's own fields (kernel sizes, channel counts, tensor dimensions).

This module also holds the ``--device``/``--efficiency`` options that ``predict`` adds
(:func:`add_device_args`, :func:`apply_device`).
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from fusionlab.cli.args import input_files, positive_int
from fusionlab.cost.devices import DEVICES, get
from fusionlab.dtypes import PRECISIONS
from fusionlab.errors import FusionlabError
from fusionlab.io import write_atomic
from fusionlab.table import format_table

if TYPE_CHECKING:
    from fusionlab.cost import model as cost

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit the cost model's efficiency factors to a measured per-layer profile",
        description=(
            "Join an engine's layer information (trtexec --exportLayerInfo) with its "
            "per-layer profile (--exportProfile JSON or a --dumpProfile log) by layer name, "
            "fit the cost model's efficiency factors per layer class and the per-layer "
            "overhead (least squares on log times), and report the error before and after. "
            "-o saves the factors for 'fusionlab predict --device NAME --efficiency FILE'."
        ),
    )
    p.add_argument("--layer-info", required=True, metavar="FILE",
                   help="engine layer information JSON (trtexec --exportLayerInfo)")
    p.add_argument("--profile", required=True, metavar="FILE",
                   help="per-layer times (trtexec --exportProfile JSON or a --dumpProfile log)")
    p.add_argument("--device", required=True, metavar="NAME",
                   help=f"the GPU that ran the engine (known: {', '.join(DEVICES)})")
    p.add_argument("--model", metavar="MODEL.onnx",
                   help="the ONNX model the engine was built from (FLOPs from its nodes)")
    p.add_argument("--batch", type=positive_int, metavar="N",
                   help="batch size for --model (default: the engine's)")
    p.add_argument("--precision", choices=list(PRECISIONS),
                   help="engine precision (default: read from the layer information)")
    p.add_argument("--no-tf32", action="store_true",
                   help="the fp32 engine was built without TF32")
    p.add_argument("--efficiency", metavar="FILE",
                   help="factors to start from and to report 'before' with (default: built-in)")
    p.add_argument("-o", "--output", metavar="EFF.json", help="write the fitted factors here")
    p.set_defaults(run=run)


def _metrics_row(label: str, m: cost.Metrics) -> list[Any]:
    return [label, f"{m.total_error_pct:+.1f} %", f"{m.median_abs_error_pct:.1f} %",
            f"{m.spearman:.3f}", f"{m.rms_log_error:.3f}"]


def report(
    before: cost.Efficiency, after: cost.Efficiency, samples: tuple[cost.Sample, ...]
) -> str:
    """The factor table and the before/after error table."""
    from fusionlab.cost import model as cost

    counts: dict[str, int] = {}
    for s in samples:
        counts[s.cost.cls] = counts.get(s.cost.cls, 0) + 1
    rows = []
    for cls in cost.CLASSES:
        b, a = before.of(cls), after.of(cls)
        rows.append([cls, counts.get(cls, 0), b.compute, a.compute, b.memory, a.memory])
    factors = format_table(
        ["class", "layers", "compute", "fitted", "memory", "fitted"], rows
    )
    overhead = (f"overhead per layer: {before.overhead_ms * 1000:.1f} us -> "
                f"{after.overhead_ms * 1000:.1f} us")
    m0, m1 = cost.evaluate(samples, before), cost.evaluate(samples, after)
    errors = format_table(
        ["", "total error", "median |error|", "Spearman", "rms log error"],
        [_metrics_row("before", m0), _metrics_row("after", m1)],
    )
    return "\n".join([factors, overhead, "", errors])


def run(args: argparse.Namespace) -> int:
    from fusionlab.cost import model as cost
    from fusionlab.formats.trtexec import engine_info_to_plan, parse_engine_info, read_profile
    from fusionlab.ir.graph import load

    device = get(args.device)
    info = parse_engine_info(args.layer_info)
    profile = read_profile(args.profile)
    if not profile.layers:
        raise FusionlabError(f"{args.profile}: has no per-layer times to fit to")
    bare = engine_info_to_plan(info)
    precision = args.precision or bare.precision
    if precision not in cost.COST_PRECISIONS:
        raise FusionlabError(
            f"{args.layer_info}: cannot tell the engine's precision ({precision!r}); "
            "give --precision"
        )
    tf32 = not args.no_tf32
    if args.model:
        batch = args.batch or bare.batch
        if args.batch and bare.batch and args.batch != bare.batch:
            log.warning("--batch %d differs from the engine's batch %d", args.batch, bare.batch)
        graph = load(args.model, batch=batch)
        plan = engine_info_to_plan(info, graph, precision=precision)
        costs = cost.layer_costs(graph, plan, device, precision, tf32=tf32,
                                 tensor_bytes=cost.engine_tensor_bytes(info))
    else:
        if args.batch:
            raise FusionlabError("--batch applies to --model only")
        costs = cost.engine_costs(info, device, precision, tf32=tf32)
    samples, left = cost.join(costs, profile)
    if not samples:
        raise FusionlabError(
            f"{args.profile}: no timed layer of {args.layer_info} (profiles join to layers by "
            "name: are they from the same engine?)"
        )
    start = cost.read_efficiency(args.efficiency) if args.efficiency else cost.DEFAULT_EFFICIENCY
    fitted = cost.fit(samples, start, device=device.name, precision=precision)
    math_note = "TF32 allowed" if tf32 and precision == "fp32" else precision
    text = [
        f"calibrate: {len(samples)} layers timed on {device.name} ({device.title}), "
        f"{math_note}; {len(left)} left out (untimed, timed at 0, no-ops or no work to scale)",
        "",
        report(start, fitted, samples),
    ]
    if args.output:
        m0, m1 = cost.evaluate(samples, start), cost.evaluate(samples, fitted)
        extra = {
            "layer_info": str(args.layer_info),
            "profile": str(args.profile),
            "model": str(args.model) if args.model else None,
            "tf32": tf32,
            "layers": len(samples),
            "before": _metrics_dict(m0),
            "after": _metrics_dict(m1),
        }
        protect = input_files(args)
        write_atomic(args.output, cost.efficiency_to_json(fitted, extra), protect=protect)
        text += ["", f"wrote {args.output}"]
    print("\n".join(text))
    return 0


def _metrics_dict(m: cost.Metrics) -> dict[str, float]:
    return {
        "total_error_pct": round(m.total_error_pct, 3),
        "median_abs_error_pct": round(m.median_abs_error_pct, 3),
        "spearman": round(m.spearman, 4),
        "rms_log_error": round(m.rms_log_error, 4),
    }
