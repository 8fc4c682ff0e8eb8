"""fuse_softmax_topk: a Log and a TopK/ArgMax after a SoftMax join it.

Before::

    x -> Softmax -> ArgMax -> z          x -> Softmax -> Log -> y
After::

    x -> [Softmax + ArgMax] -> z         x -> [Softmax + Log] -> y      (one SoftMax layer)

TensorRT's ONNX parser imports ArgMax/ArgMin as a TopK layer of k = 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule, alone
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

SOFTMAX = frozenset({"Softmax", "LogSoftmax"})
TOPK = frozenset({"TopK", "ArgMax", "ArgMin"})

RULE = Rule(
    name="fuse_softmax_topk",
    conditions=(
        "the Log or TopK/ArgMax/ArgMin reads one tensor, written by a SoftMax layer (a Log only "
        "directly after the Softmax, a TopK after the Softmax or its Log)",
        "that output is read by it alone and is not a graph output",
        "the TopK/ArgMax reduces the axis the SoftMax normalizes",
    ),
    source=(
        "TensorRT 8.x Developer Guide, 'SoftMax and Log' and 'SoftMax and TopK'; "
        "records/cookbook-mnist-trt10.16-h100 (TensorRT 10.16 verbose log, result-02.log of the "
        "cookbook: 'LogSoftmaxTopKFusion: Fusing node_softmax with node_argmax')"
    ),
    joins=(Join(SOFTMAX, TOPK | {"Log"}, second_only=True),),
)
__doc__ = RULE.document(__doc__)


def _axis(graph: Graph, name: str, default: int) -> int | None:
    node = graph.node(name)
    axis = int(node.attrs.get("axis", default))
    t = graph.tensors.get(node.inputs[0])
    if axis < 0:
        if t is None or t.shape is None:
            return None
        axis += len(t.shape)
    return axis


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    for name, node, mine in alone(work, TOPK | {"Log"}):
        data = work.data_inputs(name)
        src = work.producer_layer(data[0]) if data else None
        ops_ = work.ops_of(src) if src is not None else []
        fits = bool(ops_) and ops_[0] in SOFTMAX and (
            ops_[1:] == [] if node.op == "Log" else ops_[1:] in ([], ["Log"]))
        if src is None or not fits or len(data) != 1:
            if node.op != "Log":  # a Log elsewhere is any point-wise op: nothing to explain
                reject(1, [name])
            continue
        chain = [*work.layer(src).nodes, name]
        if not work.outputs_consumed_only_by(src, mine):
            reject(2, chain)
            continue
        if node.op != "Log":
            head = work.layer(src).nodes[0]
            default = 1 if graph.opset < 13 else -1
            if _axis(graph, head, default) != _axis(graph, name, -1 if node.op == "TopK" else 0):
                reject(3, chain)
                continue
        work.merge(src, mine, rule=RULE.name)
    return work.finish()
