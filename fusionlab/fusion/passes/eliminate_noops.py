"""eliminate_noops: nodes that do nothing at inference disappear.

Before::

    Conv -> Dropout -> Relu          GlobalAveragePool -> Flatten -> Gemm      x -> Concat(x) -> y
After::

    Conv -> Relu                     GlobalAveragePool -> Gemm   (Flatten absorbed)     x -> y

Which ops are identities and which layers absorb a Flatten before them are the target's
facts (``Target.identity_ops``, ``Target.flatten_ops``, ``Target.fc_ops``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Rule, alone
from fusionlab.plan import How, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="eliminate_noops",
    conditions=(
        "the node is an identity at inference (Dropout, Identity, a Concat of one input), or a "
        "Flatten/Reshape/Squeeze whose only consumer is a fully connected layer that reads it as "
        "its data input",
        "its output is not a graph output (the engine must still write that tensor)",
    ),
    source=(
        "TensorRT ONNX parser (Dropout and Identity are identities the builder removes); ResNet-18 "
        "TensorRT 8 records (Flatten_47 before the fully connected layer is named by no engine layer, "
        "records/trex-resnet18-a100)"
    ),
    eliminates=frozenset({"Dropout", "Identity", "Flatten", "Reshape", "Squeeze"}),
    # (a Concat of one input too: eliminate_concat is the rule diff names for Concats)
)
__doc__ = RULE.document(__doc__)


def _how(graph: Graph, work: Work, ctx: Context, name: str) -> tuple[How, str] | None:
    node = graph.node(name)
    target = ctx.target
    if node.op in target.identity_ops:
        if (
            node.op == "Dropout"
            and len([t for t in node.outputs if t]) > 1
            and work.consumers(node.outputs[1])
        ):
            return None  # the mask is used: not a no-op
        return How.NOOP, f"{node.op} is an identity at inference"
    if node.op == "Concat" and len([t for t in node.inputs if t]) == 1:
        return How.NOOP, "a Concat of one input is an identity"
    if node.op in target.flatten_ops and node.outputs:
        users = work.consumers(node.outputs[0])
        if (
            len(users) == 1
            and graph.node(users[0]).op in target.fc_ops
            and graph.node(users[0]).inputs[0] == node.outputs[0]
        ):
            return How.ABSORBED, f"absorbed into {users[0]} (the fully connected layer reads its input directly)"
    return None


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    for name, node, _ in alone(work, ctx.target.identity_ops | ctx.target.flatten_ops | {"Concat"}):
        found = _how(graph, work, ctx, name)
        if found is None:
            if node.op in ctx.target.flatten_ops:
                reject(1, [name], "not followed by a fully connected layer only")
            continue
        if node.outputs and work.is_graph_output(node.outputs[0]):
            reject(2, [name], f"{node.outputs[0]} is a graph output")
            continue
        work.eliminate(name, *found)
    return work.finish()
