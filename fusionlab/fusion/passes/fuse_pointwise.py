"""fuse_pointwise: chains of point-wise ops become one PointWise layer, ``PWN(...)``.

Before::

    x -> Sigmoid -> s ─┐
    x ─────────────────Mul -> Add(·, b) -> y
After::

    [PWN(Sigmoid, Mul, Add)] reads x and b, writes y    (one generated kernel)

Layers are grown from the consumer side (reverse topological order) until nothing more
joins, so the result does not depend on the order nodes appear in the file. Which ops are
point-wise is the target's table (``Target.pointwise_ops``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.ir import ops
from fusionlab.plan import Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="fuse_pointwise",
    conditions=(
        "both layers hold only point-wise ops the target fuses, not fused into a convolution",
        "the producer's outputs are read only by the consumer group and are not graph outputs",
    ),
    source=(
        "TensorRT Layer Fusion Catalog, 'PointWise Fusion' (multiple adjacent point-wise layers fuse "
        "into one PointWise layer; TensorRT 8.0 onwards, layer names PWN(...))"
    ),
    joins=(Join(ops.POINTWISE, ops.POINTWISE, first_only=True, second_only=True),),
)
__doc__ = RULE.document(__doc__)


def pwn_name(nodes: tuple[str, ...]) -> str:
    """TensorRT-style name of a point-wise layer: ``PWN(a, b, c)``."""
    return f"PWN({', '.join(nodes)})"


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    allowed = ctx.target.pointwise_ops

    def pointwise(index: int) -> bool:
        return all(op in allowed for op in work.ops_of(index))

    def readers(index: int) -> set[int] | None:
        """The layers that read what ``index`` writes; None when it writes a graph output or
        a node in no layer reads it."""
        found: set[int] = set()
        for t in work.layer(index).outputs:
            if work.is_graph_output(t):
                return None
            for c in work.consumers(t):
                if c not in work.owner:
                    return None  # e.g. an eliminated Concat writes it into another buffer
                found.add(work.owner[c])
        return found

    grouped: set[int] = set()
    for name in reversed(graph.order):
        root = work.owner.get(name)
        if root is None or root in grouped or not pointwise(root):
            continue
        # Grow from the consumer side: a producer joins once every layer that reads it is in
        # the group (condition 2), which also keeps the fused graph acyclic.
        group, waiting = [root], {}
        members = {root}
        stack = [root]
        while stack:
            current = stack.pop()
            for t in work.external_inputs(current):
                src = work.producer_layer(t)
                if src is None or src in members or src in grouped or not pointwise(src):
                    continue
                if src not in waiting:
                    outside = readers(src)
                    waiting[src] = (outside - members, t) if outside is not None else (None, t)
                pending, _ = waiting[src]
                if pending is None:
                    continue
                pending.discard(current)
                if not pending:
                    del waiting[src]
                    members.add(src)
                    group.append(src)
                    stack.append(src)
        for src, (_, t) in waiting.items():
            reject(2, [*work.layer(src).nodes, *work.layer(root).nodes],
                   f"{t} is read elsewhere or is a graph output")
        grouped.update(members)
        if len(group) > 1:
            work.merge_group(sorted(group, key=lambda i: graph.position[work.layer(i).nodes[0]]),
                             rule=RULE.name, kind=Kind.POINTWISE, name=pwn_name)
    return work.finish()
