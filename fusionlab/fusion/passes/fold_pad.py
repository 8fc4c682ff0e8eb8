"""fold_pad: a zero Pad before a convolution becomes the convolution's own padding.

Before::

    x -> Pad(0) -> Conv -> y
After::

    x -> [Pad + Conv] -> y          (one Convolution layer with larger padding)

A Pad before pooling is not folded: pooling pads with -inf or excludes padding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule, alone
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

_CONVS = frozenset({"Conv", "ConvTranspose"})

RULE = Rule(
    name="fold_pad",
    conditions=(
        "the Pad's output is read by one Conv/ConvTranspose alone, as its data input",
        "constant mode with value 0",
        "pads are non-negative and only on spatial dimensions",
        "the Pad's output is not a graph output",
    ),
    source=(
        "TensorRT Layer Fusion Catalog, 'Padding and Convolution/Deconvolution' (a padding layer "
        "followed by a convolution fuses when all padding sizes are non-negative)"
    ),
    joins=(Join(frozenset({"Pad"}), _CONVS),),
)
__doc__ = RULE.document(__doc__)


def _pads(graph: Graph, name: str) -> list[int] | None:
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
    reject = ctx.rejector(RULE)
    for name, node, mine in alone(work, {"Pad"}):
        users = work.consumers(node.outputs[0])
        user = users[0] if len(users) == 1 else None
        if (
            user is None
            or graph.node(user).op not in _CONVS
            or (work.resolve(graph.node(user).inputs[0]) != node.outputs[0])
        ):
            reject(1, [name, *users])
            continue
        pair = [name, user]
        if node.attrs.get("mode", "constant") != "constant" or not _zero_value(graph, name):
            reject(2, pair)
            continue
        pads = _pads(graph, name)
        if pads is None or any(p < 0 for p in pads) or len(pads) < 4:
            reject(3, pair, "pads unknown or negative")
            continue
        rank = len(pads) // 2
        if any(pads[i] or pads[i + rank] for i in range(min(2, rank))):
            reject(3, pair, "pads on batch or channel")
            continue
        if work.is_graph_output(node.outputs[0]):
            reject(4, pair)
            continue
        conv = work.owner[user]
        if work.layer(conv).nodes[0] != user:
            reject(1, pair, "the convolution already starts another layer")
            continue
        work.merge(mine, conv, rule=RULE.name, kind=work.layer(conv).kind, absorbed=[name])
    return work.finish()
