"""eliminate_concat: a channel Concat disappears; its producers write into its output.

Before::

    A ─┐
    B ─┼─> Concat -> y
    C ─┘
After::

    A, B, C write straight into their channel slices of y (no Concat layer); where a
    producer cannot, a ``<tensor> copy`` layer copies its output into the slice.

Condition 1 is the Concat's own; conditions 2-5 are checked for each input, and a failure
there inserts a copy for that input, it does not keep the Concat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Rule, alone
from fusionlab.plan import How, Kind, Layer, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="eliminate_concat",
    conditions=(
        "the Concat joins along the channel axis (axis 1 of NCHW) or the outermost axis",
        "the input is written by a layer (not a graph input or a constant)",
        "the input is read by this Concat alone and is not a graph output",
        "its producer is not a horizontally merged layer",
        "the input appears once in the Concat",
    ),
    source=(
        "NVIDIA's TensorRT 3 GoogLeNet material ('concat layer elimination': outputs are directed to "
        "their eventual destination); TensorRT 2.1 User Guide (merging of concatenation layers); "
        "engines showing 'X copy' layers where a tensor could not be written in place "
        "(records/README.md; NVIDIA/TensorRT#3254: 'Generating copy for A to B because input is not movable')"
    ),
    eliminates=frozenset({"Concat"}),
)
__doc__ = RULE.document(__doc__)


def _axis_ok(graph: Graph, name: str) -> bool:
    node = graph.node(name)
    out = graph.tensors.get(node.outputs[0])
    rank = len(out.shape) if out is not None and out.shape is not None else None
    axis = int(node.attrs.get("axis", 1))
    if rank is not None and axis < 0:
        axis += rank
    return axis in (0, 1)


def _copy_name(tensor: str, into: str, copied: dict[str, int]) -> str:
    """``X copy`` (as TensorRT names it), ``X copy into Y`` for the second and later copies of
    one tensor (a DenseNet feature copied into every later Concat): layer names are unique."""
    count = copied.get(tensor, 0)
    copied[tensor] = count + 1
    return f"{tensor} copy" if count == 0 else f"{tensor} copy into {into}"


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    copied: dict[str, int] = {}
    for layer in plan.layers:
        for t in layer.inputs if layer.inserted else ():
            copied[t] = copied.get(t, 0) + 1
    for name, node, mine in alone(work, {"Concat"}):
        if not _axis_ok(graph, name):
            reject(1, [name], f"axis {node.attrs.get('axis')}")
            continue
        out = node.outputs[0]
        copies: list[tuple[int | None, Layer]] = []
        seen: set[str] = set()
        for raw in node.inputs:
            if not raw:
                continue
            t = work.resolve(raw)
            src = work.producer_layer(t)
            upstream = graph.producer.get(t)
            in_place = (
                upstream is not None
                and graph.node(upstream).op == "Concat"
                and upstream in work.eliminated
            )
            failed = 0
            if src is None and not in_place:
                failed = 2
            elif any(c != name for c in work.consumers(t)) or work.is_graph_output(t):
                failed = 3
            elif src is not None and work.layer(src).merged:
                failed = 4
            elif t in seen:
                failed = 5
            seen.add(t)
            if failed:
                producer_nodes = work.layer(src).nodes if src is not None else ()
                reject(failed, [*producer_nodes, name], f"{t} is copied into {out}"
                )
                copies.append((src, Layer(_copy_name(t, out, copied), Kind.COPY, (), RULE.name,
                                          inputs=(t,), outputs=(out,))))
        work.eliminate(
            name,
            How.CONCAT,
            "concat elimination: producers write into its output"
            + (f" ({len(copies)} copied)" if copies else ""),
        )
        for src, copy in copies:
            if src is not None:
                work.insert_after(src, copy)
            else:
                work.insert_after(mine, copy)
    return work.finish()
