"""fuse_conv_activation: an activation joins the convolution (or fully connected) layer before it.

Before::

    x -> [Conv + BatchNormalization] -> Relu -> y
After::

    x -> [Conv + BatchNormalization + Relu] -> y      ("CBR": one kernel)

Conditions:
 1. the activation's input is written by a Conv/ConvTranspose/Gemm layer (optionally with a
    folded BatchNorm and a residual Add) that has no activation fused yet;
 2. that output is read by the activation alone and is not a graph output;
 3. the target fuses this activation into a convolution at this precision (the target's
    ``conv_activations`` table).

Source: TensorRT Layer Fusion Catalog — "Convolution and ReLU Activation", "Convolution and
Clip", "Convolution and GELU", generic activations; the GoogLeNet "CBR" figure in NVIDIA's
TensorRT 3 material (vertical fusion). Which activations fuse is per target (targets.py).
"""

from __future__ import annotations

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.base import Context, activation_candidates, conv_tail
from fusionlab.ir.graph import Graph
from fusionlab.plan import Plan

NAME = "fuse_conv_activation"
CONDITIONS = (
    "the input is written by a convolution/fully connected layer with no activation fused yet",
    "that output is read by the activation alone and is not a graph output",
    "the target fuses this activation into a convolution at this precision",
)
SOURCE = "TensorRT Layer Fusion Catalog: Convolution and ReLU / Clip / GELU / generic activation"


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    supported = ctx.target.activations_for(ctx.precision)
    producers = ctx.target.activation_producers
    for name, mine, src in activation_candidates(work, ctx):
        op = graph.node(name).op
        ops = work.ops_of(src) if src is not None else []
        tail = conv_tail(ops)
        core = ops[1] if ops and ops[0] == "Pad" else (ops[0] if ops else "")
        if (
            src is None
            or tail is None
            or core not in producers
            or any(op not in ("BatchNormalization", "Add") for op in tail)
        ):
            ctx.reject(NAME, CONDITIONS, 1, [name])
            continue
        chain = [*work.layer(src).nodes, name]
        if not work.outputs_consumed_only_by(src, mine):
            ctx.reject(NAME, CONDITIONS, 2, chain)
            continue
        if op not in supported:
            ctx.reject(NAME, CONDITIONS, 3, chain, f"{op} at {ctx.precision} on target {ctx.target.name}")
            continue
        work.merge(src, mine, rule=NAME)
    return work.finish()
