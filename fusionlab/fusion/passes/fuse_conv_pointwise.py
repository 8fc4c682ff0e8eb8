"""fuse_conv_pointwise: a point-wise layer that only transforms a convolution's output joins it.

Before::

    x -> Conv -> c ─> Sigmoid ─┐
                c ────────────Mul -> y          (SiLU / Swish: c * sigmoid(c))
After::

    x -> [Conv + PWN(Sigmoid, Mul)] -> y        (a "generic activation" epilogue)

Conditions:
 1. the PointWise layer's only data input is written by a convolution layer with no
    activation fused yet;
 2. everything the convolution layer writes is read by that PointWise layer alone and is
    not a graph output;
 3. the target fuses generic point-wise epilogues into convolutions at this precision.

Source: TensorRT Layer Fusion Catalog, "Convolution and generic activation" / point-wise
fusion into convolutions (TensorRT 8.x engines of YOLO-style SiLU networks are named
``Conv_0 + PWN(Sigmoid_1, Mul_2)``).
"""

from __future__ import annotations

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.base import Context, conv_tail
from fusionlab.ir.graph import Graph
from fusionlab.plan import Plan

NAME = "fuse_conv_pointwise"
CONDITIONS = (
    "the PointWise layer's only data input is written by a convolution layer with no activation yet",
    "the convolution's outputs are read by that PointWise layer alone and are not graph outputs",
    "the target fuses point-wise epilogues into convolutions at this precision",
)
SOURCE = "TensorRT Layer Fusion Catalog: Convolution and generic activation (PointWise epilogue)"


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    for index in work.live():
        layer = work.layer(index)
        if layer.kind != "PointWise" or work.layers[index] is None:
            continue
        inputs = work.external_inputs(index)
        src = work.producer_layer(inputs[0]) if len(inputs) == 1 else None
        tail = conv_tail(work.ops_of(src)) if src is not None else None
        if (
            src is None
            or tail is None
            or any(op not in ("BatchNormalization", "Add") for op in tail)
        ):
            ctx.reject(NAME, CONDITIONS, 1, layer.nodes)
            continue
        pair = [*work.layer(src).nodes, *layer.nodes]
        if not work.outputs_consumed_only_by(src, index):
            ctx.reject(NAME, CONDITIONS, 2, pair)
            continue
        if not ctx.target.conv_pointwise_for(ctx.precision):
            ctx.reject(NAME, CONDITIONS, 3, pair, f"{ctx.precision} on target {ctx.target.name}")
            continue
        work.merge(src, index, rule=NAME)
    return work.finish()
