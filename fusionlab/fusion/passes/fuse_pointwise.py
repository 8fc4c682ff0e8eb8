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

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.ir import ops
from fusionlab.ir.graph import Graph
from fusionlab.plan import Kind, Plan

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
    position = graph.position

    def pointwise(index: int) -> bool:
        return all(op in allowed for op in work.ops_of(index))

    for name in reversed(graph.order):
        if name not in work.owner:
            continue
        current = work.owner[name]
        if not pointwise(current):
            continue
        grown = True
        while grown:
            grown = False
            for t in work.external_inputs(current):
                src = work.producer_layer(t)
                if src is None or src == current:
                    continue
                pair = [*work.layer(src).nodes, *work.layer(current).nodes]
                if not pointwise(src):
                    continue
                if not work.outputs_consumed_only_by(src, current):
                    reject(2, pair, f"{t} is read elsewhere or is a graph output")
                    continue
                merged = work.merge(src, current, rule=RULE.name, kind=Kind.POINTWISE)
                nodes = tuple(sorted(merged.nodes, key=position.__getitem__))
                work.relabel(src, nodes=nodes, name=pwn_name(nodes))
                current = src
                grown = True
                break
    return work.finish()
