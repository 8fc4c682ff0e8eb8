"""rtx_qdq: an int8 convolution or Gemm lists its Q/DQ nodes; quantize steps run in the
kernels that produce their inputs (R14a-d).

Before::

    x -> Q -> DQ -> Conv(DQ(Q(w))) -> Relu -> Q2 -> DQ2 -> Conv2 ...
After::

    [Conv + DQ + w_DQ + w_Q]  and  [Relu ... + Q2]      (Q2 computed at the end of the kgen
                                                         producing its input; DQ2 in Conv2's kernel)

R14a: a convolution or Gemm whose data input comes from a DequantizeLinear is int8; its kernel
lists the convolution, its activation DQ, its weight DQ and the weight's QuantizeLinear when the
weights are quantized in the graph (``correlation [conv in_dq w_dq w_q]``). A DQ read by an int8
kernel and by a pointwise op is listed in both.
R14b: an activation QuantizeLinear whose DQ feeds an int8 kernel is computed at the end of the
kgen producing its input (``...MulMinMaxRounCast``), so the Q -> DQ edge is cut; a Q/DQ pair read
by a pointwise op (a residual quantizer) belongs to that op's kgen; a Q behind a MaxPool or
GlobalAveragePool is computed before the pool, in the pool producer's kgen.
R14c: a per-channel int8 convolution takes no activation and no residual Add and never
runtime-fuses; its rescale kgen lists it exactly when it has a bias (``rtx_share_bias``); read by
no pointwise op it gets a ``MulAddMove [conv]`` kgen of its own; an int8 Gemm with a bias has a
rescale kgen ``MulAdd [fc in_dq w_dq]``.
R14d: an int8 convolution whose input has a number of channels per group that is not a multiple
of 4 has that input padded by the kgen that quantizes it, which then lists the convolution and
its Q/DQ nodes too (``...RounCastConc``).
R0d (in ``rtx_eliminate``): Q/DQ nodes of equal scale and zero point on one tensor are merged.

Live builds (TensorRT-RTX 1.7.1.116, /work/scratch/rtx-modern): prototype micro ``qdq_*``
(``qdq_conv_relu_perchannel`` vs ``_pertensor``, ``qdq_residual_add``), ``qdq14_wq_in_graph``,
``qdq14_maxpool_q``, ``qdq14_maxpool_q_only``, ``qdq14_gap_q_gemm``, ``qdq14_pad_c_{3,6}``,
``qdq14_pad_dw_{16,32}``, ``qdq14_pad_dw_mid`` vs ``qdq14_pad_c_{4,8,16}``, ``qdq14_dup_q`` vs
``qdq14_dup_q_diffscale``, ``cvx_int8_chain``; mobilenetv2-qdq, resnet18-qat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

QDQ = frozenset({"QuantizeLinear", "DequantizeLinear"})
LINEAR_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})

RULE = Rule(
    name="rtx_qdq",
    conditions=(
        "the convolution or Gemm reads a DequantizeLinear activation (it is int8)",
        "the activation Q's DQ feeds an int8 kernel (the Q runs in its input's kgen)",
        "the int8 convolution's weights are per-tensor (a per-channel one takes no epilogue)",
        "the int8 convolution's input channels per group are a multiple of 4 (else its quantizing "
        "kgen pads them and lists it)",
        rtx_kit.CONVEX,
    ),
    source=(
        "TensorRT-RTX 1.7.1.116 live builds: qdq_*, qdq14_*, cvx_int8_chain; mobilenetv2-qdq, resnet18-qat"
    ),
    joins=(
        Join(rtx_kit.CONV_OPS | frozenset({"Gemm", "MatMul"}), QDQ, second_only=True),
        Join(rtx_kit.POINTWISE, QDQ, second_only=True),
    ),
)
__doc__ = RULE.document(__doc__)


def decide(s: rtx_kit.RtxState) -> None:
    """R14a/b: find the int8 kernels, their Q/DQ nodes, the cut Q -> DQ edges, the hoisted Qs."""
    for n in s.nodes:
        if n.name in s.dead or n.op not in LINEAR_OPS or len(n.inputs) < 2:
            continue
        a = s.producer.get(s.res(n.inputs[0]))
        w = s.producer.get(s.res(n.inputs[1]))
        if a is None or a.op != "DequantizeLinear":
            continue
        extra = [a.name]
        s.int8.add(n.name)
        if w is not None and w.op == "DequantizeLinear":
            extra.append(w.name)
            s.done.add(w.name)
            wq = s.producer.get(w.inputs[0])
            if wq is not None and wq.op == "QuantizeLinear":
                extra.append(wq.name)
                s.done.add(wq.name)
            if len(w.inputs) > 1 and s.const_size(w.inputs[1]) > 1:
                s.int8_pc.add(n.name)
        s.qextra[n.name] = extra
    for n in s.nodes:  # activation DQs read by int8 kernels only: those kernels list them
        if n.op != "DequantizeLinear" or n.name in s.done or n.name in s.dead:
            continue
        cons = s.consumers(n.outputs[0])
        if cons and all(c.name in s.int8 for c in cons):
            s.done.add(n.name)
    for q in s.nodes:
        if q.op != "QuantizeLinear" or q.name in s.done or q.name in s.dead:
            continue
        dqs = s.consumers(q.outputs[0])
        if any(d.op == "DequantizeLinear" and any(c.name in s.int8 for c in s.consumers(d.outputs[0]))
               for d in dqs):
            for d in dqs:
                s.cut.add((q.name, d.name))
            src = s.producer.get(s.res(q.inputs[0]))
            if src is not None and src.op in ("MaxPool", "GlobalAveragePool") and src.name not in s.dead:
                s.hoist[q.name] = s.res(src.inputs[0])
        else:
            p = s.producer.get(s.res(q.inputs[0]))
            if p is not None:
                s.cut.add((p.name, q.name))
                s.reject(RULE.name, 2, [p.name, q.name], "the Q feeds no int8 kernel: it runs with its reader")


def hoist_links(s: rtx_kit.RtxState, cur: Node) -> list[Node]:
    """R14b: a Q computed before the pool it reads is a neighbour of the pool's producer."""
    out: list[Node] = []
    if cur.name in s.hoist:
        p = s.producer.get(s.hoist[cur.name])
        if p is not None:
            out.append(p)
    for q, t in s.hoist.items():
        if t in cur.outputs:
            out.append(s.by_name[q])
    return out


