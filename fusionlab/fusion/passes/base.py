"""What every pass shares: the context it runs in and how it records a rejected candidate.

A pass is a module under ``fusionlab.fusion.passes`` with ``NAME`` (module name = registry key =
rule name shown to users), ``CONDITIONS`` (numbered conditions, quoted by ``--explain``),
``SOURCE`` and ``run(graph, plan, ctx) -> Plan``. ``run`` never edits its inputs; it may
only append to ``ctx.rejections``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fusionlab.fusion.partition import Work
    from fusionlab.fusion.targets import Target
    from fusionlab.ir.graph import Graph
    from fusionlab.plan import Plan


@dataclass(frozen=True)
class Rejection:
    """A candidate a rule looked at and did not fuse, with the condition that failed."""

    rule: str
    nodes: tuple[str, ...]
    """The nodes the candidate would have put together."""
    condition: int
    """1-based number into the rule's ``CONDITIONS``."""
    text: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.rule}: {' + '.join(self.nodes)}: condition {self.condition} failed: {self.text}{extra}"


@dataclass
class Context:
    """What passes read (target rule table, precision) and the rejections they record."""

    target: Target
    precision: str = "fp32"
    rejections: list[Rejection] = field(default_factory=list)

    def reject(
        self,
        rule: str,
        conditions: Sequence[str],
        number: int,
        nodes: Sequence[str],
        detail: str = "",
    ) -> None:
        """Record that candidate ``nodes`` failed condition ``number`` of ``rule``."""
        self.rejections.append(
            Rejection(rule, tuple(nodes), number, conditions[number - 1], detail)
        )


class PassModule(Protocol):
    """The shape of a pass module."""

    NAME: str
    CONDITIONS: tuple[str, ...]
    SOURCE: str

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


def activation_candidates(work: Work, ctx: Context) -> Iterator[tuple[str, int, int | None]]:
    """Activation nodes still alone in their layer, in order: (node, its layer, the layer that
    writes its one data input or None)."""
    for name in work.graph.order:
        if work.graph.node(name).op not in ctx.target.all_activations or name not in work.owner:
            continue
        mine = work.owner[name]
        if work.layer(mine).nodes != (name,):
            continue
        data = work.data_inputs(name)
        yield name, mine, work.producer_layer(data[0]) if len(data) == 1 else None
