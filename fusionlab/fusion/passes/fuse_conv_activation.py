"""fuse_conv_activation: an activation joins the convolution (or fully connected) layer before it.

Before::

    x -> [Conv + BatchNormalization] -> Relu -> y
After::

    x -> [Conv + BatchNormalization + Relu] -> y      ("CBR": one kernel)

Which activations fuse, at which precision, and into which layers, is the target's table
(``Target.conv_activations``, ``Target.activation_producers``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import CONV_CORES, Context, Join, Rule, activation_candidates, layer_tail
from fusionlab.ir import ops
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="fuse_conv_activation",
    conditions=(
        "the input is written by a convolution/fully connected layer (optionally with a folded "
        "BatchNorm and a residual Add) with no activation fused yet",
        "that output is read by the activation alone and is not a graph output",
        "the target fuses this activation into a convolution at this precision",
    ),
    source=(
        "TensorRT Layer Fusion Catalog: 'Convolution and ReLU Activation', 'Convolution and Clip', "
        "'Convolution and GELU', generic activations; the GoogLeNet 'CBR' figure in NVIDIA's "
        "TensorRT 3 material (vertical fusion)"
    ),
    joins=(Join(CONV_CORES, ops.ACTIVATIONS, second_only=True),),
)
__doc__ = RULE.document(__doc__)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    supported = ctx.target.activations_for(ctx.precision)
    producers = ctx.target.activation_producers
    for name, mine, src in activation_candidates(work, ctx):
        op = graph.node(name).op
        layer_ops = work.ops_of(src) if src is not None else []
        tail = layer_tail(work, src) if src is not None else None
        core = layer_ops[1] if layer_ops and layer_ops[0] == "Pad" else (layer_ops[0] if layer_ops else "")
        if (
            src is None
            or tail is None
            or core not in producers
            or any(t not in ("BatchNormalization", "Add") for t in tail)
        ):
            reject(1, [name])
            continue
        chain = [*work.layer(src).nodes, name]
        if not work.outputs_consumed_only_by(src, mine):
            reject(2, chain)
            continue
        if op not in supported:
            reject(3, chain, f"{op} at {ctx.precision} on target {ctx.target.name}")
            continue
        work.merge(src, mine, rule=RULE.name)
    return work.finish()
