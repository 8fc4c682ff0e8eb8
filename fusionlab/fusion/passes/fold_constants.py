"""fold_constants: nodes that compute only from constants disappear (folded at build time).

Before::

    Constant ─┐            Shape(x) -> Gather -> Unsqueeze -> Concat ─┐
              Mul(x, ·)                                           Reshape(x, ·)
After::

    Mul(x, const)                                                 Reshape(x, const)

Conditions:
 1. every input of the node is an initializer, a Constant, or the output of a folded node
    (``Shape`` of a tensor whose shape is fully known also counts as constant);
 2. no output of the node is a graph output.

Source: the onnx-tensorrt importer turns Constant nodes and initializers into weights and
TensorRT's builder folds layers whose inputs are all constant; Polygraphy's ``surgeon
sanitize --fold-constants`` documents the same folding for parsers that need it done first.
"""

from __future__ import annotations

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.base import Context
from fusionlab.ir.graph import Graph
from fusionlab.plan import Plan

NAME = "fold_constants"
CONDITIONS = (
    "every input is a constant (initializer, Constant node, folded node, or Shape of a static tensor)",
    "no output is a graph output",
)
SOURCE = (
    "onnx-tensorrt importer (Constant nodes become weights); builder constant folding; "
    "Polygraphy sanitize --fold-constants"
)


def _static_shape(graph: Graph, tensor: str) -> bool:
    t = graph.tensors.get(tensor)
    return t is not None and t.shape is not None and all(isinstance(d, int) for d in t.shape)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    for name in graph.order:
        if name in work.eliminated or name not in work.owner:
            continue
        node = graph.node(name)
        if node.opaque or work.layer(work.owner[name]).nodes != (name,):
            continue
        data = [t for t in node.inputs if t and not work.is_const(t)]
        constant = (
            node.op == "Constant"
            or not data
            or (node.op == "Shape" and all(_static_shape(graph, t) for t in data))
        )
        if not constant:
            continue
        if any(work.is_graph_output(t) for t in node.outputs if t):
            ctx.reject(NAME, CONDITIONS, 2, [name])
            continue
        work.eliminate(name, "constant-folded: computes only from constants")
    return work.finish()
