"""Run a target's passes over a graph: the predicted plan, every stage, and why.

The manager checks after every pass that the plan is still a partition of the graph's
nodes (each node owned by one layer; other layers may share it, see ``Layer.shared``) and
that its quotient graph is acyclic; a violation is a bug in that pass and the error names
it and the passes before it.

>>> from fusionlab.ir.graph import load
>>> from onnx import helper, TensorProto, numpy_helper
>>> import numpy as np
>>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
>>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
>>> w = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
>>> g = load(helper.make_model(helper.make_graph(
...     [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), helper.make_node("Relu", ["c"], ["y"], name="relu")],
...     "g", [x], [y], [w])))
>>> [l.name for l in predict(g, "trt10").plan.layers]
['conv + relu']
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from fusionlab.dtypes import check_precision
from fusionlab.errors import FusionlabError
from fusionlab.fusion import qdq
from fusionlab.fusion.partition import (
    CycleError,
    initial_plan,
    is_topological,
    quotient,
    topological_layers,
)
from fusionlab.fusion.passes import PASSES, Context, Rejection
from fusionlab.fusion.targets import Target, get
from fusionlab.gcpause import paused
from fusionlab.ir.graph import Graph
from fusionlab.plan import Layer, Plan

ORIGINAL = "original"
"""Name of the stage before any pass."""


class PassInvariantError(AssertionError):
    """A pass returned a plan that is not a partition or whose quotient graph has a cycle."""


@dataclass(frozen=True)
class Stage:
    """The plan after one pass, what that pass formed and what it turned down."""

    name: str
    plan: Plan
    formed: tuple[Layer, ...]
    """Layers present after this pass that were not present before it."""
    rejections: tuple[Rejection, ...]


@dataclass(frozen=True)
class Prediction:
    """The predicted plan plus the stage sequence that produced it."""

    graph: Graph
    target: Target
    precision: str
    stages: tuple[Stage, ...]
    """``original`` first, then one stage per pass of the target."""
    timed: Plan | None = None
    """The final plan with a predicted time per layer, when a device was given."""

    @property
    def plan(self) -> Plan:
        """The final predicted plan (with predicted times when a device was given)."""
        return self.timed if self.timed is not None else self.stages[-1].plan

    @property
    def rejections(self) -> tuple[Rejection, ...]:
        """Every candidate any pass turned down, in pass order."""
        return tuple(r for s in self.stages for r in s.rejections)

    def stage(self, name: str) -> Stage:
        """The stage called ``name`` (``original`` or a pass name)."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def explain(self, node: str) -> list[str]:
        """Lines saying which rule took ``node`` and why other rules did not."""
        plan = self.plan
        lines: list[str] = []
        layer = plan.layer_of(node)
        if node in plan.eliminated:
            lines.append(f"{node}: eliminated — {plan.eliminated[node]}")
        elif layer is not None:
            lines.append(
                f"{node}: in layer {layer.name!r} ({layer.kind}), formed by rule {layer.rule!r}"
            )
        for stage in self.stages[1:]:
            for formed in stage.formed:
                if node in formed.nodes and formed.rule == stage.name:
                    lines.append(f"  {stage.name}: formed {formed.name!r}")
            if node in stage.plan.eliminated and node not in self._eliminated_before(stage):
                lines.append(f"  {stage.name}: eliminated it ({stage.plan.eliminated[node]})")
        seen: set[str] = set()
        for stage in self.stages[1:]:
            for r in stage.rejections:
                text = str(r)
                if node in r.nodes and text not in seen:
                    seen.add(text)
                    lines.append(f"  not {text}")
        for hazard in self.int8_hazards():
            if node in hazard.nodes or node in hazard.related:
                lines.append(f"  INT8 [{hazard.kind}]: {hazard.text}")
                lines.append(f"    likely cause: {hazard.cause}")
                lines.append(f"    help: {hazard.help}")
        return lines

    def int8_hazards(self) -> list[qdq.Hazard]:
        """Where this Q/DQ model's plan leaves INT8 (reformats, unfused pairs, float layers),
        each with the rule and condition that kept it apart (empty for a float model)."""
        return qdq.hazards(self.graph, self.stages[-1].plan, self.rejections)

    def _eliminated_before(self, stage: Stage) -> frozenset[str]:
        index = self.stages.index(stage)
        return frozenset(self.stages[index - 1].plan.eliminated)


