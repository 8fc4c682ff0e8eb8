"""rtx_fold: shape arithmetic runs in no kernel; a float folded scalar is listed by its readers (R19).

Before::

    x -> Shape -> Gather -> Div -> Unsqueeze -> Concat -> Reshape(x, ·) -> ...
After::

    [Reshape ...]           (Shape, Gather, Div, Unsqueeze, Concat: in no kernel, folded)

R19a: nodes computed only from Shape outputs and constants (Shape, Gather, Unsqueeze, Concat,
Slice, Cast, Div, Mod and the like, feeding Reshape shapes) run in no kernel: with static shapes
TensorRT-RTX folds them (the loader computes their values, :mod:`fusionlab.ir.shape_math`, so the
Reshapes they feed have static shapes). Their readers count no Shape node.
R19b: the folded chains whose value is floating point (after a Cast to float) are listed by the
kernels of their readers (vit-s16 ``MatMul_1`` kernels list ``Mul_1 Mul_2 Sqrt Sqrt_1 Sqrt_2 Div_1
Cast_2 Cast_3``, not ``Shape_6`` or ``Slice_3``); they are folded before R0b merges duplicates.
R19c: a MatMul of two activations absorbs a Mul or Div by a scalar on either input (the GEMM's
alpha) when it is the Mul's only reader: ``gemm [qk q_mul k_mul]``.

Live builds (TensorRT-RTX 1.7.1.116, /work/scratch/rtx-modern): ``fold19_qk_scale``,
``attn20_*``; shufflenetv2-legacy, vit-s16, yolov8n.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import How, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

SHAPE_ARITH = frozenset({"Mod", "Range", "ConstantOfShape", "Equal", "Where", "Expand"})
"""Ops folded even when every input is a plain constant (R19a)."""
FLOAT_TYPES = frozenset({1, 10, 11, 16})

RULE = Rule(
    name="rtx_fold",
    conditions=(
        "the node is computed from Shape outputs and constants only (else it runs in a kernel)",
        "the folded value is an integer (else the readers' kernels list the chain)",
        "a Mul/Div by a scalar read only by a MatMul of two activations (then the GEMM takes it)",
        rtx_kit.CONVEX,
    ),
    source="TensorRT-RTX 1.7.1.116 live builds: fold19_qk_scale, attn20_*; shufflenetv2-legacy, vit-s16, yolov8n",
    joins=(Join(frozenset({"MatMul"}), frozenset({"Mul", "Div", "Sqrt", "Cast"}), second_only=True),),
    eliminates=frozenset({"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Div", "Mul",
                          "Add", "Sub", "Mod", "Sqrt", "Reshape", "Range", "ConstantOfShape", "Equal",
                          "Where", "Expand"}),
)
__doc__ = RULE.document(__doc__)


def decide(s: rtx_kit.RtxState) -> None:
    """R19a/b: fold the shape arithmetic (called by ``rtx_eliminate`` before R0b)."""
    is_float: dict[str, bool] = {}
    float_nodes: set[str] = set()
    for n in s.nodes:
        if n.name in s.dead or n.op == "Constant":
            continue
        ins = [s.res(i) for i in n.inputs if i]
        if n.op == "Shape":
            ok = True
        elif not ins:
            ok = False
        else:
            ok = (all(i in s.folded_t or i in s.consts for i in ins)
                  and (any(i in s.folded_t for i in ins) or n.op in SHAPE_ARITH))
        if not ok:
            continue
        if n.op == "Shape":
            fl = False
        elif n.op == "Cast":
            fl = int(n.attrs.get("to", 0) or 0) in FLOAT_TYPES
        else:
            fl = any(is_float.get(i, False) for i in ins)
        for o in n.outputs:
            s.folded_t.add(o)
            s.consts.add(o)
            is_float[o] = fl
        s.folded.add(n.name)
        if fl:  # listed by its readers' kernels (rtx_kit.analyse eliminates it if none does)
            float_nodes.add(n.name)
            s.done.add(n.name)
        else:
            s.eliminate(n.name, RULE.name, How.CONSTANT, "shape arithmetic: folded with the static shapes")
    for n in s.nodes:  # R19b: readers of float folded tensors list the float chain
        if n.name in s.dead or n.name in s.folded:
            continue
        chain: list[str] = []
        stack = [s.res(i) for i in n.inputs if i and s.res(i) in s.folded_t]
        seen: set[str] = set()
        while stack:
            p = s.producer.get(stack.pop())
            if p is None or p.name in seen or p.name not in float_nodes:
                continue
            seen.add(p.name)
            chain.append(p.name)
            stack.extend(s.res(i) for i in p.inputs if i and s.res(i) in s.folded_t)
        if chain:
            s.fold_attach[n.name] = chain
            s.reject(RULE.name, 2, [n.name, *chain], "a float folded value: its reader's kernels list it")


def matmul_scalars(s: rtx_kit.RtxState) -> None:
    """R19c: the scalar Mul/Div on an operand of a MatMul of two activations joins its kernel."""
    for n in s.nodes:
        if n.op != "MatMul" or n.name in s.dead or len(n.inputs) < 2 or any(s.is_const(i) for i in n.inputs[:2]):
            continue
        for t in n.inputs[:2]:
            p = s.producer.get(s.res(t))
            if p is None or p.op not in ("Mul", "Div") or p.name in s.done:
                continue
            sc = [i for i in p.inputs if i and s.is_const(i)]
            if len(s.dyn_inputs(p)) != 1 or len(sc) != 1:
                continue
            shp = s.shape(sc[0])
            if shp is not None and math.prod(shp) != 1:
                continue
            if [c.name for c in s.consumers(p.outputs[0])] != [n.name]:
                continue
            s.kextra.setdefault(n.name, []).append(p.name)
            s.done.add(p.name)
            s.reject(RULE.name, 3, [n.name, p.name], "the GEMM takes the scalar")


def settle(s: rtx_kit.RtxState) -> None:
    """R19b: every kernel of a reader of a float folded chain lists the chain."""
    for gi, grp in enumerate(s.groups):
        extra = [x for m in grp.nodes for x in s.fold_attach.get(m, []) if x not in grp.nodes]
        extra = list(dict.fromkeys(extra))
        if extra:
            grp.nodes = grp.nodes + tuple(extra)
            for x in extra:
                s.group_of.setdefault(x, gi)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Fold the shape arithmetic (decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)
