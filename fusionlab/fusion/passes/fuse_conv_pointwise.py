"""fuse_conv_pointwise: a point-wise layer that only transforms a convolution's output joins it.

Before::

    x -> Conv -> c ─> Sigmoid ─┐
                c ────────────Mul -> y          (SiLU / Swish: c * sigmoid(c))
After::

    x -> [Conv + PWN(Sigmoid, Mul)] -> y        (a "generic activation" epilogue)

At which precisions the epilogue joins is the target's table (``Target.conv_pointwise``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import CONV_CORES, Context, Join, Rule, layer_tail
from fusionlab.ir import ops
from fusionlab.plan import Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="fuse_conv_pointwise",
    conditions=(
        "the PointWise layer's only data input is written by a convolution layer with no activation yet",
        "the convolution's outputs are read by that PointWise layer alone and are not graph outputs",
        "the target fuses point-wise epilogues into convolutions at this precision",
    ),
    source=(
        "TensorRT Layer Fusion Catalog, 'Convolution and generic activation' (PointWise epilogue; "
        "TensorRT 8.x engines of YOLO-style SiLU networks are named Conv_0 + PWN(Sigmoid_1, Mul_2))"
    ),
    joins=(Join(CONV_CORES, ops.POINTWISE, second_only=True),),
)
__doc__ = RULE.document(__doc__)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    for index in work.live():
        if work.layers[index] is None:
            continue  # merged into a convolution earlier in this loop
        layer = work.layer(index)
        if layer.kind is not Kind.POINTWISE:
            continue
        inputs = work.external_inputs(index)
        src = work.producer_layer(inputs[0]) if len(inputs) == 1 else None
        tail = layer_tail(work, src) if src is not None else None
        if src is None or tail is None or any(op not in ("BatchNormalization", "Add") for op in tail):
            reject(1, layer.nodes)
            continue
        pair = [*work.layer(src).nodes, *layer.nodes]
        if not work.outputs_consumed_only_by(src, index):
            reject(2, pair)
            continue
        if not ctx.target.conv_pointwise_for(ctx.precision):
            reject(3, pair, f"{ctx.precision} on target {ctx.target.name}")
            continue
        work.merge(src, index, rule=RULE.name)
    return work.finish()