def check_plan(graph: Graph, plan: Plan) -> str | None:
    """Why ``plan`` is not a valid partition of ``graph`` with an acyclic quotient, or None."""
    owned_list = [n for layer in plan.layers for n in layer.owned]
    owned = set(owned_list)
    if len(owned) != len(owned_list):
        twice = [n for n, c in Counter(owned_list).items() if c > 1]
        return f"nodes in more than one layer: {twice[:5]}"
    unowned = {n for layer in plan.layers for n in layer.shared} - owned
    if unowned:
        return f"shared nodes no layer owns: {sorted(unowned)[:5]}"
    eliminated = plan.eliminated.keys()
    both = owned & eliminated
    if both:
        return f"nodes both in a layer and eliminated: {sorted(both)[:5]}"
    accounted = owned | eliminated
    if len(accounted) != len(graph) or not accounted <= graph.node_map.keys():
        missing = set(graph.order) - accounted
        if missing:
            return f"nodes in no layer and not eliminated: {sorted(missing)[:5]}"
        return f"unknown nodes: {sorted(accounted - set(graph.order))[:5]}"
    if is_topological(graph, plan):
        return None
    try:
        topological_layers(graph, plan)
    except CycleError:
        import networkx as nx  # only to name the cycle of a broken pass: a prediction never imports it

        cycle = nx.find_cycle(quotient(graph, plan))
        return "the fused graph has a cycle: " + " -> ".join(plan.layers[a].name for a, _ in cycle)
    return None


def run_passes(graph: Graph, start: Plan, target: Target, precision: str) -> tuple[Stage, ...]:
    """Apply ``target``'s passes in order to ``start``, checking invariants after each."""
    stages = [Stage(ORIGINAL, start, (), ())]
    plan = start
    for name in target.passes:
        ctx = Context(target=target, precision=precision)
        new = PASSES[name].run(graph, plan, ctx)
        problem = None if new is plan else check_plan(graph, new)
        if problem is not None:
            ran = ", ".join(s.name for s in stages[1:]) or "none"
            raise PassInvariantError(
                f"pass {name!r} broke the plan ({problem}); passes before it: {ran}"
            )
        formed: tuple[Layer, ...] = ()
        if new is not plan:  # a pass that changed nothing formed nothing
            before = {id(layer) for layer in plan.layers}
            formed = tuple(
                layer for layer in new.layers if id(layer) not in before and layer.rule == name
            )
        stages.append(Stage(name, new, formed, tuple(ctx.rejections)))
        plan = new
    return tuple(stages)


def predict(graph: Graph, target: str | Target = "trt10", precision: str = "fp32") -> Prediction:
    """Predict the engine plan of ``graph`` for ``target`` at ``precision``.

    A model with Q/DQ nodes is INT8 wherever they say, at any ``precision`` (explicit
    quantization is the model's own; TensorRT 8 needs the INT8 flag for it anyway): the
    target's Q/DQ rules run whatever ``precision`` is, and ``precision`` says what the
    float layers between them run at (``int8``: INT8 plus FP16, the ``FP32+FP16+INT8``
    build; on trt11, strongly typed, the model's own float types). Without Q/DQ nodes
    ``int8`` means calibrated (implicit) INT8, which trt11 no longer has.
    """
    t = get(target) if isinstance(target, str) else target
    check_precision(precision)
    if precision == "int8" and t.qdq is not None and not t.qdq.implicit_int8 and not qdq.has_qdq(graph):
        raise FusionlabError(
            f"target {t.name} ({t.versions}) takes INT8 only from Q/DQ nodes (no INT8 builder flag, "
            f"no calibration) and {graph.name} has none: quantize the model (e.g. TensorRT Model "
            "Optimizer) or predict another precision"
        )
    with paused():
        start = initial_plan(graph, target=t.name, precision=precision)
        return Prediction(graph, t, precision, run_passes(graph, start, t, precision))
