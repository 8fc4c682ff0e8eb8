"""rtx_conv_activation: a convolution and its native activation are one CASK kernel (R1).

Before::

    x -> Conv -> Relu -> y
After::

    x -> [Conv + Relu] -> y        (a ``correlation`` kernel; an inserted Tran if y is an output)

Native activations are Relu, Sigmoid, Tanh and Clip(0, 6). LeakyRelu, Clip(-1, 1),
HardSigmoid, HardSwish, SiLU, Abs, Exp and GELU make a ``runtime_fusion`` instead
(``rtx_runtime_fusion``); Selu, Softplus and PRelu a separate kgen. A ConvTranspose
(``deconv``) takes a native activation the same way.

R1b: when the activation's output is read only by a free pointwise op and the whole
chain can runtime-fuse, the activation is part of that epilogue instead
(Conv -> Relu -> Add -> Relu is ``runtime_fusion [conv relu add relu]``); if the chain
cannot fuse, this kernel stays and the rest is a kgen.

Live builds (TensorRT-RTX 1.7.1.116): ``cr_single_out``, ``act_Relu_nobn_out``,
``act_<A>_nobn_conv`` for every activation A, ``act_Selu_nobn_conv``,
``misc_conv_relu_and_conv``, ``cbr_*`` vs ``cr_*``, ``misc_relu_add``, ``misc_relu_add_relu``,
``convtranspose_*``; random DAGs ``dag_1_39``, ``dag_1_46``. Condition 5 (grouped
convolutions): a grouped Conv -> Relu read by a GlobalAveragePool, a pointwise op or as a
graph output is ``[conv]`` + kgen ``[conv relu ...]``; read by a convolution, one
``correlation`` (micro-builds made for this port; regnet-y-400mf).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

RULE = Rule(
    name="rtx_conv_activation",
    conditions=(
        "the activation is native to a CASK convolution: Relu, Sigmoid, Tanh or Clip(0, 6)",
        "the activation is the convolution output's only reader (being a graph output does not matter)",
        "no BatchNormalization between them (a BN makes the pair a runtime fusion)",
        "the activation's output does not go, alone, into a pointwise chain that runtime-fuses "
        "(then the activation is part of that epilogue, R1b)",
        "a grouped (not depthwise) convolution's activation is read by convolutions only (else it goes to a kgen, "
        "with the convolution's bias)",
        rtx_kit.CONVEX,
    ),
    source=(
        "TensorRT-RTX 1.7.1.116 live builds: cr_single_out, act_Relu_nobn_out, act_<A>_nobn_conv, "
        "act_Selu_nobn_conv, misc_conv_relu_and_conv, cbr_*, misc_relu_add, misc_relu_add_relu, "
        "convtranspose_*"
    ),
    joins=(Join(rtx_kit.CONV_OPS, frozenset({"Relu", "Sigmoid", "Tanh", "Clip"}), second_only=True),),
)
__doc__ = RULE.document(__doc__)


def decide(s: rtx_kit.RtxState) -> None:
    """Each live convolution starts a CASK kernel; a native activation it alone feeds joins."""
    for conv in s.nodes:
        if conv.op not in rtx_kit.CONV_OPS or conv.name in s.dead:
            continue
        s.cask[conv.name] = [conv.name]
        if conv.name in s.int8_pc:
            s.reject("rtx_qdq", 3, [conv.name], "a per-channel int8 convolution takes no activation")
            continue
        t = conv.outputs[0]
        c = None if s.is_output(t) else s.single_consumer(t)
        if c is not None and s.is_native_act(c) and not _grouped_act_to_kgen(s, conv, c):
            s.cask[conv.name].append(c.name)
        elif c is not None and s.is_native_act(c):
            s.reject(RULE.name, 5, [conv.name, c.name], "a grouped convolution's activation read by a non-convolution")
        elif c is not None and s.is_act(c) and c.op != "BatchNormalization":
            s.reject(RULE.name, 1, [conv.name, c.name], f"{c.op} is not native: runtime fusion or kgen")
        elif c is None and not s.is_output(t):
            acts = [r.name for r in s.consumers(t) if s.is_native_act(r)]
            if acts:
                s.reject(RULE.name, 2, [conv.name, acts[0]], "the convolution output has other readers")


def grouped(s: rtx_kit.RtxState, conv: Node) -> bool:
    """A grouped convolution that is not depthwise (1 < group < input channels)."""
    group = int(conv.attrs.get("group", 1) or 1)
    shape = s.shape(s.res(conv.inputs[0]))
    return group > 1 and (shape is None or len(shape) < 2 or group < shape[1])


def _grouped_act_to_kgen(s: rtx_kit.RtxState, conv: Node, act: Node) -> bool:
    """Condition 5: a grouped convolution keeps its activation only when convolutions alone
    read it (``gconv_*`` builds: a graph output, a GlobalAveragePool or a pointwise reader
    sends the activation to a kgen that lists the convolution too; regnet-y-400mf)."""
    if not grouped(s, conv):
        return False
    t = act.outputs[0]
    return s.is_output(t) or not all(r.op in rtx_kit.CONV_OPS for r in s.consumers(t))


def settle(s: rtx_kit.RtxState) -> None:
    """R1b, then record the CASK kernels (with ``rtx_conv_add``'s residual adds)."""
    for conv, grp in s.cask.items():
        if len(grp) != 2:
            continue
        act = s.by_name[grp[1]]
        t = act.outputs[0]
        c = None if s.is_output(t) else s.single_consumer(t)
        if c is not None and s.is_pw(c) and not s.in_cask(c.name):
            s.soft[conv] = grp[1]  # decided with the epilogue (rtx_runtime_fusion)
    for conv, grp in s.cask.items():
        if len(grp) > 1 and conv not in s.soft:
            rule = "rtx_conv_add" if any(s.op(m) == "Add" for m in grp[1:]) else RULE.name
            s.emit(grp, rule)
            for m in grp:
                s.cask_member[m] = conv


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Form the convolution + activation kernels (decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)
