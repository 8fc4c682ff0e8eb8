"""rtx_layout: data movement and normalization join the kgen of the region they touch (R18, R20b).

Before::

    conv -> Transpose(0,2,3,1) -> LayerNormalization -> MatMul -> Add -> Transpose(0,3,1,2) -> Mul -> Add
After::

    [conv]  [Transpose + LayerNormalization]  [MatMul + Add]  [Add + Transpose + Mul + Add]

R18a: Transpose, Reshape, Squeeze/Unsqueeze, Gather (constant index), Split/Slice and Resize,
LayerNormalization and a last-axis ReduceMean are members of the pointwise region they touch and
share its kgen; they stop a convolution from runtime-fusing (``rtx_runtime_fusion`` condition 9).
R18b: a GEMM-regime MatMul/Gemm fuses its epilogue up to the first movement or normalization op;
the rest is a kgen, which lists the last fused node only when it starts with a real movement op
(Transpose, Split, Gather), not with a view or a LayerNorm.
R18c: a Transpose back to NCHW after a LayerNorm kgen read only by convolutions runs in no kernel,
each convolution lists it (``correlation [Transpose_1 Conv]``); read by anything else, the LN kgen
writes it and splits in two, statistics ``MeanSubMulMean [.. LN]`` and normalization
``AddSqrtDivMulMulAddTran [LN Transpose_1]`` (for a decomposed LN the ops after the last
ReduceMean go to the second kernel); so does a Gather/Transpose reading the LN inside the kgen.
R18d: a Transpose that moves no data (its non-1 dims keep their order) and feeds a GEMM runs in
no kernel.
R20b: inside a kgen a view (Reshape, Squeeze, Unsqueeze) is listed only as the input of a real
movement op, a Softmax or a normalization of that kgen (token tensors), or when it is interior
to the kgen (NHWC image tensors); an NHWC flatten ``[N,C,H,W] -> [N,C,HW]`` is a real relayout
and listed, except before a ``Transpose(0,2,1)`` with C >= 32. Views elsewhere are in no kernel.
R20a: the movement chain (views and Transposes, one reader each) feeding an operand of a MatMul
of two activations runs in no kernel when every Transpose in it keeps the last axis last: the
batched GEMM reads the strided operand (vit-s16 q ``Reshape_3 Transpose_2 Reshape_6``).
R20c: in a movement kgen, a Transpose that moves the innermost axis is a kernel of its own (with
its input view) when the new innermost size is odd and the tensor has more than 70,000 elements
(a cost-model bound, bracketed in (65,792, 74,880]).

Live builds (TensorRT-RTX 1.7.1.116, /work/scratch/rtx-modern): ``mov18_relu_t_*``,
``mov18_gemm_t_add``, ``mov18_ln_t_{dense2s2,dense3,dense1,dw7}``, ``mov18_ln_t_dw7_resid``,
``fold19_flat_tr_c{16,32,48,64,384}_*``, ``attn20_*``; prototype micro layout_transpose_relu,
channel_shuffle_bn, channel_shuffle, layernorm_decomposed; convnext-t, convnext-t-opset13, vit-s16.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import How, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

MOVERS = rtx_kit.MOVE_OPS - rtx_kit.VIEW_OPS
"""Movement ops that move data (a view only relabels it)."""

RULE = Rule(
    name="rtx_layout",
    conditions=(
        "the movement or normalization op touches a pointwise region (else it is a kgen of its own)",
        "the Transpose moves data (else, read by GEMMs, it runs in no kernel)",
        "the Transpose after a LayerNorm kgen has readers other than convolutions (else each "
        "convolution lists it and no kgen does)",
        "a view is the input of a movement op, Softmax or normalization of its kgen, interior to an "
        "image kgen, or an NHWC flatten (else it runs in no kernel)",
        "a GEMM's epilogue holds no movement or normalization op (else it fuses up to the first one)",
        "the movement chain into a MatMul of two activations has a Transpose moving the last axis (else "
        "the GEMM reads it strided: in no kernel, R20a)",
        "no Transpose of the kgen moves the innermost axis to an odd size over more than 70,000 elements "
        "(else it is a kernel of its own, R20c)",
        rtx_kit.CONVEX,
    ),
    source=(
        "TensorRT-RTX 1.7.1.116 live builds: mov18_*, fold19_flat_tr_*, attn20_*, layout_transpose_relu, "
        "channel_shuffle_bn, layernorm_decomposed; convnext-t, convnext-t-opset13, vit-s16"
    ),
    joins=(
        Join(rtx_kit.MOVE_OPS | rtx_kit.NORM_OPS, rtx_kit.POINTWISE | rtx_kit.MOVE_OPS | rtx_kit.NORM_OPS),
        Join(rtx_kit.POINTWISE, rtx_kit.MOVE_OPS | rtx_kit.NORM_OPS),
        Join(frozenset({"Transpose"}), rtx_kit.CONV_OPS, second_only=True),
    ),
    eliminates=frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze"}),
)
__doc__ = RULE.document(__doc__)


def decide(s: rtx_kit.RtxState) -> None:
    """R18d: Transposes that move no data before a GEMM run in no kernel."""
    for n in s.nodes:
        if n.name not in s.done and n.name not in s.dead and s.is_shape_only(n):
            s.eliminate(n.name, RULE.name, How.NOOP, "a Transpose that moves no data, read by a GEMM")
            s.reject(RULE.name, 2, [n.name], "moves no data: in no kernel")


def absorbed_operands(s: rtx_kit.RtxState) -> None:
    """R20a: the strided operand chains of a MatMul of two activations run in no kernel."""
    for n in s.nodes:
        if n.op != "MatMul" or n.name in s.dead or len(n.inputs) < 2 or any(s.is_const(i) for i in n.inputs[:2]):
            continue
        for t in n.inputs[:2]:
            chain: list[Node] = []
            p = s.producer.get(s.res(t))
            ok = True
            while p is not None and p.name not in s.dead:
                if p.name in s.kextra.get(n.name, []):
                    ins = s.dyn_inputs(p)
                    p = s.source(ins[0]) if ins else None
                    continue
                if p.op not in ("Reshape", "Squeeze", "Unsqueeze", "Transpose"):
                    if s.is_pw(p) and p.name not in s.done:
                        ok = False  # it joins that op's kgen (prototype micro attention)
                    break
                if len(s.consumers(p.outputs[0])) != 1:
                    break
                if p.op == "Transpose":
                    perm = list(p.attrs.get("perm") or [])
                    if not perm or perm[-1] != len(perm) - 1:
                        s.reject(RULE.name, 6, [p.name, n.name], "moves the last axis: materialised")
                        ok = False
                        break
                chain.append(p)
                p = s.source(p.inputs[0])
            if ok:
                for c in chain:
                    s.eliminate(c.name, RULE.name, How.NOOP, "read strided by the batched GEMM")


def split_odd_transpose(s: rtx_kit.RtxState, pieces: list[list[str]]) -> list[list[str]]:
    """R20c: the odd-innermost Transpose of a large movement kgen gets a kernel of its own
    (attn20_torch_T{195,197,199,201}_E384, T197_E768, T197_E384_H12 split; T{64..257 even},
    T{65,129,169,171}_E384, T197_E{128,256}, T257_E256 do not; vit-s16 ``Reshape_7 Transpose_5``)."""
    out: list[list[str]] = []
    for pc in pieces:
        cut: Node | None = None
        if len(pc) > 2:
            for m in pc:
                n = s.by_name.get(m)
                if n is None or n.op != "Transpose":
                    continue
                perm = list(n.attrs.get("perm") or [])
                shp = s.shape(n.outputs[0])
                if not perm or not shp or perm[-1] == len(perm) - 1:
                    continue
                if shp[-1] % 2 == 1 and math.prod(shp) > 70000:
                    cut = n
                    break
        if cut is None:
            out.append(pc)
            continue
        own = [cut.name]
        src = s.source(cut.inputs[0])
        if src is not None and src.name in pc and src.op in rtx_kit.VIEW_OPS:
            own.insert(0, src.name)
        size = math.prod(s.shape(cut.outputs[0]) or ())
        s.reject(RULE.name, 7, pc, f"{cut.name}: odd innermost size, {size} elements")
        out.append([m for m in pc if m not in own])
        out.append(own)
    return out


def norm_transposes(s: rtx_kit.RtxState, region: list[Node]) -> list[Node]:
    """R18c: the Transpose back to NCHW after a LayerNorm kgen (see the module docstring)."""
    if not any(s.is_norm(n) for n in region):
        return region
    names = {n.name for n in region}
    keep: list[Node] = []
    for n in region:
        if (n.op == "Transpose" and list(n.attrs.get("perm") or []) == [0, 3, 1, 2]
                and (p := s.source(n.inputs[0])) is not None and p.name in names):
            cons = s.consumers(n.outputs[0])
            if (cons and all(c.op == "Conv" or c.name in s.cask_member for c in cons)
                    and not s.is_output(n.outputs[0])):
                for c in cons:
                    k = c.name if c.op == "Conv" else s.cask_member[c.name]
                    s.kextra.setdefault(k, []).append(n.name)
                s.done.add(n.name)
                s.reject(RULE.name, 3, [n.name, *(c.name for c in cons)], "read by convolutions only: they list it")
                continue
            s.ln_split.add(n.name)
        keep.append(n)
    return keep


def _moves_after_norm(s: rtx_kit.RtxState, m: str, pset: set[str]) -> bool:
    """A Transpose/Gather reading a LayerNorm's result inside the same kgen (vit-s16
    ``/encoder/ln`` + ``/Gather_4``)."""
    n = s.by_name.get(m)
    if n is None or n.op not in ("Transpose", "Gather"):
        return False
    stack = [s.source(n.inputs[0])]
    seen: set[str] = set()
    while stack:
        x = stack.pop()
        if x is None or x.name in seen or x.name not in pset:
            continue
        seen.add(x.name)
        if s.is_norm(x):
            return True
        if x.op in rtx_kit.MOVE_OPS or s.is_pw(x):
            stack.extend(s.source(t) for t in s.dyn_inputs(x))
    return False


def split_ln(s: rtx_kit.RtxState, pieces: list[list[str]]) -> list[list[str]]:
    """R18c: a kgen writing a LayerNorm's result for a movement op is cut after its last
    normalization reduction: statistics, then normalization with the movement."""
    out: list[list[str]] = []
    for pc in pieces:
        pset = set(pc)
        ts = [m for m in pc if m in s.ln_split or _moves_after_norm(s, m, pset)]
        if not ts:
            out.append(pc)
            continue
        norm: Node | None = None
        stack = [s.source(s.by_name[ts[0]].inputs[0])]
        seen: set[str] = set()
        while stack:
            x = stack.pop()
            if x is None or x.name in seen or x.name not in pset:
                continue
            seen.add(x.name)
            if s.is_norm(x):
                if norm is None or x.index > norm.index:
                    norm = x
                continue
            stack.extend(s.source(t) for t in s.dyn_inputs(x))
        if norm is None:
            out.append(pc)
            continue
        second: list[str] = [norm.name] if norm.op in rtx_kit.NORM_OPS else []
        frontier = [norm]
        while frontier:
            x = frontier.pop()
            for c in s.consumers(x.outputs[0]):
                if c.name in pset and c.name not in second:
                    second.append(c.name)
                    frontier.append(c)
        out.append([m for m in pc if m not in second or m == norm.name])
        out.append([m for m in pc if m in second])
    return out


def is_image(s: rtx_kit.RtxState, t: str, depth: int = 0) -> bool:
    """``t`` is a 4-D tensor with H*W > 1 written by CNN kernels (stored NHWC)."""
    shp = s.shape(t)
    if shp is None or len(shp) != 4 or shp[2] * shp[3] <= 1:
        return False
    p = s.producer.get(t)
    if p is None:
        return t in s.graph_inputs
    if p.op in rtx_kit.CONV_OPS or p.op in rtx_kit.POOL_OPS:
        return True
    if depth < 8 and (s.is_pw(p) or p.op in ("Concat", "Resize")):
        return any(is_image(s, i, depth + 1) for i in s.dyn_inputs(p))
    return False


def is_nhwc_flatten(s: rtx_kit.RtxState, n: Node) -> bool:
    """A Reshape of an NHWC image tensor to fewer dims: a real relayout (mnist ``node_view``)."""
    shp = s.shape(s.res(n.inputs[0]))
    out = s.shape(n.outputs[0])
    if shp is None or len(shp) != 4 or shp[2] * shp[3] <= 1 or shp[1] == 1:
        return False  # C == 1: NHWC and NCHW coincide (yolov8n ``dfl/Reshape_1``)
    if out is not None and len(out) >= 4:
        return False  # splitting C (channel shuffle): a view in NHWC too
    return is_image(s, s.res(n.inputs[0]))


def drop_views(s: rtx_kit.RtxState, members: list[str]) -> list[str]:
    """R20b: the views a kgen of ``members`` does not list run in no kernel."""
    mset = set(members)
    out: list[str] = []
    for m in members:
        n = s.by_name.get(m)
        if n is None or n.op not in rtx_kit.VIEW_OPS or len(members) == 1:
            out.append(m)
            continue
        cons = s.consumers(n.outputs[0])
        feeds = [c for c in cons if c.name in mset]
        if is_image(s, s.res(n.inputs[0])):
            src = s.source(n.inputs[0])
            keep = (src is not None and (src.name in mset or any(
                v == src.name for k, v in s.cjoin.items() if k in mset))) and bool(feeds)
            if is_nhwc_flatten(s, n):
                ishp = s.shape(s.res(n.inputs[0])) or (0, 0)
                keep = not (len(cons) == 1 and cons[0].op == "Transpose"
                            and list(cons[0].attrs.get("perm") or []) == [0, 2, 1] and ishp[1] >= 32)
        else:
            keep = any((c.op in MOVERS) or c.op == "Softmax" or s.is_norm(c) for c in feeds)
        if keep:
            out.append(m)
        else:
            s.eliminate(m, RULE.name, How.NOOP, "a view: in no TensorRT-RTX kernel")
            s.reject(RULE.name, 4, [m], "a view at the kgen's edge")
    return out


def gemm_epilogue_stop(s: rtx_kit.RtxState, h: Node, part: list[Node]
                       ) -> tuple[list[Node], list[Node], str | None] | None:
    """R18b: (fused, rest, the node the rest's kgen lists too) for a GEMM-regime ``h`` whose
    epilogue ``part`` holds a movement or normalization op; None otherwise."""
    if not any(n.op in rtx_kit.MOVE_OPS or s.is_norm(n) for n in part):
        return None
    if rtx_kit.gemm_regime(s, h) != "fc":
        return None
    pset = {n.name for n in part}
    fused: list[Node] = []
    cur = h
    while True:
        cons = [c for c in s.consumers(cur.outputs[0]) if c.name in pset]
        if len(cons) != 1:
            break
        c = cons[0]
        if c.op in rtx_kit.MOVE_OPS or s.is_norm(c) or c.op in rtx_kit.NO_RUNTIME_FUSION:
            break
        if s.is_output(cur.outputs[0]) and cur is not h:
            break
        fused.append(c)
        cur = c
    fset = {n.name for n in fused}
    rest = [n for n in part if n.name not in fset]
    s.reject(RULE.name, 5, [h.name, *(n.name for n in part)], f"fuses up to {cur.name}")
    nxt = [c for c in s.consumers(cur.outputs[0]) if c.name in pset]
    link = cur.name if nxt and all(c.op in MOVERS for c in nxt) else None
    if (link is None and not fused and h.op == "Gemm" and len(h.inputs) > 2 and h.inputs[2]
            and any(t in s.graph_inputs for n in rest for t in s.dyn_inputs(n))):
        link = h.name  # R5c for a GEMM: the bias moves to the kgen (attn20_*)
    return fused, rest, link


def settle(s: rtx_kit.RtxState) -> None:
    """R18c: a convolution's kernel lists the Transpose before it."""
    for gi, grp in enumerate(s.groups):
        if grp.nodes and grp.nodes[0] in s.kextra and s.op(grp.nodes[0]) in rtx_kit.CONV_OPS | {"MatMul"}:
            new = [x for x in s.kextra[grp.nodes[0]] if x not in grp.nodes]
            grp.nodes = grp.nodes + tuple(new)
            if grp.rule == rtx_kit.UNFUSED:
                grp.rule = RULE.name
            for x in new:
                s.group_of.setdefault(x, gi)



def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Form the movement kernels (decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)
