"""quantize_weights: the Q/DQ pair on a constant weight becomes the layer's INT8 weights.

Before::

    conv1.weight -> QuantizeLinear_7 -> DequantizeLinear_8 ─┐
    x ─────────────────────────────────────────────────────Conv_9
After::

    [conv1.weight + QuantizeLinear_7]  (INT8 weights, quantized at build time; the
                                        DequantizeLinear's scale goes with them)

The pair is kept together here, before constant folding would remove it, and joins the
weighted layer that reads it in ``fuse_qdq_conv`` (absorbed: the engine names the weight
and its QuantizeLinear in that layer, ``conv1.weight + QuantizeLinear_7 + Conv_9``). A Q/DQ
pair of a constant that no weighted op reads as its weights is left to ``fold_constants``.
Which ops take quantized weights is the target's Q/DQ table (``Target.qdq.weighted``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule, alone
from fusionlab.fusion.qdq import DQ, Q
from fusionlab.plan import Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="quantize_weights",
    conditions=(
        "the QuantizeLinear reads a constant (an initializer or a Constant) with a constant scale "
        "and zero point",
        "its output is read by one DequantizeLinear alone, with a constant scale and zero point",
        "that DequantizeLinear's output is read by one op alone, as its weights (second input), "
        "an op that takes quantized weights (the target's Q/DQ table), and is not a graph output",
    ),
    source=(
        "TensorRT Developer Guide, 'Explicit Quantization', 'Quantized Weights' (TensorRT "
        "quantizes high-precision weights with the IQuantizeLayer scale at build time and "
        "stores the INT8 weights in the plan, https://docs.nvidia.com/deeplearning/tensorrt/latest/"
        "inference-library/quantized-types-explicit-quantization.html); 8.x guide §13.2.4.4 "
        "'Q/DQ Fusion' (FP32 weights quantized to INT8 when [DQ, DQ] > Node > Q fuses); "
        "records/trex-resnet18-a100-qat (TensorRT 8, A100: 'conv1.weight + QuantizeLinear_7 + "
        "Conv_9' names the weight and its Q in the convolution layer)"
    ),
    joins=(Join(frozenset({Q}), frozenset({DQ}), first_only=True, second_only=True),),
)
__doc__ = RULE.document(__doc__)


def constant(graph: Graph, work: Work, tensor: str) -> bool:
    """True for an initializer, a folded tensor or a Constant node's output (this pass runs
    before ``fold_constants``)."""
    if not tensor:
        return False
    if work.is_const(tensor):
        return True
    producer = graph.producer.get(tensor)
    return producer is not None and graph.node(producer).op == "Constant"


def _params_constant(graph: Graph, work: Work, inputs: tuple[str, ...]) -> bool:
    return all(constant(graph, work, t) for t in inputs[1:3] if t)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    weighted = ctx.target.qdq.weighted if ctx.target.qdq is not None else frozenset()
    if not weighted:
        return plan
    for name, node, mine in alone(work, {Q}):
        if not node.inputs or not constant(graph, work, node.inputs[0]):
            continue  # an activation quantizer: not this rule's business
        if not _params_constant(graph, work, node.inputs):
            reject(1, [name], "its scale or zero point is computed at run time")
            continue
        readers = work.consumers(node.outputs[0])
        dq = readers[0] if len(readers) == 1 else None
        if (
            dq is None
            or graph.node(dq).op != DQ
            or work.is_graph_output(node.outputs[0])
            or work.layer(work.owner[dq]).nodes != (dq,)
            or not _params_constant(graph, work, graph.node(dq).inputs)
        ):
            reject(2, [name, *readers], "left to constant folding")
            continue
        out = graph.node(dq).outputs[0]
        users = work.consumers(out)
        if (
            len(users) != 1
            or work.is_graph_output(out)
            or graph.node(users[0]).op not in weighted
            or len(graph.node(users[0]).inputs) < 2
            or graph.node(users[0]).inputs[1] != out
        ):
            reject(3, [name, dq, *users], "left to constant folding (float weights)")
            continue
        work.merge(mine, work.owner[dq], rule=RULE.name, kind=Kind.CONSTANT,
                   name=f"{node.inputs[0]} + {name}")
    return work.finish()
