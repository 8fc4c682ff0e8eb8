"""fuse_matmul_bias: the bias Add after a MatMul with weights joins it (a fully connected layer).

Before::

    x -> MatMul(x, W) -> Add(·, b) -> y        (nn.Linear on 3-D input; tf2onnx's MatMul + BiasAdd)
After::

    x -> [MatMul + Add] -> y                    (one layer, the bias in its epilogue)

TensorRT 8 runs a MatMul with constant weights as a fully connected layer converted to a
convolution, bias included; the TensorFlow ResNet-50 engine (records/trex-resnet50-tf-rtx3090)
names that layer ``resnet50/predictions/MatMul`` and its output, through a NoOp reshape, is
the BiasAdd's tensor. On trt10/trt11 such MatMuls are Myelin's (``partition_myelin`` runs
first), so the rule only sees those no region took.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule, alone, layer_tail
from fusionlab.plan import Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="fuse_matmul_bias",
    conditions=(
        "the Add adds a constant to the output of a MatMul with a constant weight, with nothing "
        "fused after the MatMul yet",
        "the MatMul's output is read by the Add alone and is not a graph output",
        "the constant is a bias: one value per output channel (it varies along the last axis only)",
    ),
    source=(
        "records/trex-resnet50-tf-rtx3090 (TensorRT 8.x: 'resnet50/predictions/MatMul' a "
        "CublasConvolution whose output, through 'reshape_after_resnet50/predictions/MatMul', is "
        "'resnet50/predictions/BiasAdd:0'); TensorRT 8.x Developer Guide, 'FullyConnected' (converted "
        "to a convolution; every convolution fusion applies)"
    ),
    joins=(Join(frozenset({"MatMul"}), frozenset({"Add"}), first_only=True, second_only=True),),
)
__doc__ = RULE.document(__doc__)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    for name, node, mine in alone(work, {"Add"}):
        data = work.data_inputs(name)
        consts = [t for t in node.inputs if t and work.is_const(t)]
        src = work.producer_layer(data[0]) if len(data) == 1 and len(consts) == 1 else None
        if src is None or work.layer(src).kind is Kind.MYELIN or layer_tail(work, src) != [] \
                or work.ops_of(src) != ["MatMul"] or len(work.data_inputs(work.layer(src).nodes[0])) != 1:
            continue  # not a MatMul's bias: nothing for this rule to explain
        pair = [*work.layer(src).nodes, name]
        if not work.outputs_consumed_only_by(src, mine):
            reject(2, pair)
            continue
        bias = graph.tensors.get(work.resolve(consts[0]))
        shape = bias.shape if bias is not None else None
        if shape is None or any(d != 1 for d in shape[:-1]):
            reject(3, pair, f"{consts[0]} of shape {shape}")
            continue
        work.merge(src, mine, rule=RULE.name, kind=Kind.FULLY_CONNECTED)
    return work.finish()
