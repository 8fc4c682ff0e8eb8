"""Predicted vs actual: which layers match, which split or merged, and why.

Layers are matched by the ONNX nodes they compute, never by name or position. Layers with
identical node sets pair first (a node may be computed by several layers on either side:
TensorRT-RTX's kernels); the other predicted and actual layers that share a node form one
component of a bipartite graph; each component is classified:

- ``matched``: one predicted and one actual layer over the same nodes;
- ``split``: one predicted layer is several engine layers (a predicted fusion was lost);
- ``merged``: several predicted layers are one engine layer (the engine fused more);
- ``mismatched``: anything else (the groupings cross).

Engine layers with no ONNX nodes (reformats, copies) are ``inserted``; a predicted copy
layer of the same name counts as expected. Nodes eliminated on one side only are listed
as eliminated-node disagreements. Every miss gets a :class:`Finding` (hazard / likely
cause / help) that names the rule and, where the prediction recorded it, the condition.

Engine layer names can omit nodes they fuse (records/README.md: a weight's
DequantizeLinear, a BatchNormalization in a quantized engine); a node that no engine layer
names (``How.UNNAMED``) is unknown, not absent, so it does not count against a predicted
layer that holds it: such a layer matches an engine layer with the other nodes, and the
node is listed in ``unnamed_inside`` instead of as an elimination disagreement.

For an explicitly quantized (Q/DQ) model the diff adds INT8 findings (statuses ``int8-*``,
:func:`fusionlab.fusion.qdq.hazards`): a Q or DQ the engine runs as a reformat between
float and INT8 layers, an unfused Q/DQ pair, a layer that runs or writes float because a
Q/DQ is missing on an input — each with the rule and the condition the prediction turned
it down on — and an :class:`Int8Summary` of the QDQ reformats predicted and found.

>>> from fusionlab.plan import Layer, Plan
>>> pred = Plan((Layer("a + b", "Convolution", ("a", "b"), "fuse_conv_activation"),))
>>> act = Plan((Layer("a", "Convolution", ("a",), engine_type="CaskConvolution"),
...             Layer("b", "Activation", ("b",))), source="trtexec json")
>>> d = compare(pred, act)
>>> [m.status for m in d.matches], d.metrics.exact_matches, d.metrics.engine_layers
(['split'], 0, 2)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx

from fusionlab.fusion import qdq
from fusionlab.fusion.passes import RULES, Rejection
from fusionlab.fusion.targets import DEFAULT, TARGETS
from fusionlab.plan import Elimination, How, Layer, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

Status = Literal["matched", "split", "merged", "mismatched"]
SCHEMA = "fusionlab.diff/2"


@dataclass(frozen=True)
class LayerMatch:
    """One component of predicted and actual layers that share nodes."""

    status: Status
    predicted: tuple[str, ...]
    actual: tuple[str, ...]
    nodes: tuple[str, ...]
    predicted_ms: float | None = None
    actual_ms: float | None = None


@dataclass(frozen=True)
class Finding:
    """One difference explained: what was expected, why it differs, what to do."""

    status: str
    hazard: str
    likely_cause: str
    help: str
    rule: str | None = None
    condition: int | None = None

    def __str__(self) -> str:
        return f"[{self.status}] {self.hazard}\n  likely cause: {self.likely_cause}\n  help: {self.help}"


@dataclass(frozen=True)
class TimingRow:
    """Predicted vs measured time of one matched component."""

    predicted: str
    actual: str
    predicted_ms: float | None
    actual_ms: float | None
    actual_share: float | None
    """Share of the engine's total measured time, in percent."""


@dataclass(frozen=True)
class Metrics:
    """How well the prediction matches the engine."""

    exact_matches: int
    """Engine layers whose node set equals a predicted layer's."""
    engine_layers: int
    """Engine layers that compute at least one ONNX node."""
    pair_precision: float
    """Of the node pairs the prediction puts in one layer, the share the engine does too."""
    pair_recall: float
    """Of the node pairs the engine puts in one layer, the share the prediction does too."""

    @property
    def exact_match_rate(self) -> float:
        """Engine layers whose node set equals a predicted layer's, as a fraction."""
        return self.exact_matches / self.engine_layers if self.engine_layers else 1.0


