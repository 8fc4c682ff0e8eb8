"""rtx_eliminate: TensorRT-RTX (R0) removes dead nodes, merges duplicates, and lists no wire.

Before::

    x -> MaxPool(pA) -> y1        x -> Conv -> Dropout -> Relu        x -> Relu -> (nothing)
    x -> MaxPool(pB) -> y2
After::

    x -> [pB] -> y1, y2           x -> Conv -> Relu   (Dropout in no kernel)   (Relu removed)

A node that reaches no graph output vanishes (R0a). Two nodes with the same op, attributes
and (resolved) inputs and no initializer input are one kernel named after the *later* one
(R0b), whether or not either is a graph output. Dropout, Identity and Flatten appear in no
kernel's Metadata (R0c), nor does Elu (a Metadata quirk of RTX 1.7: the Elu is computed,
inside ``CorrElu [conv1]``, but never named).

Live builds (TensorRT-RTX 1.7.1.116): ``misc_dead_branch``; ``misc_dup_pool``,
``misc_dup_pool_out_first``, ``misc_dup_pool_out_second``, ``misc_dup_relu``, and
``misc_dup_conv`` (two convs on one weight initializer are *not* merged); googlenet-caffe
``pool5/drop_7x7_s1``, ``layout_flatten_gemm``; ``act_Elu_*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Rule
from fusionlab.plan import How, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

RULE = Rule(
    name="rtx_eliminate",
    conditions=(
        "the node reaches a graph output (else it is removed)",
        "no earlier node has the same op, attributes and inputs without an initializer input "
        "(else the earlier one is merged into the later)",
        "the op is not a wire (Dropout, Identity, Flatten, a Concat of one input) nor Elu, which no "
        "kernel's Metadata names",
        rtx_kit.CONVEX,
    ),
    source=(
        "TensorRT-RTX 1.7.1.116 live builds: misc_dead_branch, misc_dup_pool, misc_dup_pool_out_first, "
        "misc_dup_pool_out_second, misc_dup_relu, misc_dup_conv, layout_flatten_gemm, act_Elu_*; "
        "googlenet-caffe (pool5/drop_7x7_s1)"
    ),
    eliminates=frozenset({"Dropout", "Identity", "Flatten", "Constant", "Elu"}),
)
__doc__ = RULE.document(__doc__)


def decide(s: rtx_kit.RtxState) -> None:
    """R0a dead nodes, R0b duplicates, R0c wires and constants."""
    live: set[str] = set()
    stack = list(s.graph_outputs)
    while stack:
        t = stack.pop()
        p = s.producer.get(t)
        if p is None or p.name in live:
            continue
        live.add(p.name)
        stack.extend(i for i in p.inputs if i)
    for n in s.nodes:
        if n.name not in live:
            s.dead[n.name] = "reaches no graph output"
    from fusionlab.fusion.passes import rtx_fold

    rtx_fold.decide(s)  # R19a: shape arithmetic is folded before duplicates merge
    merged = True
    while merged:  # R0d: a merge can make the readers identical: repeated until none merges
        merged = False
        seen: dict[tuple[object, ...], str] = {}
        for n in s.nodes:
            if (n.name in s.dead or n.name in s.folded or s.is_wire(n) or n.op == "Constant"
                    or len(n.outputs) != 1):
                continue
            key = _qdq_key(s, n) if n.op in ("QuantizeLinear", "DequantizeLinear") else None
            if key is None:
                if any(i in s.consts for i in n.inputs if i):
                    continue
                key = (n.op, tuple(s.res(i) for i in n.inputs), repr(sorted(n.attrs.items())))
            if key in seen and seen[key] != n.name:
                first = s.by_name[seen[key]]
                s.add_alias(first.outputs[0], n.outputs[0])  # the later node survives
                s.dead[first.name] = f"the same computation as {n.name!r}, which TensorRT-RTX keeps"
                s.reject(RULE.name, 2, [first.name, n.name], "merged: the later node stays")
                merged = True
            seen[key] = n.name
    for name, why in s.dead.items():
        s.eliminate(name, RULE.name, How.NOOP, why)
    for n in s.nodes:
        if n.op == "Constant":
            s.eliminate(n.name, RULE.name, How.CONSTANT, "a constant: folded into the kernels")
        elif s.is_wire(n) and n.name not in s.dead:
            s.eliminate(n.name, RULE.name, How.NOOP, "a view: in no TensorRT-RTX kernel")


def _qdq_key(s: rtx_kit.RtxState, n: Node) -> tuple[object, ...] | None:
    """R0d: a Q/DQ node of an activation merges with one of equal scale and zero-point values
    on the same tensor (``qdq14_dup_q`` vs ``qdq14_dup_q_diffscale``; resnet18-qat
    ``QuantizeLinear_65`` -> ``_88``); weight Q/DQ nodes do not."""
    if len(n.inputs) < 2 or not s.is_const(n.inputs[1]) or n.inputs[0] in s.consts:
        return None
    values = [s.const_key(i) for i in n.inputs[1:]]
    return (n.op, s.res(n.inputs[0]), tuple(values), repr(sorted(n.attrs.items())))


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Remove what R0 removes (all decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)
