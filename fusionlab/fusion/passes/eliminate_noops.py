"""eliminate_noops: nodes that do nothing at inference disappear.

Before::

    Conv -> Dropout -> Relu          GlobalAveragePool -> Flatten -> Gemm
After::

    Conv -> Relu                     GlobalAveragePool -> Gemm   (Flatten absorbed)

Conditions:
 1. the node is Dropout (inference mode), Identity, or a Flatten/Reshape/Squeeze whose
    only consumer is a fully connected layer (Gemm) that reads it as its data input;
 2. its output is not a graph output (the engine must still write that tensor).

Source: the TensorRT ONNX parser imports Dropout and Identity as identities that the
builder removes; a Flatten before a fully connected layer is absorbed (TensorRT records:
``Flatten_47`` of ResNet-18 is named by no engine layer, ../shared/records, TensorRT 8.x;
the Layer Fusion Catalog's "Shuffle and ..." eliminations).
"""

from __future__ import annotations

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.base import Context
from fusionlab.ir.graph import Graph
from fusionlab.plan import Plan

NAME = "eliminate_noops"
CONDITIONS = (
    "the node is Dropout, Identity, or a Flatten/Reshape/Squeeze feeding only a fully connected layer",
    "its output is not a graph output",
)
SOURCE = "TensorRT ONNX parser (Dropout/Identity are identities); ResNet-18 TensorRT 8 records (Flatten_47 absorbed)"

ALWAYS = frozenset({"Dropout", "Identity"})
BEFORE_FC = frozenset({"Flatten", "Reshape", "Squeeze"})
FC_OPS = frozenset({"Gemm"})


def _reason(graph: Graph, work: Work, name: str) -> str | None:
    node = graph.node(name)
    if node.op in ALWAYS:
        if (
            node.op == "Dropout"
            and len([t for t in node.outputs if t]) > 1
            and work.consumers(node.outputs[1])
        ):
            return None  # the mask is used: not a no-op
        return f"{node.op} is an identity at inference"
    if node.op in BEFORE_FC and node.outputs:
        users = work.consumers(node.outputs[0])
        if (
            len(users) == 1
            and graph.node(users[0]).op in FC_OPS
            and graph.node(users[0]).inputs[0] == node.outputs[0]
        ):
            return f"absorbed into {users[0]} (the fully connected layer reads its input directly)"
    return None


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    for name in graph.order:
        if name in work.eliminated or name not in work.owner:
            continue
        node = graph.node(name)
        if node.op not in ALWAYS | BEFORE_FC or work.layer(work.owner[name]).nodes != (name,):
            continue
        reason = _reason(graph, work, name)
        if reason is None:
            if node.op in BEFORE_FC:
                ctx.reject(
                    NAME, CONDITIONS, 1, [name], "not followed by a fully connected layer only"
                )
            continue
        if node.outputs and work.is_graph_output(node.outputs[0]):
            ctx.reject(NAME, CONDITIONS, 2, [name], f"{node.outputs[0]} is a graph output")
            continue
        work.eliminate(name, reason)
    return work.finish()
