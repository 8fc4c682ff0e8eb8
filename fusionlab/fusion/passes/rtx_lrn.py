"""rtx_lrn: an LRN is three kernels, each naming it.

Before::

    x -> LRN -> y
After::

    [LRN] (kgen: x squared, + layout), [LRN] (``avgpool <lrn>_pooling``), [LRN] (kgen ``MulAddPowDiv``)

The first kernel owns the node; the other two list it as shared.

Live builds (TensorRT-RTX 1.7.1.116): ``lrn_*`` (size 3 and 5, after a pool, as a graph
output, on the network input); googlenet-caffe (``conv1/norm1``, ``conv2/norm2``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

RULE = Rule(
    name="rtx_lrn",
    conditions=("the node is an LRN that reaches a graph output", rtx_kit.CONVEX),
    source="TensorRT-RTX 1.7.1.116 live builds: lrn_*, googlenet-caffe",
    joins=(Join(frozenset({"LRN"}), frozenset({"LRN"}), first_only=True, second_only=True),),
)
__doc__ = RULE.document(__doc__)


def decide(s: rtx_kit.RtxState, n: Node) -> None:
    """Record the three kernels of LRN ``n``."""
    for kind in (Kind.POINTWISE, Kind.POOLING, Kind.POINTWISE):
        s.emit([n.name], RULE.name, kind=kind)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Form the LRN kernels (decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)
