"""rtx_share_bias: a convolution whose bias moves into the next kgen is in both kernels (R3b).

Before::

    x -> Conv(bias) -> BatchNormalization -> Relu -> y
After::

    [Conv]  and  [BatchNormalization + Relu + Conv]      (the Conv is shared: both list it)

When a convolution is a ``correlation`` kernel of its own and its epilogue a kgen, the
kgen lists the convolution too (its bias add moved there) iff the convolution has a bias
and its only reader is a BatchNormalization or a HardSigmoid (a Mul/Div by a constant is
assumed to behave like a BN, untested). An Add of a constant does not take it; a
convolution without a bias has nothing to move. The same happens to a reduction-regime
Gemm's bias (R11): ``[fc]`` and ``[fc + softmax]``. A per-channel int8 convolution (R14c,
``rtx_qdq``) and a grouped, not depthwise, one (R16) always move their bias into the kgen that
reads them (``se13_grp_*``, ``grp16t_*``, cvx_int8_chain).

Live builds (TensorRT-RTX 1.7.1.116): ``cbr_single_out`` (``[conv]`` + ``[bn conv relu]``),
``act_HardSigmoid_nobn_out`` (``[act conv1]``), ``act_LeakyRelu_nobn_out`` (``[act]`` only);
counter-examples ``catx_AR_gap``, ``catx_QQ_gap``; no bias: inception3a, googlenet,
mobilenetv2; R11: googlenet-caffe ``[loss3/classifier prob]``, ``fc_*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_conv_activation as rtx_conv_activation
import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

RULE = Rule(
    name="rtx_share_bias",
    conditions=(
        "the convolution has a bias",
        "its only reader is a BatchNormalization or a HardSigmoid (or a Mul/Div by a constant), or it "
        "is a grouped convolution whose native activation went to the kgen (rtx_conv_activation 5)",
        rtx_kit.CONVEX,
    ),
    source=(
        "TensorRT-RTX 1.7.1.116 live builds: cbr_single_out, act_HardSigmoid_nobn_out, "
        "act_LeakyRelu_nobn_out, catx_AR_gap, catx_QQ_gap, googlenet-caffe"
    ),
    joins=(Join(rtx_kit.CONV_OPS | {"Gemm"}, frozenset({"BatchNormalization", "HardSigmoid", "Softmax"})),),
)
__doc__ = RULE.document(__doc__)


def affine_entry(s: rtx_kit.RtxState, head: Node) -> bool:
    """Whether ``head``'s bias moves into the kgen after it (then the kgen lists it)."""
    if len(head.inputs) < 3 or not head.inputs[2]:
        return False
    if head.name in s.int8_pc or rtx_conv_activation.grouped(s, head):
        return True  # R14c / R16: the kgen adds a per-channel int8 or grouped convolution's bias
    c = s.consumers(head.outputs[0])
    moves = len(c) == 1 and (
        c[0].op in rtx_kit.AFFINE_HEAD
        or (c[0].op in {"Mul", "Div"} and len(s.dyn_inputs(c[0])) == 1)
        or (rtx_conv_activation.grouped(s, head) and s.is_native_act(c[0]))
    )
    if not moves and len(c) == 1:
        s.reject(RULE.name, 2, [head.name, c[0].name], f"read by a {c[0].op}")
    return moves


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Add the moved convolutions to their kgens, as shared nodes."""
    return rtx_kit.apply(RULE, graph, plan, ctx)
