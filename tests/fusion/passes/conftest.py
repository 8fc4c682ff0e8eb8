"""Helpers for pass tests: run one pass or a whole target and look at the result."""

from __future__ import annotations

from fusionlab.fusion.partition import initial_plan
from fusionlab.fusion.passes import PASSES, Context
from fusionlab.fusion.predictor import check_plan, predict
from fusionlab.fusion.targets import get
from fusionlab.ir.graph import Graph
from fusionlab.plan import Plan


def groups(plan: Plan) -> set[frozenset[str]]:
    """The plan's layers as node sets (inserted layers left out)."""
    return {frozenset(layer.nodes) for layer in plan.layers if layer.nodes}


def run_pass(
    name: str,
    graph: Graph,
    target: str = "trt10",
    precision: str = "fp32",
    plan: Plan | None = None,
) -> tuple[Plan, Context]:
    """Run one pass on ``plan`` (default: the unfused plan) and check the invariants."""
    ctx = Context(target=get(target), precision=precision)
    out = PASSES[name].run(graph, plan or initial_plan(graph), ctx)
    assert check_plan(graph, out) is None
    return out, ctx


def failed(ctx: Context) -> set[int]:
    """Numbers of the conditions that failed in a pass run."""
    return {r.condition for r in ctx.rejections}


def final(graph: Graph, target: str = "trt10", precision: str = "fp32") -> Plan:
    return predict(graph, target, precision).plan
