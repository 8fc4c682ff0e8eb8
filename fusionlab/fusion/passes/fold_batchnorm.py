"""fold_batchnorm: a BatchNormalization after a convolution is folded into its weights.

Before::

    x -> Conv -> BatchNormalization -> y
After::

    x -> [Conv + BatchNormalization] -> y      (one Convolution layer; BN absorbed)

A BatchNormalization that does not follow a convolution or fully connected layer becomes a
Scale layer of its own (per-channel ``x * a + b``). Which layers a BatchNormalization folds
into is the target's fact (``Target.batchnorm_producers``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import CONV_CORES, Context, Join, Rule, alone, layer_tail
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="fold_batchnorm",
    conditions=(
        "the input is written by a convolution or fully connected layer (the target's "
        "BatchNorm producers) with nothing fused after it yet",
        "that output is read by the BatchNormalization alone and is not a graph output",
        "scale, bias, mean and variance are constants",
    ),
    source=(
        "TensorRT Layer Fusion Catalog, 'Convolution and Scale' (a Scale layer after a convolution "
        "is folded into its weights and bias, TensorRT 5 onwards); the ONNX parser imports "
        "BatchNormalization as a Scale layer; layer names keep the BN node "
        "(Conv_0 + BatchNormalization_1 + Relu_2)"
    ),
    joins=(Join(CONV_CORES, frozenset({"BatchNormalization"})),),
)
__doc__ = RULE.document(__doc__)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    producers = ctx.target.batchnorm_producers
    for name, node, mine in alone(work, {"BatchNormalization"}):
        data = work.data_inputs(name)
        src = work.producer_layer(data[0]) if data else None
        tail = layer_tail(work, src) if src is not None else None
        if src is None or tail != [] or graph.node(work.layer(src).nodes[-1]).op not in producers:
            reject(1, [name], "kept as a Scale layer")
            continue
        chain = [*work.layer(src).nodes, name]
        if not work.outputs_consumed_only_by(src, mine):
            reject(2, chain, "kept as a Scale layer")
            continue
        if len(node.inputs) < 5 or not all(work.is_const(t) for t in node.inputs[1:5]):
            reject(3, chain, "kept as a Scale layer")
            continue
        work.merge(src, mine, rule=RULE.name, absorbed=[name])
    return work.finish()
