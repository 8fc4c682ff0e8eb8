"""fuse_conv_pool: a pooling layer joins the convolution layer before it (implicit INT8).

Before::

    x -> [Conv + BatchNormalization + Relu] -> MaxPool -> y
After::

    x -> [Conv + BatchNormalization + Relu + MaxPool] -> y     (one Convolution layer)

The 8.x Developer Guide lists "Convolution and Pooling" for layers of the same precision;
engines show it for INT8 (TensorRT 10.1, NVIDIA/TensorRT#4020: ``resnetv15_conv0_fwd +
resnetv15_batchnorm0_fwd + resnetv15_relu0_fwd + resnetv15_pool0_fwd``) and not for FP32
(TensorRT 10.16, records/cookbook-mnist-trt10.16-h100: ``node_conv2d + node_relu`` then a
CaskPooling ``node_max_pool2d``). No FP16 engine showing either was found: FP16 is left
unfused. At which precisions it happens is the target's fact (``Target.conv_pool``): the
implicit INT8 of trt8 and trt10; trt11 has no implicit INT8 (its INT8 is Q/DQ only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion import qdq
from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import CONV_CORES, Context, Join, Rule, alone, layer_tail
from fusionlab.ir import ops
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

POOLS = frozenset({"MaxPool", "AveragePool"})

RULE = Rule(
    name="fuse_conv_pool",
    conditions=(
        "the MaxPool/AveragePool reads one tensor, written by a convolution layer (optionally "
        "with a folded BatchNorm, a residual Add and point-wise activations) with no pooling yet",
        "the convolution's outputs are read by the pooling alone and are not graph outputs",
        "the target fuses pooling into convolutions at this precision, implicitly (no Q/DQ "
        "nodes: the QAT record keeps Conv_9 and MaxPool_12 apart)",
    ),
    source=(
        "TensorRT 8.x Developer Guide, 'Convolution and Pooling' (same precision; the convolution "
        "may carry a fused activation); NVIDIA/TensorRT#4020 (TensorRT 10.1, --int8: "
        "'resnetv15_conv0_fwd + resnetv15_batchnorm0_fwd + resnetv15_relu0_fwd + resnetv15_pool0_fwd'); "
        "records/cookbook-mnist-trt10.16-h100 (TensorRT 10.16 FP32: conv + relu and max pool stay "
        "two layers); NVIDIA Model-Optimizer partitioning.py ('Conv-Act-Pool fusion')"
    ),
    joins=(Join(CONV_CORES, POOLS, second_only=True),),
)
__doc__ = RULE.document(__doc__)

_TAIL = ops.POINTWISE | {"BatchNormalization"}


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    explicit = qdq.has_qdq(graph)  # Q/DQ nodes: INT8 where they say, not implicit INT8
    for name, _, mine in alone(work, POOLS):
        data = work.data_inputs(name)
        src = work.producer_layer(data[0]) if len(data) == 1 else None
        tail = layer_tail(work, src) if src is not None else None
        if src is None or tail is None or any(op not in _TAIL for op in tail):
            reject(1, [name])
            continue
        chain = [*work.layer(src).nodes, name]
        if not work.outputs_consumed_only_by(src, mine):
            reject(2, chain)
            continue
        if explicit or ctx.precision not in ctx.target.conv_pool:
            reject(3, chain, qdq.NOT_IMPLICIT if explicit else f"{ctx.precision} on target {ctx.target.name}")
            continue
        work.merge(src, mine, rule=RULE.name)
    return work.finish()
