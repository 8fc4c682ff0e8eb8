"""fold_constants: nodes that compute only from constants disappear (folded at build time).

Before::

    Constant ─┐            Shape(x) -> Gather -> Unsqueeze -> Concat ─┐
              Mul(x, ·)                                           Reshape(x, ·)
After::

    Mul(x, const)                                                 Reshape(x, const)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Rule, alone
from fusionlab.plan import How, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="fold_constants",
    conditions=(
        "every input is a constant (initializer, Constant node, folded node, or Shape of a static tensor)",
        "no output is a graph output",
    ),
    source=(
        "onnx-tensorrt importer (Constant nodes and initializers become weights); builder constant "
        "folding of layers whose inputs are all constant; Polygraphy sanitize --fold-constants"
    ),
    eliminates=frozenset({"Constant", "Shape"}),
)
__doc__ = RULE.document(__doc__)


def _static_shape(graph: Graph, tensor: str) -> bool:
    t = graph.tensors.get(tensor)
    return t is not None and t.shape is not None and all(isinstance(d, int) for d in t.shape)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    for name, node, _ in alone(work):
        if node.opaque:
            continue
        op = node.op
        if op == "Shape":
            data = [t for t in node.inputs if t and not work.is_const(t)]
            constant = not data or all(_static_shape(graph, t) for t in data)
        else:  # the first data input settles it (most nodes' first input is data)
            constant = op == "Constant" or all(work.is_const(t) for t in node.inputs if t)
        if not constant:
            continue
        if any(work.is_graph_output(t) for t in node.outputs if t):
            reject(2, [name])
            continue
        work.eliminate(name, How.CONSTANT, "constant-folded: computes only from constants")
    return work.finish()