def recomputed_dq(s: rtx_kit.RtxState, name: str) -> bool:
    """A free activation DQ read by an int8 kernel and by a pointwise op: both list it (R14a)."""
    n = s.by_name.get(name)
    return (n is not None and n.op == "DequantizeLinear"
            and any(c.name in s.int8 for c in s.consumers(n.outputs[0])))


def own_hoisted(s: rtx_kit.RtxState) -> None:
    """R14b: a Q computed before the MaxPool it reads is listed by the pool producer's kgen,
    but in fusionlab's acyclic plan it is owned by a layer of its own (the kgen shares it)."""
    for q in s.hoist:
        src = s.producer.get(s.res(s.by_name[q].inputs[0]))
        if src is not None and src.op == "MaxPool" and q in s.bin_of:
            s.emit([q], RULE.name)
    for n in s.nodes:  # a DQ both list is owned by the int8 kernel (the kgen recomputes it)
        if n.name in s.bin_of and recomputed_dq(s, n.name):
            for c in s.consumers(n.outputs[0]):
                gi = next((i for i, g in enumerate(s.groups) if g.nodes and g.nodes[0] == c.name), None)
                if c.name in s.int8 and gi is not None:
                    _extend(s, gi, [n.name])
                    break


def _extend(s: rtx_kit.RtxState, gi: int, names: list[str]) -> None:
    grp = s.groups[gi]
    if grp.rule == rtx_kit.UNFUSED:
        grp.rule = RULE.name  # the int8 kernel is formed by this rule
    new = [x for x in names if x not in grp.nodes]
    grp.nodes = grp.nodes + tuple(new)
    for x in new:
        s.group_of.setdefault(x, gi)


def settle(s: rtx_kit.RtxState) -> None:
    """R14a/c/d: the int8 kernels' member lists and rescale kgens."""
    for gi, grp in enumerate(list(s.groups)):
        head = grp.nodes[0] if grp.nodes else None
        if head in s.qextra:
            own = s.cask.get(head)
            if (s.op(head) in rtx_kit.CONV_OPS and own is not None and list(grp.nodes[: len(own)]) != own
                    and len(grp.nodes) > 1 and grp.nodes[1] not in own):
                continue  # a kgen that lists the convolution for its bias
            _extend(s, gi, s.qextra[head])
    for name, extra in s.qextra.items():
        n = s.by_name[name]
        if (name in s.int8_pc and n.op in rtx_kit.CONV_OPS
                and not any(s.is_pw(c) for c in s.consumers(n.outputs[0]))):
            s.groups.append(rtx_kit.Group(RULE.name, Kind.POINTWISE, (name,)))  # MulAddMove [conv]
        if n.op == "Gemm" and len(n.inputs) > 2 and n.inputs[2]:
            s.groups.append(rtx_kit.Group(RULE.name, Kind.POINTWISE,
                                          (name, *(x for x in extra if s.op(x) == "DequantizeLinear"))))
        if n.op != "Conv":
            continue
        shp = s.shape(s.res(n.inputs[0]))
        groups = int(n.attrs.get("group", 1) or 1)
        if not shp or len(shp) != 4 or (shp[1] // groups) % 4 == 0:
            continue
        q = s.producer.get(s.by_name[extra[0]].inputs[0])
        if q is None:
            continue
        for gi, grp in enumerate(s.groups):
            if q.name in grp.nodes:
                s.reject(RULE.name, 4, [name, q.name], f"{shp[1] // groups} channels per group: padded")
                _extend(s, gi, [name, *extra])
                break


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Form the int8 rescale kernels (decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)
