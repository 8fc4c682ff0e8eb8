"""rtx_conv_add: a convolution takes the residual Add after it, and a native activation (R2).

Before::

    x -> Conv -> Add(., r) -> Relu -> y
After::

    x -> [Conv + Add + Relu] -> y        (one ``correlation`` kernel)

Of two bare convolutions feeding one Add, the one whose branch starts *later* in the ONNX
node order takes it (branch = the convolution and its ancestors that are not ancestors of
the other); the order of the Add's inputs does not matter. A bare convolution beats a
branch with a BatchNormalization (that branch becomes ``CorrMulAdd [conv bn]``).

Live builds (TensorRT-RTX 1.7.1.116): resnet18, resnet50 (``Conv_16`` takes ``Add_17``);
``misc_add_input``, ``misc_add_input_relu_out``, ``misc_add_leaky``, ``misc_relu_add``,
``fork_F10``, ``resorder_folded_a_s_b``, ``resorder_folded_a_b_s``,
``resorder_folded_s_a_b`` and their ``_swapadd`` variants, ``res_proj_folded*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

RULE = Rule(
    name="rtx_conv_add",
    conditions=(
        "an input of the Add is written by a bare convolution (no activation taken) that the Add "
        "alone reads, and that is not a graph output",
        "of two such convolutions, the one whose branch starts later in the ONNX order takes it",
        "only a native activation after the Add joins (Relu, Sigmoid, Tanh, Clip(0, 6))",
        rtx_kit.CONVEX,
    ),
    source=(
        "TensorRT-RTX 1.7.1.116 live builds: resnet18, resnet50, misc_add_input, misc_add_input_relu_out, "
        "misc_add_leaky, fork_F10, resorder_folded_*, res_proj_folded*"
    ),
    joins=(Join(rtx_kit.CONV_OPS, frozenset({"Add"})),),
)
__doc__ = RULE.document(__doc__)


def decide(s: rtx_kit.RtxState) -> None:
    """Residual Adds join a bare convolution's CASK kernel."""
    for add in s.nodes:
        if add.op != "Add" or add.name in s.dead:
            continue
        ins = s.dyn_inputs(add)
        if len(ins) != 2 or ins[0] == ins[1]:
            continue
        cands: list[Node] = []
        for t in ins:
            p = s.producer.get(t)
            if p is None or p.op not in rtx_kit.CONV_OPS or p.name in s.int8_pc:
                continue
            if (len(s.cask.get(p.name, [])) == 1 and not s.is_output(t)
                    and s.single_consumer(t) is not None and s.single_consumer(t) == add):
                cands.append(p)
            else:
                s.reject(RULE.name, 1, [p.name, add.name], "the convolution is not bare or not read by the Add alone")
        if not cands:
            continue
        taker = cands[0] if len(cands) == 1 else _later_branch(s, cands[0], cands[1])
        if len(cands) == 2:
            other = cands[1] if taker is cands[0] else cands[0]
            s.reject(RULE.name, 2, [other.name, add.name], f"{taker.name}'s branch starts later")
        grp = s.cask[taker.name]
        grp.append(add.name)
        t = add.outputs[0]
        c = None if s.is_output(t) else s.single_consumer(t)
        if c is not None and s.is_native_act(c):
            grp.append(c.name)
        elif c is not None and s.is_act(c):
            s.reject(RULE.name, 3, [taker.name, add.name, c.name], f"{c.op} is not native")


def _later_branch(s: rtx_kit.RtxState, a: Node, b: Node) -> Node:
    return a if s.branch_start(a, b) > s.branch_start(b, a) else b


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Form the convolution + residual Add kernels (decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)
