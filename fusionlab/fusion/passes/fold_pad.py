"""fold_pad: a zero Pad before a convolution becomes the convolution's own padding.

Before::

    x -> Pad(0) -> Conv -> y
After::

    x -> [Pad + Conv] -> y          (one Convolution layer with larger padding)

Conditions:
 1. the Pad's output is read by one Conv/ConvTranspose alone, as its data input (a Pad
    before pooling is not folded: pooling pads with -inf or excludes padding);
 2. the Pad is constant mode with value 0;
 3. pads are non-negative and only on spatial dimensions (not batch or channel);
 4. the Pad's output is not a graph output.

Source: TensorRT Layer Fusion Catalog, "Padding and Convolution/Deconvolution" (a padding
layer followed by a convolution fuses when all padding sizes are non-negative).
"""

from __future__ import annotations

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.base import Context
from fusionlab.ir.graph import Graph
from fusionlab.plan import Plan

NAME = "fold_pad"
CONDITIONS = (
    "the Pad's output is read by one Conv/ConvTranspose alone, as its data input",
    "constant mode with value 0",
    "pads are non-negative and only on spatial dimensions",
    "the Pad's output is not a graph output",
)
SOURCE = "TensorRT Layer Fusion Catalog: Padding and Convolution/Deconvolution"


def _pads(graph: Graph, work: Work, name: str) -> list[int] | None:
    node = graph.node(name)
    if "pads" in node.attrs:
        return [int(v) for v in node.attrs["pads"]]
    if len(node.inputs) > 1 and node.inputs[1] in graph.weights:
        return [int(v) for v in graph.array(node.inputs[1]).ravel()]
    return None


def _zero_value(graph: Graph, name: str) -> bool:
    node = graph.node(name)
    if float(node.attrs.get("value", 0.0)) != 0.0:
        return False
    if len(node.inputs) > 2 and node.inputs[2]:
        t = node.inputs[2]
        return t in graph.weights and not graph.array(t).any()
    return True


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    for name in graph.order:
        node = graph.node(name)
        if (
            node.op != "Pad"
            or name not in work.owner
            or work.layer(work.owner[name]).nodes != (name,)
        ):
            continue
        mine = work.owner[name]
        users = work.consumers(node.outputs[0])
        user = users[0] if len(users) == 1 else None
        if (
            user is None
            or graph.node(user).op not in ("Conv", "ConvTranspose")
            or (work.resolve(graph.node(user).inputs[0]) != node.outputs[0])
        ):
            ctx.reject(NAME, CONDITIONS, 1, [name, *users])
            continue
        pair = [name, user]
        if node.attrs.get("mode", "constant") != "constant" or not _zero_value(graph, name):
            ctx.reject(NAME, CONDITIONS, 2, pair)
            continue
        pads = _pads(graph, work, name)
        if pads is None or any(p < 0 for p in pads) or len(pads) < 4:
            ctx.reject(NAME, CONDITIONS, 3, pair, "pads unknown or negative")
            continue
        rank = len(pads) // 2
        if any(pads[i] or pads[i + rank] for i in range(min(2, rank))):
            ctx.reject(NAME, CONDITIONS, 3, pair, "pads on batch or channel")
            continue
        if work.is_graph_output(node.outputs[0]):
            ctx.reject(NAME, CONDITIONS, 4, pair)
            continue
        conv = work.owner[user]
        if work.layer(conv).nodes[0] != user:
            ctx.reject(NAME, CONDITIONS, 1, pair, "the convolution already starts another layer")
            continue
        work.merge(mine, conv, rule=NAME, kind=work.layer(conv).kind, absorbed=[name])
    return work.finish()
