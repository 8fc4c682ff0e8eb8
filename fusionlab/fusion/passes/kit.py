"""The pass kit: what every pass shares, so that a pass file is the only place its rule is written.

A pass is a module under :mod:`fusionlab.fusion.passes` with a :class:`Rule` called ``RULE``
(its name = the module name = the registry key = the rule name users see; its numbered
conditions; its source; what it joins or eliminates) and ``run(graph, plan, ctx) -> Plan``.
``run`` never edits its inputs; it may only record rejections through ``ctx``.

The kit owns the loops every pass needs (:func:`alone`, :func:`activation_candidates`) and
the bookkeeping of rejected candidates (:meth:`Context.rejector`), so a pass says only what
matches. :meth:`Rule.document` completes the module docstring with the conditions and the
source, so they are written once, in ``RULE``.

>>> r = Rule("fuse_x", ("the input is a convolution",), "a catalog",
...          joins=(Join(frozenset({"Conv"}), frozenset({"Relu"}), second_only=True),))
>>> r.joins[0].matches({"Conv"}, {"Relu"}, siblings=False), r.joins[0].matches({"Relu"}, {"Conv"}, siblings=False)
(True, True)
>>> print(r.document("fuse_x: the doc.").split("Conditions:")[1].strip())
1. the input is a convolution
<BLANKLINE>
Source: a catalog
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from fusionlab.plan import Kind

if TYPE_CHECKING:
    from fusionlab.fusion.partition import Work
    from fusionlab.fusion.targets import Target
    from fusionlab.ir.graph import Graph, Node
    from fusionlab.plan import Plan


@dataclass(frozen=True)
class Join:
    """Two layers a rule puts into one layer, as data (what ``diff`` blames a miss on).

    One layer holds an op of ``first`` (only such ops with ``first_only``), the other an
    op of ``second`` (only such ops with ``second_only``). ``siblings``: the two layers read
    the same tensor and neither feeds the other (a horizontal merge); otherwise one
    writes what the other reads (a vertical fusion).
    """

    first: frozenset[str]
    second: frozenset[str]
    first_only: bool = False
    second_only: bool = False
    siblings: bool = False

    def _side(self, ops: Collection[str], wanted: frozenset[str], only: bool) -> bool:
        present = set(ops)
        return bool(present) and (present <= wanted if only else bool(present & wanted))

    def matches(self, ops_a: Collection[str], ops_b: Collection[str], *, siblings: bool) -> bool:
        """True when layers with ``ops_a`` and ``ops_b`` (either way round) are this join."""
        if siblings != self.siblings:
            return False
        return any(
            self._side(x, self.first, self.first_only) and self._side(y, self.second, self.second_only)
            for x, y in ((ops_a, ops_b), (ops_b, ops_a))
        )

    @property
    def breadth(self) -> int:
        """How many op pairs the join covers: the smallest matching join is the most specific."""
        return len(self.first) * len(self.second)


@dataclass(frozen=True)
class Rule:
    """One fusion rule: everything about it that is not its matching code."""

    name: str
    conditions: tuple[str, ...]
    """Numbered (from 1) conditions; a rejection names the one that failed."""
    source: str
    """Where the rule comes from: the Layer Fusion Catalog, a release note, an issue, a
    recorded engine, a live build."""
    joins: tuple[Join, ...] = ()
    """The layer pairs the rule joins (empty for a rule that only eliminates nodes)."""
    eliminates: frozenset[str] = field(default_factory=frozenset)
    """ONNX ops the rule can remove from the engine altogether."""

    def document(self, doc: str | None) -> str:
        """``doc`` (the module docstring: Before/After and prose) with the numbered
        conditions and the source appended."""
        lines = [(doc or "").rstrip(), "", "Conditions:"]
        lines += [f"{i}. {c}" for i, c in enumerate(self.conditions, 1)]
        lines += ["", f"Source: {self.source}", ""]
        return "\n".join(lines)


@dataclass(frozen=True)
class Rejection:
    """A candidate a rule looked at and did not fuse, with the condition that failed."""

    rule: str
    nodes: tuple[str, ...]
    """The nodes the candidate would have put together."""
    condition: int
    """1-based number into the rule's conditions."""
    text: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.rule}: {' + '.join(self.nodes)}: condition {self.condition} failed: {self.text}{extra}"


Reject = Callable[..., None]
"""``reject(condition, nodes, detail="")``: record that ``nodes`` failed ``condition``."""


@dataclass
class Context:
    """What passes read (target rule table, precision) and the rejections they record."""

    target: Target
    precision: str = "fp32"
    rejections: list[Rejection] = field(default_factory=list)

    def rejector(self, rule: Rule) -> Reject:
        """A function that records rejections of ``rule``'s candidates."""

        def reject(condition: int, nodes: Sequence[str], detail: str = "") -> None:
            self.rejections.append(
                Rejection(rule.name, tuple(nodes), condition, rule.conditions[condition - 1], detail)
            )

        return reject


class PassModule(Protocol):
    """The shape of a pass module."""

    RULE: Rule

    def run(self, graph: Graph, plan: Plan, ctx: Context) -> Plan: ...


CONV_CORES = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
"""Ops that can head a fused convolution-like layer."""


def conv_tail(ops: Sequence[str]) -> list[str] | None:
    """The ops a layer has fused after its convolution, or None when it has no convolution.

    A folded Pad before the convolution is skipped.

    >>> conv_tail(["Conv", "BatchNormalization"]), conv_tail(["Pad", "Conv"]), conv_tail(["Relu"])
    (['BatchNormalization'], [], None)
    """
    start = 1 if ops and ops[0] == "Pad" else 0
    if len(ops) <= start or ops[start] not in CONV_CORES:
        return None
    return list(ops[start + 1 :])


def layer_tail(work: Work, index: int) -> list[str] | None:
    """:func:`conv_tail` of a live layer; None for a Myelin region, which the CASK fusions
    leave alone (TensorRT partitions Myelin regions out before it runs them)."""
    if work.layer(index).kind is Kind.MYELIN:
        return None
    return conv_tail(work.ops_of(index))


def alone(work: Work, ops: Collection[str] | None = None) -> Iterator[tuple[str, Node, int]]:
    """Nodes still alone in their layer, in graph order: (name, node, its layer index).

    ``ops``: only nodes of these op types (None: any op). Nodes eliminated or merged by an
    earlier step of the same pass are skipped as the loop reaches them.
    """
    graph = work.graph
    nodes, owner, layers = graph.node_map, work.owner, work.layers
    for name in graph.order if ops is None else graph.names_with_ops(ops):
        index = owner.get(name)
        if index is None:
            continue
        layer = layers[index]
        if layer is None or len(layer.nodes) != 1:  # its owner holds it alone, or not at all
            continue
        yield name, nodes[name], index


def activation_candidates(work: Work, ctx: Context) -> Iterator[tuple[str, int, int | None]]:
    """Activation nodes still alone in their layer, in order: (node, its layer, the layer that
    writes its one data input or None)."""
    for name, _, mine in alone(work, ctx.target.all_activations):
        data = work.data_inputs(name)
        yield name, mine, work.producer_layer(data[0]) if len(data) == 1 else None