@dataclass(frozen=True)
class Int8Summary:
    """Q/DQ reformats (layers that only quantize or dequantize) on both sides."""

    engine_reformats: tuple[str, ...]
    """Engine layers that compute Q/DQ nodes only (TensorRT's Reformat layers, Origin QDQ)."""
    predicted_reformats: tuple[str, ...]
    matched_reformats: tuple[str, ...]
    """Engine QDQ reformats whose nodes a predicted reformat computes exactly."""
    int8_layers: int
    """Predicted layers that compute in INT8."""


@dataclass(frozen=True)
class Diff:
    """Predicted vs actual plan, with metrics, findings and (with a profile) timing."""

    predicted: Plan
    actual: Plan
    matches: tuple[LayerMatch, ...]
    inserted: tuple[str, ...]
    """Engine layers with no ONNX node that the prediction did not have (reformats ...)."""
    expected_inserted: tuple[str, ...]
    """Engine layers with no ONNX node that the prediction also had (e.g. copies)."""
    eliminated_disagreements: tuple[tuple[str, Elimination | None, Elimination | None], ...]
    """(node, predicted elimination, actual elimination) where only one side eliminated it."""
    findings: tuple[Finding, ...]
    metrics: Metrics
    timing: tuple[TimingRow, ...] = ()
    totals: Mapping[str, float | None] = field(default_factory=dict)
    graph: Graph | None = field(default=None, compare=False, repr=False)
    """The model both plans are of, when the caller gave it (for drawings)."""
    unnamed_inside: tuple[str, ...] = ()
    """Nodes no engine layer names that the prediction puts inside a layer matching an
    engine layer (names omit fused nodes: they do not count against the match)."""
    int8: Int8Summary | None = None
    """Q/DQ reformats predicted and found, for a Q/DQ model (None otherwise)."""

    def by_status(self, status: str) -> list[LayerMatch]:
        """The components with ``status``."""
        return [m for m in self.matches if m.status == status]

    def worst_predicted(self, count: int = 5) -> list[TimingRow]:
        """Timed rows with the largest |log(predicted / actual)|."""
        rows = [r for r in self.timing if r.predicted_ms and r.actual_ms
                and r.predicted_ms > 0 and r.actual_ms > 0]
        rows.sort(key=lambda r: -abs(math.log(r.predicted_ms / r.actual_ms)))  # type: ignore[operator]
        return rows[:count]


