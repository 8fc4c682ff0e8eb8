"""fuse_depthwise_separable: a depthwise convolution with activation and the convolution with
activation after it become one DepSepConvolution layer (implicit INT8).

Before::

    x -> [Conv 3x3 depthwise + Relu] -> [Conv 1x1 + Relu] -> y
After::

    x -> [Conv + Relu + Conv + Relu] -> y         (one DepSepConvolution layer)

The 8.x Developer Guide lists it for INT8 convolutions on GPUs of compute capability 7.2 or
later; fusionlab does not look at the GPU when it predicts layers and assumes one of those
(a V100, 7.0, would not fuse them). At which precisions it happens is the target's fact
(``Target.depthwise_separable``): trt8 INT8; trt10 the same for want of any 10.x evidence
either way; trt11 none, as it has no implicit INT8. No engine listing of a DepSepConvolution
layer was found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion import qdq
from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule, layer_tail
from fusionlab.ir import ops
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="fuse_depthwise_separable",
    conditions=(
        "a convolution layer with a fused activation reads one tensor, written by a depthwise "
        "convolution layer (groups = input channels > 1) with a fused activation",
        "the depthwise layer's outputs are read by that convolution alone and are not graph outputs",
        "the target fuses depthwise-separable pairs at this precision (implicit INT8, no Q/DQ "
        "nodes; compute capability 7.2 or later assumed)",
    ),
    source=(
        "TensorRT 8.x Developer Guide, 'Depthwise Separable Convolution' (a depthwise convolution "
        "with activation followed by a convolution with activation may be fused into one "
        "DepSepConvolution layer; both INT8, compute capability 7.2 or later)"
    ),
    joins=(Join(frozenset({"Conv"}), frozenset({"Conv"})),),
)
__doc__ = RULE.document(__doc__)


def _depthwise(graph: Graph, name: str) -> bool:
    node = graph.node(name)
    group = int(node.attrs.get("group", 1))
    t = graph.tensors.get(node.inputs[0])
    channels = t.shape[1] if t is not None and t.shape is not None and len(t.shape) > 1 else None
    return group > 1 and group == channels


def _conv_act(work: Work, index: int) -> bool:
    tail = layer_tail(work, index)
    return tail is not None and work.ops_of(index)[0] == "Conv" and not work.layer(index).merged \
        and any(op in ops.ACTIVATIONS for op in tail) and "Add" not in tail


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    if not any(_depthwise(graph, n) for n in graph.names_with_ops({"Conv"})):
        return plan  # no depthwise convolution: no pair to fuse or explain
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    explicit = qdq.has_qdq(graph)  # Q/DQ nodes: INT8 where they say, not implicit INT8
    for index in work.live():
        if work.layers[index] is None or not _conv_act(work, index):
            continue
        inputs = work.external_inputs(index)
        src = work.producer_layer(inputs[0]) if len(inputs) == 1 else None
        if src is None or src == index or not _conv_act(work, src) \
                or not _depthwise(graph, work.layer(src).nodes[0]) or _depthwise(graph, work.layer(index).nodes[0]):
            continue  # not a depthwise + convolution pair: nothing to explain
        pair = [*work.layer(src).nodes, *work.layer(index).nodes]
        if not work.outputs_consumed_only_by(src, index):
            reject(2, pair)
            continue
        if explicit or ctx.precision not in ctx.target.depthwise_separable:
            reject(3, pair, qdq.NOT_IMPLICIT if explicit else f"{ctx.precision} on target {ctx.target.name}")
            continue
        work.merge(src, index, rule=RULE.name)
    return work.finish()
