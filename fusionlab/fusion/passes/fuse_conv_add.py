"""fuse_conv_add: a residual Add joins the convolution that writes one of its operands.

Before::

    a ──> Conv ──┐
                 Add ──> Relu          (the Relu joins later, fuse_conv_activation)
    b ───────────┘
After::

    [Conv + Add] reads a and b         (the convolution kernel adds b in its epilogue)

When both operands qualify, the Add joins the convolution that writes its *second*
operand. In PyTorch exports (``out += identity``) that is the later of the two in the
file's order, which is what TensorRT 8 did on ResNet-18: ``Add_17 = Add(Conv_15, Conv_16)``
became ``Conv_16 + Add_17 + Relu_18`` with ``Conv_15`` alone (records/trex-resnet18-a100).
Both candidates never depend on each other, so file order is not a well-defined criterion;
operand order is, and it gives the same answer on exported models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import CONV_CORES, Context, Join, Rule, alone, layer_tail
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="fuse_conv_add",
    conditions=(
        "the Add sums two data tensors of the same shape (no broadcast)",
        "an operand is written by a convolution layer with nothing but a folded BatchNorm after it",
        "that convolution's output is read by the Add alone and is not a graph output",
    ),
    source=(
        "TensorRT Layer Fusion Catalog, 'Convolution and ElementWise' (a convolution followed by an "
        "element-wise sum is fused into the convolution); ResNet-18 TensorRT 8 records"
    ),
    joins=(Join(CONV_CORES, frozenset({"Add"})),),
)
__doc__ = RULE.document(__doc__)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    for name, node, mine in alone(work, {"Add"}):
        data = [work.resolve(t) for t in node.inputs if t]
        shapes = [graph.tensors[t].shape if t in graph.tensors else None for t in data]
        if (
            len(data) != 2
            or any(work.is_const(t) for t in data)
            or shapes[0] != shapes[1]
            or shapes[0] is None
        ):
            reject(1, [name])
            continue
        candidates: list[int] = []
        failed = 2
        for t in reversed(data):  # second operand first
            src = work.producer_layer(t)
            if src is None or src == mine:
                continue
            tail = layer_tail(work, src)
            if tail is None or any(op != "BatchNormalization" for op in tail):
                continue
            if not work.outputs_consumed_only_by(src, mine):
                failed = 3
                reject(3, [*work.layer(src).nodes, name])
                continue
            candidates.append(src)
        if not candidates:
            if failed == 2:
                reject(2, [name])
            continue
        work.merge(candidates[0], mine, rule=RULE.name)
    return work.finish()