def _pairs(plan: Plan, nodes: frozenset[str]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for layer in plan.layers:
        members = sorted(n for n in layer.nodes if n in nodes)
        out.update(itertools.combinations(members, 2))
    return out


def _sum_ms(layers: Iterable[Layer]) -> float | None:
    times = [layer.time_ms for layer in layers]
    if not times or any(t is None for t in times):
        return None
    return float(sum(t for t in times if t is not None))


def _siblings(a: Layer, b: Layer, joined: Layer) -> bool:
    """True when ``a`` and ``b`` sit side by side (neither reads what the other writes) and
    the layer they became is a horizontal merge, or they read a tensor in common."""
    if set(a.outputs) & set(b.inputs) or set(b.outputs) & set(a.inputs):
        return False
    return joined.merged or bool(set(a.inputs) & set(b.inputs))


def family(passes: Iterable[str] | None = None) -> frozenset[str]:
    """The rules of every target that runs one of ``passes`` (default: the default target's):
    the rules a miss of such a prediction can be blamed on. The CASK targets (classic, trt8,
    trt10, trt11) are one family, TensorRT-RTX's ``rtx_*`` rules another.

    >>> "fuse_conv_add" in family(), "rtx_conv_add" in family(), "fuse_conv_add" in family(["rtx_concat"])
    (True, False, False)
    """
    wanted = set(TARGETS[DEFAULT].passes if passes is None else passes)
    return frozenset(p for t in TARGETS.values() if wanted & set(t.passes) for p in t.passes) | wanted


def rule_between(ops_a: set[str], ops_b: set[str], *, siblings: bool, among: Iterable[str] | None = None) -> str:
    """The rule whose job it is to join a layer of ``ops_a`` and one of ``ops_b``: among the
    rules (of ``among``, default :func:`family`) whose ``joins`` match, the most specific
    (the join that covers fewest op pairs).

    >>> rule_between({"Conv"}, {"Add"}, siblings=False), rule_between({"Conv"}, {"Relu"}, siblings=False)
    ('fuse_conv_add', 'fuse_conv_activation')
    >>> rule_between({"Conv", "Relu"}, {"Conv", "Relu"}, siblings=True)
    'merge_siblings'
    >>> rule_between({"Conv"}, {"BatchNormalization", "Relu"}, siblings=False, among=family(["rtx_lrn"]))
    'rtx_share_bias'
    """
    names = family() if among is None else frozenset(among)
    found = [(join.breadth, name) for name, rule in RULES.items() if name in names for join in rule.joins
             if join.matches(ops_a, ops_b, siblings=siblings)]
    return min(found)[1] if found else "unknown"


def rule_eliminating(op: str, among: Iterable[str] | None = None) -> str | None:
    """The rule (of ``among``, default :func:`family`) that removes nodes of ``op`` from the
    engine, if any.

    >>> rule_eliminating("Dropout"), rule_eliminating("Dropout", among=family(["rtx_lrn"]))
    ('eliminate_noops', 'rtx_eliminate')
    """
    names = family() if among is None else frozenset(among)
    return next((name for name, rule in RULES.items() if name in names and op in rule.eliminates), None)


class _Explainer:
    """Turns a component into a finding, using the prediction's rejections when known."""

    def __init__(
        self, ops: Mapping[str, str], rejections: Iterable[Rejection], target_passes: Iterable[str]
    ):
        self.ops = ops
        self.rejections = list(rejections)
        self.passes = set(target_passes)
        self.family = family(self.passes)

    def _ops(self, layer: Layer) -> set[str]:
        return {self.ops.get(n, "?") for n in layer.nodes}

    def _rejection(self, rule: str, nodes: set[str]) -> Rejection | None:
        for r in self.rejections:
            shared = set(r.nodes) & nodes
            if r.rule == rule and (len(shared) >= 2 or set(r.nodes) <= nodes):
                return r
        return None

    def merged(self, engine: Layer, predicted: list[Layer]) -> Finding:
        first, second = predicted[0], predicted[1]
        rule = rule_between(
            self._ops(first), self._ops(second), siblings=_siblings(first, second, engine), among=self.family
        )
        joined = " and ".join(repr(p.name) for p in predicted)
        hazard = f"the engine fused {engine.name!r}; the prediction kept {joined} apart"
        rejection = self._rejection(rule, set(engine.nodes))
        if rule not in self.passes and rule in RULES:
            cause = f"the target does not run rule {rule!r} ({RULES[rule].source})"
            fix = f"use a target that runs {rule!r} (see `fusionlab passes`)"
            return Finding("merged", hazard, cause, fix, rule)
        if rejection is not None:
            cause = (
                f"rule {rule!r} turned it down: condition {rejection.condition} "
                f"({rejection.text}) failed{' — ' + rejection.detail if rejection.detail else ''}; "
                "this engine fused it anyway"
            )
            fix = "the target's rule table is stricter than this TensorRT build: report it with the engine's version"
            return Finding("merged", hazard, cause, fix, rule, rejection.condition)
        return Finding(
            "merged",
            hazard,
            f"rule {rule!r} did not consider this group",
            "a fusion fusionlab does not model: please report it with the layer JSON",
            rule,
        )

    def split(self, predicted: Layer, engine: list[Layer]) -> Finding:
        rule = predicted.rule or "unknown"
        parts = ", ".join(repr(e.name) for e in engine)
        hazard = f"predicted one layer {predicted.name!r} (rule {rule!r}); the engine has {parts}"
        cause = (
            f"rule {rule!r} fired in the prediction but this engine did not apply it: a condition the "
            "rule table does not model (precision, GPU architecture, tactic choice) or a "
            "different TensorRT version"
        )
        fix = (
            "check the build precision and --target; make sure the tensor between the parts is not a "
            "network output; TensorRT's verbose build log names the fusions it ran"
        )
        return Finding("split", hazard, cause, fix, rule)

    def mismatched(self, predicted: list[Layer], engine: list[Layer]) -> Finding:
        hazard = (
            f"groupings cross: predicted {[p.name for p in predicted]}, "
            f"engine {[e.name for e in engine]}"
        )
        rules = sorted({p.rule for p in predicted if p.rule and p.rule != "unfused"})
        cause = f"rules {rules} grouped these nodes differently from the engine"
        return Finding(
            "mismatched",
            hazard,
            cause,
            "compare with `fusionlab predict --explain NODE` for each node",
            rules[0] if rules else None,
        )


def _components(predicted: Plan, actual: Plan,
                known: Callable[[Layer], frozenset[str]] = lambda layer: frozenset(layer.nodes),
                ) -> list[set[tuple[str, int]]]:
    """Predicted (``("p", i)``) and actual (``("a", j)``) layers grouped for classifying,
    ordered by their first engine layer. A predicted layer is paired by ``known(layer)``:
    its nodes the engine's names can confirm (all, unless the engine names some nowhere).

    Layers may share nodes on either side (TensorRT-RTX lists a node in several kernels).
    First, layers with identical node sets are paired one to one, in plan order (the node
    sets taken as a multiset: three engine kernels of one LRN pair with three predicted
    ones); then the remaining layers form the connected components of the bipartite graph
    in which a predicted and an actual layer are joined when they share a node. For plans in
    which each node is in one layer this is exactly the components of that graph.
    """
    unpaired_p: dict[frozenset[str], list[int]] = {}
    for i, layer in enumerate(predicted.layers):
        if layer.nodes:
            unpaired_p.setdefault(known(layer), []).append(i)
    paired_p: set[int] = set()
    comps: list[set[tuple[str, int]]] = []
    rest_a: list[int] = []
    for j, layer in enumerate(actual.layers):
        if not layer.nodes:
            continue
        same = unpaired_p.get(frozenset(layer.nodes))
        if same:
            i = same.pop(0)
            paired_p.add(i)
            comps.append({("p", i), ("a", j)})
        else:
            rest_a.append(j)
    bip: nx.Graph = nx.Graph()
    bip.add_nodes_from(("p", i) for i, layer in enumerate(predicted.layers)
                       if layer.nodes and i not in paired_p)
    bip.add_nodes_from(("a", j) for j in rest_a)
    owners_p = predicted.node_to_layers()
    for j in rest_a:
        for n in actual.layers[j].nodes:
            for i in owners_p.get(n, ()):
                if i not in paired_p:
                    bip.add_edge(("p", i), ("a", j))
    comps.extend(nx.connected_components(bip))
    return sorted(comps, key=lambda c: min(c)[1] if min(c)[0] == "a" else 10**9)


def compare(
    predicted: Plan,
    actual: Plan,
    *,
    ops: Mapping[str, str] | None = None,
    rejections: Iterable[Rejection] = (),
    target_passes: Iterable[str] | None = None,
    graph: Graph | None = None,
) -> Diff:
    """Diff two plans of the same model.

    ``ops`` (node -> op type), ``rejections`` (from the prediction's stages) and
    ``target_passes`` let findings name rules and failed conditions; ``graph`` (the
    model) goes with the diff for drawings, and gives ``ops`` when they are not given.
    """
    if ops is None and graph is not None:
        ops = {n.name: n.op for n in graph.nodes()}
    explainer = _Explainer(
        ops or {}, rejections, target_passes if target_passes is not None else family()
    )
    unnamed = frozenset(n for n, e in actual.eliminated.items() if e.how is How.UNNAMED)

    def known(layer: Layer) -> frozenset[str]:
        """A predicted layer's nodes that the engine's names can confirm or deny."""
        return frozenset(layer.nodes) - unnamed

    components = _components(predicted, actual, known)
    matches: list[LayerMatch] = []
    findings: list[Finding] = []
    inside: list[str] = []
    for comp in components:
        ps = [predicted.layers[i] for side, i in sorted(comp) if side == "p"]
        acts = [actual.layers[j] for side, j in sorted(comp) if side == "a"]
        nodes = tuple(dict.fromkeys(n for layer in acts or ps for n in layer.nodes))
        if len(ps) == 1 and len(acts) == 1 and known(ps[0]) == set(acts[0].nodes):
            status: Status = "matched"
            inside.extend(n for n in ps[0].nodes if n in unnamed)
        elif len(ps) == 1 and len(acts) > 1:
            status = "split"
            findings.append(explainer.split(ps[0], acts))
        elif len(ps) > 1 and len(acts) == 1:
            status = "merged"
            findings.append(explainer.merged(acts[0], ps))
        elif not acts or not ps:
            continue  # nodes one side eliminated: reported as eliminated disagreements
        else:
            status = "mismatched"
            findings.append(explainer.mismatched(ps, acts))
        matches.append(
            LayerMatch(
                status,
                tuple(p.name for p in ps),
                tuple(a.name for a in acts),
                nodes,
                _sum_ms(ps),
                _sum_ms(acts),
            )
        )
    predicted_inserted = {layer.name for layer in predicted.layers if layer.inserted}
    inserted = tuple(
        layer.name
        for layer in actual.layers
        if layer.inserted and layer.name not in predicted_inserted
    )
    expected_inserted = tuple(
        layer.name for layer in actual.layers if layer.inserted and layer.name in predicted_inserted
    )
    missing_copies = predicted_inserted - {layer.name for layer in actual.layers}
    for name in sorted(missing_copies):
        findings.append(
            Finding(
                "missing",
                f"predicted engine-made layer {name!r} is not in the engine",
                "the engine wrote the tensor in place (no copy needed)",
                "nothing to do unless you rely on the copy",
                "eliminate_concat",
            )
        )
    disagreements: list[tuple[str, Elimination | None, Elimination | None]] = []
    for node in sorted(set(predicted.eliminated) ^ set(actual.eliminated) - set(inside)):
        p_reason = predicted.eliminated.get(node)
        a_reason = actual.eliminated.get(node)
        disagreements.append((node, p_reason, a_reason))
        if p_reason is None:
            op = (ops or {}).get(node)
            findings.append(
                Finding(
                    "eliminated",
                    f"the engine removed {node!r}; the prediction kept it",
                    "TensorRT absorbed or folded this node",
                    "usually harmless: a no-op the rules do not know",
                    rule_eliminating(op, explainer.family) if op else None,
                )
            )
        else:
            findings.append(
                Finding(
                    "eliminated",
                    f"the prediction removed {node!r} ({p_reason}); the engine computes it",
                    "the elimination's conditions differ on this engine",
                    "check whether the tensor is an output or read by another layer",
                    None,
                )
            )
    engine_layers = [layer for layer in actual.layers if layer.nodes]
    predicted_sets = {known(layer) for layer in predicted.layers if layer.nodes}
    exact = sum(1 for layer in engine_layers if frozenset(layer.nodes) in predicted_sets)
    common = frozenset(predicted.covered & actual.covered)
    pp, ap = _pairs(predicted, common), _pairs(actual, common)
    precision = len(pp & ap) / len(pp) if pp else 1.0
    recall = len(pp & ap) / len(ap) if ap else 1.0
    timing, totals = _timing(matches, actual)
    int8 = None
    if graph is not None and qdq.has_qdq(graph):
        int8 = _int8_summary(graph, predicted, actual)
        findings.extend(_int8_findings(graph, predicted, actual, rejections))
    return Diff(
        predicted,
        actual,
        tuple(matches),
        inserted,
        expected_inserted,
        tuple(disagreements),
        tuple(findings),
        Metrics(exact, len(engine_layers), precision, recall),
        timing,
        totals,
        graph,
        tuple(inside),
        int8,
    )


def _int8_summary(graph: Graph, predicted: Plan, actual: Plan) -> Int8Summary:
    engine = [layer for layer in actual.layers if qdq.is_qdq_reformat(graph, layer)]
    mine = [layer for layer in predicted.layers if qdq.is_qdq_reformat(graph, layer)]
    sets = {frozenset(layer.nodes) for layer in mine}
    return Int8Summary(
        engine_reformats=tuple(layer.name for layer in engine),
        predicted_reformats=tuple(layer.name for layer in mine),
        matched_reformats=tuple(layer.name for layer in engine if frozenset(layer.nodes) in sets),
        int8_layers=sum(1 for layer in predicted.layers if qdq.int8_math(graph, layer)),
    )


def _int8_findings(
    graph: Graph, predicted: Plan, actual: Plan, rejections: Iterable[Rejection]
) -> list[Finding]:
    """INT8 hazards of the engine's plan, explained with the prediction's rejections; a
    hazard only the prediction has (the engine fused it after all) says so."""
    rejected = list(rejections)
    engine = qdq.hazards(graph, actual, rejected)
    mine = qdq.hazards(graph, predicted, rejected)
    seen = {(h.kind, frozenset(h.nodes)) for h in engine}
    out = [
        Finding(f"int8-{h.kind}", h.text, h.cause, h.help, h.rule, h.condition) for h in engine
    ]
    for h in mine:
        if (h.kind, frozenset(h.nodes)) in seen or h.kind == "float":
            continue
        out.append(Finding(
            f"int8-{h.kind}",
            f"predicted, not in the engine: {h.text}",
            f"{h.cause}; this engine fused it after all",
            "the target's Q/DQ rules are stricter than this TensorRT build: report it with the "
            "engine's version",
            h.rule, h.condition,
        ))
    return out


def _timing(
    matches: list[LayerMatch], actual: Plan
) -> tuple[tuple[TimingRow, ...], dict[str, float | None]]:
    measured = [layer.time_ms for layer in actual.layers if layer.time_ms is not None]
    if not measured and not any(m.predicted_ms is not None for m in matches):
        return (), {}
    total_actual = float(sum(measured)) if measured else None
    rows = []
    for m in matches:
        share = (
            100.0 * m.actual_ms / total_actual if m.actual_ms is not None and total_actual else None
        )
        rows.append(
            TimingRow(
                " ; ".join(m.predicted), " ; ".join(m.actual), m.predicted_ms, m.actual_ms, share
            )
        )
    inserted_ms = sum(layer.time_ms or 0.0 for layer in actual.layers if layer.inserted)
    predicted_total = [m.predicted_ms for m in matches]
    totals: dict[str, float | None] = {
        "actual_ms": total_actual,
        "actual_inserted_ms": inserted_ms if measured else None,
        "predicted_ms": float(sum(t for t in predicted_total if t is not None))
        if predicted_total and all(t is not None for t in predicted_total)
        else None,
    }
    return tuple(rows), totals


def diff_to_dict(d: Diff) -> dict[str, Any]:
    """The diff as JSON-ready data (``fusionlab.diff/2``: eliminations as ``how``/``reason``)."""
    return {
        "schema": SCHEMA,
        "model": d.predicted.model,
        "target": d.predicted.target,
        "precision": d.predicted.precision,
        "actual_source": d.actual.source,
        "metrics": {
            "exact_matches": d.metrics.exact_matches,
            "engine_layers": d.metrics.engine_layers,
            "exact_match_rate": d.metrics.exact_match_rate,
            "pair_precision": d.metrics.pair_precision,
            "pair_recall": d.metrics.pair_recall,
        },
        "matches": [
            {
                "status": m.status,
                "predicted": list(m.predicted),
                "actual": list(m.actual),
                "nodes": list(m.nodes),
                "predicted_ms": m.predicted_ms,
                "actual_ms": m.actual_ms,
            }
            for m in d.matches
        ],
        "inserted": list(d.inserted),
        "expected_inserted": list(d.expected_inserted),
        "unnamed_inside": list(d.unnamed_inside),
        "int8": None if d.int8 is None else {
            "engine_reformats": list(d.int8.engine_reformats),
            "predicted_reformats": list(d.int8.predicted_reformats),
            "matched_reformats": list(d.int8.matched_reformats),
            "int8_layers": d.int8.int8_layers,
        },
        "eliminated_disagreements": [
            {"node": n, "predicted": _elimination(p), "actual": _elimination(a)}
            for n, p, a in d.eliminated_disagreements
        ],
        "findings": [
            {
                "status": f.status,
                "hazard": f.hazard,
                "likely_cause": f.likely_cause,
                "help": f.help,
                "rule": f.rule,
                "condition": f.condition,
            }
            for f in d.findings
        ],
        "totals": dict(d.totals),
    }


def _elimination(e: Elimination | None) -> dict[str, str] | None:
    return None if e is None else {"how": e.how.value, "reason": e.reason}
