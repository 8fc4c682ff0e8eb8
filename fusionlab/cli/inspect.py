"""``fusionlab inspect MODEL``: op histogram, parameters, FLOPs, inputs and outputs."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import TYPE_CHECKING, Any

from fusionlab.cli.args import add_model_args
from fusionlab.cli.common import emit_json
from fusionlab.table import format_table, human

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph
    from fusionlab.ir.tensors import Tensor


def register(sub: Any) -> None:
    p = sub.add_parser("inspect", help="summarize an ONNX model: ops, parameters, FLOPs, shapes")
    add_model_args(p)
    p.add_argument("--nodes", action="store_true", help="also list every node with its cost")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(run=run)


def summary(g: Graph) -> dict[str, Any]:
    """What ``inspect`` reports, as JSON-ready data."""
    flops = [n.cost.flops for n in g.nodes()]
    unknown = sorted({n.op for n in g.nodes() if n.cost.flops is None})
    return {
        "model": g.name,
        "batch": g.batch,
        "opset": g.opset,
        "nodes": len(g),
        "ops": dict(sorted(Counter(n.op for n in g.nodes()).items(), key=_by_count)),
        "parameters": sum(w.numel or 0 for w in g.weights.values()),
        "flops": sum(f for f in flops if f is not None),
        "flops_unknown_ops": unknown,
        "inputs": [_tensor(t) for t in g.inputs],
        "outputs": [_tensor(t) for t in g.outputs],
    }


def _by_count(kv: tuple[str, int]) -> tuple[int, str]:
    return (-kv[1], kv[0])


def _tensor(t: Tensor) -> dict[str, Any]:
    shape = list(t.shape) if t.shape is not None else None
    return {"name": t.name, "shape": shape, "dtype": t.dtype}


def node_rows(g: Graph) -> list[dict[str, Any]]:
    """One record per node: name, op, output shape, FLOPs, bytes read and written."""
    rows = []
    for n in g.nodes():
        out = g.tensors.get(n.outputs[0]) if n.outputs else None
        rows.append(
            {
                "name": n.name,
                "op": n.op,
                "output_shape": None if out is None or out.shape is None else list(out.shape),
                "flops": n.cost.flops,
                "bytes_read": n.cost.bytes_read,
                "bytes_written": n.cost.bytes_written,
                "note": n.cost.note,
            }
        )
    return rows


def _shape(shape: Any) -> str:
    return "?" if shape is None else "x".join("?" if d is None else str(d) for d in shape)


def run(args: argparse.Namespace) -> int:
    from fusionlab.ir.graph import load

    g = load(args.model, batch=args.batch)
    info = summary(g)
    if args.json:
        if args.nodes:
            info["node_table"] = node_rows(g)
        emit_json(info, None)
        return 0
    batch = info["batch"] or "as in file"
    print(f"model   {info['model']}  (opset {info['opset']}, {info['nodes']} nodes, batch {batch})")
    print(f"params  {info['parameters']:,}")
    unknown = info["flops_unknown_ops"]
    note = f"  (FLOPs unknown for: {', '.join(unknown)})" if unknown else ""
    print(f"FLOPs   {human(info['flops'], 'FLOP')}{note}")
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            print(f"{kind[:-1]:<7} {t['name']}  {_shape(t['shape'])}  {t['dtype']}")
    print()
    print(format_table(["op", "count"], list(info["ops"].items())))
    if args.nodes:
        print()
        header = ["node", "op", "output", "FLOPs", "bytes read", "bytes written", "note"]
        rows = [
            [r["name"], r["op"], _shape(r["output_shape"]), r["flops"], r["bytes_read"],
             r["bytes_written"], r["note"]]
            for r in node_rows(g)
        ]
        print(format_table(header, rows))
    return 0
