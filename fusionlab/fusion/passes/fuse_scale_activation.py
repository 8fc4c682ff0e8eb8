"""fuse_scale_activation: an activation joins a standalone Scale layer before it.

Before::

    x -> BatchNormalization (not after a conv: a Scale layer) -> Relu -> y
After::

    x -> [BatchNormalization + Relu] -> y
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule, activation_candidates
from fusionlab.ir import ops
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="fuse_scale_activation",
    conditions=(
        "the input is written by a standalone Scale layer (unfolded BatchNormalization) with no activation",
        "that output is read by the activation alone and is not a graph output",
        "the target fuses this activation at this precision",
    ),
    source=(
        "TensorRT Layer Fusion Catalog, 'Scale and Activation' (a Scale layer followed by an "
        "Activation layer can be fused into a single Activation layer)"
    ),
    joins=(Join(frozenset({"BatchNormalization"}), ops.ACTIVATIONS, first_only=True, second_only=True),),
)
__doc__ = RULE.document(__doc__)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    supported = ctx.target.activations_for(ctx.precision)
    for name, mine, src in activation_candidates(work, ctx):
        op = graph.node(name).op
        if src is None or work.ops_of(src) != ["BatchNormalization"]:
            continue  # not this rule's candidate: nothing to explain
        pair = [*work.layer(src).nodes, name]
        if not work.outputs_consumed_only_by(src, mine):
            reject(2, pair)
            continue
        if op not in supported:
            reject(3, pair, f"{op} at {ctx.precision}")
            continue
        work.merge(src, mine, rule=RULE.name)
    return work.finish()
