"""fold_batchnorm: a BatchNormalization after a convolution is folded into its weights.

Before::

    x -> Conv -> BatchNormalization -> y
After::

    x -> [Conv + BatchNormalization] -> y      (one Convolution layer; BN absorbed)

A BatchNormalization that does not follow a convolution or fully connected layer becomes a
Scale layer of its own (per-channel ``x * a + b``).

Conditions:
 1. the BatchNormalization's data input is written by a Conv, ConvTranspose or Gemm layer
    that has fused nothing after the convolution yet;
 2. that output is read by the BatchNormalization alone and is not a graph output;
 3. the BatchNormalization's scale, bias, mean and variance are constants.

Source: the TensorRT ONNX parser imports BatchNormalization as a Scale layer, and the
Layer Fusion Catalog lists "Convolution and Scale": a Scale layer after a convolution is
folded into the convolution's weights and bias (TensorRT 5 onwards; layer names keep the
BN node, e.g. ``Conv_0 + BatchNormalization_1 + Relu_2``).
"""

from __future__ import annotations

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.base import Context, conv_tail
from fusionlab.ir.graph import Graph
from fusionlab.plan import Plan

NAME = "fold_batchnorm"
CONDITIONS = (
    "the input is written by a Conv/ConvTranspose/Gemm layer with nothing fused after it yet",
    "that output is read by the BatchNormalization alone and is not a graph output",
    "scale, bias, mean and variance are constants",
)
SOURCE = "TensorRT Layer Fusion Catalog: Convolution and Scale; ONNX parser maps BatchNormalization to Scale"

PRODUCERS = frozenset({"Conv", "ConvTranspose", "Gemm"})


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    for name in graph.order:
        node = graph.node(name)
        if node.op != "BatchNormalization" or name not in work.owner:
            continue
        mine = work.owner[name]
        if work.layer(mine).nodes != (name,):
            continue
        data = work.data_inputs(name)
        src = work.producer_layer(data[0]) if data else None
        tail = conv_tail(work.ops_of(src)) if src is not None else None
        if (
            src is None
            or tail != []
            or work.graph.node(work.layer(src).nodes[-1]).op not in PRODUCERS
        ):
            ctx.reject(NAME, CONDITIONS, 1, [name], "kept as a Scale layer")
            continue
        chain = [*work.layer(src).nodes, name]
        if not work.outputs_consumed_only_by(src, mine):
            ctx.reject(NAME, CONDITIONS, 2, chain, "kept as a Scale layer")
            continue
        if len(node.inputs) < 5 or not all(work.is_const(t) for t in node.inputs[1:5]):
            ctx.reject(NAME, CONDITIONS, 3, chain, "kept as a Scale layer")
            continue
        work.merge(src, mine, rule=NAME, absorbed=[name])
    return work.finish()
